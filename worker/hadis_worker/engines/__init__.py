"""Diffusion engines: ``emulated`` (profiled latency, placeholder image) and ``diffusers`` (real)."""

from __future__ import annotations

from hadis_worker.engines.base import Engine, Generated
from hadis_worker.settings import SettingsError, WorkerSettings


def build_engine(settings: WorkerSettings) -> Engine:
    """The engine the settings name. The diffusers engine is imported only when chosen (it needs torch).

    The diffusers engine checks its settings here (errors name the variable) and loads its weights in
    ``warmup``.
    """
    if settings.engine == "emulated":
        from hadis_worker.engines.emulated import EmulatedEngine

        return EmulatedEngine.from_settings(settings)
    try:
        from hadis_worker.engines.diffusers_engine import DiffusersEngine
    except ImportError as e:
        raise SettingsError(
            f"HADIS_ENGINE=diffusers: {e.name or e} is not installed (pip install 'hadis[diffusers]')"
        ) from None
    return DiffusersEngine.from_settings(settings)


__all__ = ["Engine", "Generated", "build_engine"]
