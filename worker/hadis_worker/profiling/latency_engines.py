"""The engines ``hadis profile latency`` measures: one worker engine per ``--variant``, checked by the
worker's own settings code, and the settings its figures depend on (the resume fingerprint)."""

from __future__ import annotations

import argparse
from typing import Any

import torch

from hadis_worker.engines.diffusers_engine import DiffusersEngine, plan_from_settings
from hadis_worker.profiling.errors import LatencyError
from hadis_worker.settings import SettingsError, WorkerSettings

#: worker setting names in engine errors → the options of this command
OPTION_NAMES = {
    "HADIS_WORKER_VARIANT": "--variant",
    "HADIS_MODEL": "--variant",
    "HADIS_UNET_CHECKPOINT": "--unet",
    "HADIS_DEVICE": "--device",
}


def option_error(name: str, msg: str) -> str:
    """A worker settings error, naming this command's option instead of the environment variable."""
    var, sep, rest = msg.partition(": ")
    option = OPTION_NAMES.get(var)
    return f"{option} {name}: {rest}" if sep and option else f"--variant {name}: {msg}"


def build_engines(args: argparse.Namespace, base: Any) -> list[tuple[DiffusersEngine, dict[str, Any]]]:
    """One unloaded engine per variant (loading onto the CPU) and the settings its figures depend on."""
    unets = dict(args.unet)
    unknown = sorted(set(unets) - {n for n, _ in args.variant})
    if unknown:
        raise LatencyError(f"--unet: {unknown} are not among the --variant names")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LatencyError(f"--device {device}: torch sees no CUDA device")
    dtype = args.dtype or ("float16" if device.startswith("cuda") else "float32")
    out = []
    for name, model in args.variant:
        known = base.variant(name) if base is not None and name in base.variant_names else None
        steps = args.steps if args.steps is not None else (known.steps if known else None)
        guidance = (
            args.guidance_scale
            if args.guidance_scale is not None
            else (known.guidance_scale if known else None)
        )
        if steps is None or guidance is None:
            raise LatencyError(
                f"--variant {name}: give --steps and --guidance-scale (the profile records the latency "
                "of these settings), or --merge a profile that has this variant"
            )
        try:
            settings = WorkerSettings(
                variant=name,
                engine="diffusers",
                model=model,
                unet_checkpoint=unets.get(name),
                device="cpu",
                dtype=dtype,
                steps=steps,
                guidance_scale=guidance,
            )
            plan = plan_from_settings(settings)
        except SettingsError as e:
            raise LatencyError(option_error(name, str(e))) from None
        fingerprint = {
            "model": str(plan.model),
            "unet": unets.get(name),
            "device": device,
            "dtype": dtype,
            "steps": steps,
            "guidanceScale": guidance,
            "size": args.size,
            "prompt": args.prompt,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "gpuType": args.gpu_type,
        }
        out.append((DiffusersEngine(name, plan), fingerprint))
    return out


def import_pipelines() -> None:
    """diffusers imports its pipeline classes on first use: not part of any variant's load time."""
    import diffusers.pipelines.auto_pipeline  # noqa: F401
    import transformers  # noqa: F401
