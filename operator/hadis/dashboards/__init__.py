"""Grafana dashboards generated from code (pure: data in, JSON out; ``scripts/build_dashboard.py``)."""
