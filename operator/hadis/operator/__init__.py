"""kopf wiring: kopf run -m hadis.operator (issue 4)."""
