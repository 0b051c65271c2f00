"""The paper's experiments run on the real local stack (gateway, worker processes, control loop)."""
