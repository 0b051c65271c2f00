"""Prometheus I/O (issue 4)."""
