"""Offline profiling on a device: ``python -m hadis_worker.profiling.NAME`` for NAME in ``latency``,
``quality`` and ``profile_all`` (the other modules are their parts).

``hadis profile NAME ...`` (the control-plane CLI, which may not import torch) runs these modules as
subprocesses. The arithmetic over their measurements is in the pure :mod:`hadis.profiling`.
"""
