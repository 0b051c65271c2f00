"""HADIS: hybrid adaptive diffusion model serving.

The planning core (``hadis.api``, ``hadis.policy``, ``hadis.sim``, ``hadis.reconcile``) is pure:
functions over typed data, no I/O. Only ``hadis.k8s``, ``hadis.observe`` and the CLI/operator
shells talk to the outside world.
"""

__version__ = "0.1.0"
