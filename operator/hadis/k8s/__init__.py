"""Kubernetes I/O (issue 4)."""
