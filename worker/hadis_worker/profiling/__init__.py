"""Offline profiling on a device: each module is runnable (``python -m hadis_worker.profiling.NAME``).

``hadis profile NAME ...`` (the control-plane CLI, which may not import torch) runs these modules as
subprocesses. The arithmetic over their measurements is in the pure :mod:`hadis.profiling`.
"""
