"""Reconcile: pure builders (spec, allocation) -> Kubernetes manifests (issue 4)."""
