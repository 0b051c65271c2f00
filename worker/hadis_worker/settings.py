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
HADIS_MODEL                 diffusers: local pipeline directory or hub id     the profile variant's
HADIS_UNET_CHECKPOINT       diffusers: a UNet .safetensors state dict to      none
                            load over the pipeline's (the SDXL-Lightning way)
HADIS_MODEL_ROOT            local model paths must resolve inside this dir    none (any path)
HADIS_DEVICE                diffusers: ``cpu``, ``cuda`` or ``cuda:N``        cuda if present, else cpu
HADIS_DTYPE                 diffusers: float32, float16 or bfloat16           float16 on cuda, else 32
HADIS_STEPS                 diffusers: denoising steps until a config names   the profile variant's
HADIS_GUIDANCE_SCALE        diffusers: guidance until a config names one      the profile variant's
HADIS_DISCRIMINATOR_CLIP    saved CLIP model + image processor directory      none (no p_real)
HADIS_DISCRIMINATOR_HEAD    the discriminator head's state dict file          none (no p_real)
=========================== ================================================= =====================

Local paths (model, UNet checkpoint, discriminator files) are checked by :func:`resolve_local_path`:
with ``HADIS_MODEL_ROOT`` set, a relative path is taken inside the root, and a path that resolves
outside it (``..``, absolute elsewhere, a symlink out) is refused naming the variable. A local
directory (pipeline, CLIP model) is also refused when a file or directory in it is a symlink
leading out of the root (:func:`check_tree_confined`): the loader would follow it.
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
DTYPES = ("float32", "float16", "bfloat16")
DEVICE_PATTERN = r"^(cpu|mps|cuda(:[0-9]+)?)$"
#: A Hugging Face hub id: ``name`` or ``owner/name`` (letters, digits, ``-_.``; not ``.``/``..``).
HUB_ID_PATTERN = r"^(?!\.{1,2}(/|$))[A-Za-z0-9][\w.-]*(/(?!\.{1,2}$)[\w.-]+)?$"


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
    model: str | None = None
    unet_checkpoint: str | None = None
    model_root: Path | None = None
    device: str | None = None
    dtype: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    discriminator_clip: str | None = None
    discriminator_head: str | None = None

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
        if self.device is not None and not re.match(DEVICE_PATTERN, self.device):
            raise SettingsError(f"HADIS_DEVICE: expected cpu, cuda or cuda:N, got {self.device!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise SettingsError(f"HADIS_DTYPE: must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.steps is not None and not 1 <= self.steps <= 500:
            raise SettingsError(f"HADIS_STEPS: must be within [1, 500], got {self.steps}")
        if self.guidance_scale is not None and not 0 <= self.guidance_scale <= 50:
            raise SettingsError(f"HADIS_GUIDANCE_SCALE: must be within [0, 50], got {self.guidance_scale}")
        if (self.discriminator_clip is None) != (self.discriminator_head is None):
            missing = (
                "HADIS_DISCRIMINATOR_HEAD" if self.discriminator_head is None else "HADIS_DISCRIMINATOR_CLIP"
            )
            raise SettingsError(
                f"{missing}: required with the other discriminator path (set both or neither)"
            )

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
            model=_str(e, "HADIS_MODEL"),
            unet_checkpoint=_str(e, "HADIS_UNET_CHECKPOINT"),
            model_root=Path(root) if (root := _str(e, "HADIS_MODEL_ROOT")) else None,
            device=_str(e, "HADIS_DEVICE"),
            dtype=_str(e, "HADIS_DTYPE"),
            steps=_int(e, "HADIS_STEPS", 0) if _str(e, "HADIS_STEPS") else None,
            guidance_scale=_float(e, "HADIS_GUIDANCE_SCALE", 0.0)
            if _str(e, "HADIS_GUIDANCE_SCALE")
            else None,
            discriminator_clip=_str(e, "HADIS_DISCRIMINATOR_CLIP"),
            discriminator_head=_str(e, "HADIS_DISCRIMINATOR_HEAD"),
        )

    def local_path(self, name: str, value: str) -> Path:
        """A local file or directory setting, confined to ``HADIS_MODEL_ROOT`` (see the module docstring)."""
        return resolve_local_path(value, self.model_root, name)

    def model_source(self, model: str) -> Path | str:
        """The diffusers model to load: a local directory (confined) or a hub id (when not a local path)."""
        return resolve_model(model, self.model_root)


def resolve_local_path(value: str, root: Path | None, name: str) -> Path:
    """``value`` as a path; with ``root``, relative to it and refused (naming ``name``) if it leaves it."""
    path = Path(value).expanduser()
    if root is None:
        return path
    base = root.expanduser().resolve()
    resolved = (base / path).resolve()  # an absolute ``path`` replaces ``base``
    if resolved != base and base not in resolved.parents:
        raise SettingsError(f"{name}: {value!r} resolves to {resolved}, outside HADIS_MODEL_ROOT={base}")
    return resolved


def check_tree_confined(directory: Path, root: Path | None, name: str) -> None:
    """Refuse (naming ``name``) a directory in which an entry resolves outside ``root`` (a symlink
    out); nothing to check without a root. Symlinked directories are checked, not followed."""
    if root is None:
        return
    base = root.expanduser().resolve()
    for parent, dirs, files in os.walk(directory):
        for entry in (*dirs, *files):
            path = Path(parent) / entry
            resolved = path.resolve()
            if resolved != base and base not in resolved.parents:
                raise SettingsError(f"{name}: {path} links to {resolved}, outside HADIS_MODEL_ROOT={base}")


def resolve_model(model: str, root: Path | None) -> Path | str:
    """HADIS_MODEL: a local directory (confined to ``root``) when it is one, else a hub id.

    A value that exists on disk (inside the root, with one) is a local path; so is anything that
    cannot be a hub id (absolute, ``./``, ``..``, ``~``). Only what remains and matches the hub's
    ``owner/name`` form is passed to the hub (which ``HF_HUB_OFFLINE=1`` keeps to the local cache).
    """
    local = resolve_local_path(model, root, "HADIS_MODEL")
    if local.exists():
        if local.is_dir():
            check_tree_confined(local, root, "HADIS_MODEL")
        return local
    if re.match(HUB_ID_PATTERN, model) and not Path(model).expanduser().is_absolute():
        return model
    raise SettingsError(f"HADIS_MODEL: {model!r} is not a directory ({local} does not exist) nor a hub id")


def _str(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


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
