"""Errors of the profiling commands: a problem with the options or the inputs, printed as one line
naming the option (exit status 2)."""

from __future__ import annotations


class ProfilingError(Exception):
    """A problem with the options or the inputs of a profiling command."""


class LatencyError(ProfilingError):
    """``hadis profile latency``: printed as one line, exit status 2."""


class QualityError(ProfilingError):
    """``hadis profile quality``: printed as one line, exit status 2."""
