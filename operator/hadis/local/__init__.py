"""Local mode (``hadis up``): the gateway, worker processes and the control loop on one machine."""
