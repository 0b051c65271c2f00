"""Diffusion engines: ``emulated`` (profiled latency, placeholder image) and ``diffusers`` (real)."""

from __future__ import annotations

from hadis_worker.engines.base import Engine, Generated
from hadis_worker.settings import WorkerSettings


def build_engine(settings: WorkerSettings) -> Engine:
    """The engine the settings name. The diffusers engine is imported only when chosen (it needs torch)."""
    if settings.engine == "emulated":
        from hadis_worker.engines.emulated import EmulatedEngine

        return EmulatedEngine.from_settings(settings)
    raise NotImplementedError(
        "HADIS_ENGINE=diffusers: the diffusers engine is not part of this build yet; use emulated"
    )


__all__ = ["Engine", "Generated", "build_engine"]
