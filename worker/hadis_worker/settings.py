"""The worker's settings: every environment variable the worker process reads, read here only.

=========================== ================================================= =====================
variable                    meaning                                           default
=========================== ================================================= =====================
HADIS_WORKER_VARIANT        the model variant this worker serves (required)   —
HADIS_CONFIG_PATH           the watched CascadeConfig JSON file               none (no watching)
HADIS_ENGINE                ``emulated`` or ``diffusers``                     emulated
HADIS_PROFILE               built-in profile name or a profile JSON path      hadis-paper-l40s
HADIS_GPU_TYPE              which of the profile's GPU types to emulate       the profile's reference
HADIS_WORKER_HOST           listen address                                    0.0.0.0
HADIS_WORKER_PORT           listen port                                       8001
HADIS_WORKER_BATCH_SIZE     batch size until a config names one               1
HADIS_TIME_SCALE            emulated latency factor until a config names one  1.0
HADIS_WORKER_MAX_QUEUE      queued requests beyond which new ones are refused 1024
HADIS_CONFIG_POLL_S         how often the config file is checked (seconds)    1.0
HADIS_WORKER_SEED           seed of the emulated engine's random draws        0
HADIS_WORKER_DRAIN_S        how long shutdown waits for the running batch     30
=========================== ================================================= =====================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hadis.api.profile import NAME_PATTERN

EngineKind = Literal["emulated", "diffusers"]
ENGINES: tuple[EngineKind, ...] = ("emulated", "diffusers")


class SettingsError(ValueError):
    """An environment variable with a missing or invalid value; the message names it."""


@dataclass(frozen=True)
class WorkerSettings:
    """Static settings of one worker process (the live part comes from the watched config)."""

    variant: str
    config_path: Path | None = None
    engine: EngineKind = "emulated"
    profile: str = "hadis-paper-l40s"
    gpu_type: str | None = None
    host: str = "0.0.0.0"
    port: int = 8001
    batch_size: int = 1
    time_scale: float = 1.0
    max_queue: int = 1024
    config_poll_s: float = 1.0
    seed: int = 0
    drain_s: float = 30.0

    def __post_init__(self) -> None:
        if not re.match(NAME_PATTERN, self.variant):
            raise SettingsError(f"HADIS_WORKER_VARIANT: {self.variant!r} is not a valid variant name")
        if self.engine not in ENGINES:
            raise SettingsError(f"HADIS_ENGINE: must be one of {list(ENGINES)}, got {self.engine!r}")
        checks: list[tuple[str, float, float]] = [
            ("HADIS_WORKER_PORT", self.port, 0),
            ("HADIS_WORKER_BATCH_SIZE", self.batch_size, 1),
            ("HADIS_WORKER_MAX_QUEUE", self.max_queue, 1),
            ("HADIS_WORKER_SEED", self.seed, 0),
            ("HADIS_WORKER_DRAIN_S", self.drain_s, 0),
        ]
        for name, value, low in checks:
            if value < low:
                raise SettingsError(f"{name}: must be ≥ {low:g}, got {value}")
        for name, positive in (
            ("HADIS_TIME_SCALE", self.time_scale),
            ("HADIS_CONFIG_POLL_S", self.config_poll_s),
        ):
            if not positive > 0:
                raise SettingsError(f"{name}: must be > 0, got {positive}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        """Settings from the environment (``os.environ`` unless ``env`` is given)."""
        e = os.environ if env is None else env
        variant = e.get("HADIS_WORKER_VARIANT", "").strip()
        if not variant:
            raise SettingsError("HADIS_WORKER_VARIANT: required (the variant this worker serves)")
        config = e.get("HADIS_CONFIG_PATH", "").strip()
        engine = e.get("HADIS_ENGINE", "emulated").strip()
        if engine not in ENGINES:
            raise SettingsError(f"HADIS_ENGINE: must be one of {list(ENGINES)}, got {engine!r}")
        return cls(
            variant=variant,
            config_path=Path(config) if config else None,
            engine=engine,  # checked above
            profile=e.get("HADIS_PROFILE", "hadis-paper-l40s").strip() or "hadis-paper-l40s",
            gpu_type=e.get("HADIS_GPU_TYPE", "").strip() or None,
            host=e.get("HADIS_WORKER_HOST", "0.0.0.0").strip() or "0.0.0.0",
            port=_int(e, "HADIS_WORKER_PORT", 8001),
            batch_size=_int(e, "HADIS_WORKER_BATCH_SIZE", 1),
            time_scale=_float(e, "HADIS_TIME_SCALE", 1.0),
            max_queue=_int(e, "HADIS_WORKER_MAX_QUEUE", 1024),
            config_poll_s=_float(e, "HADIS_CONFIG_POLL_S", 1.0),
            seed=_int(e, "HADIS_WORKER_SEED", 0),
            drain_s=_float(e, "HADIS_WORKER_DRAIN_S", 30.0),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
