"""Offline profiling, the pure part: numbers in, profile models and manifests out (no torch, no I/O).

The measuring itself (pipelines on a device) lives in :mod:`hadis_worker.profiling`; the ``hadis
profile`` command runs it as a subprocess and uses this package for everything that is arithmetic
over its measurements.
"""
