"""The variants of the quality sweep: their engine plans (checked by the worker's own settings
code), their costs per image and their model indices in the sweep CSV."""

from __future__ import annotations

import argparse
from typing import Any

from hadis.api.profile import Profile
from hadis_worker.profiling.errors import QualityError


def plans(args: argparse.Namespace, profile: Profile | None) -> list[tuple[str, Any]]:
    """(name, ModelPlan) per variant, checked by the worker's own settings code."""
    import torch

    from hadis_worker.engines.diffusers_engine import plan_from_settings
    from hadis_worker.settings import SettingsError, WorkerSettings

    variants = list(args.variant) or ([(v.name, v.model) for v in profile.variants] if profile else [])
    if len(variants) < 2:
        raise QualityError("give at least two variants (--variant NAME=MODEL, or a --profile that has them)")
    names = [n for n, _ in variants]
    if len(set(names)) != len(names):
        raise QualityError(f"--variant: duplicate names in {names}")
    unets = dict(args.unet)
    if set(unets) - set(names):
        raise QualityError(f"--unet: {sorted(set(unets) - set(names))} are not among the variants {names}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = []
    for name, model in variants:
        known = profile.variant(name) if profile is not None and name in profile.variant_names else None
        steps = args.steps if args.steps is not None else (known.steps if known else None)
        guidance = (
            args.guidance_scale
            if args.guidance_scale is not None
            else (known.guidance_scale if known else None)
        )
        try:
            settings = WorkerSettings(
                variant=name,
                engine="diffusers",
                model=model,
                unet_checkpoint=unets.get(name),
                device=device,
                dtype=args.dtype,
                steps=steps,
                guidance_scale=guidance,
                profile=str(args.profile) if args.profile else "-",
            )
            out.append((name, plan_from_settings(settings)))
        except SettingsError as e:
            raise QualityError(f"--variant {name}: {e}") from None
    return out


def latencies(args: argparse.Namespace, profile: Profile | None, names: list[str]) -> dict[str, float] | None:
    """Seconds per image of every variant (--latency, else the profile's batch-1 latency), or None."""
    given = {n: float(s) for n, s in args.latency}
    if profile is not None:
        gpu = profile.reference_gpu_type
        for n in names:
            if n in profile.variant_names and n not in given:
                given[n] = profile.variant(n).perf_on(gpu).latency(1)
    if not given:
        return None
    missing = [n for n in names if n not in given]
    if missing:
        raise QualityError(f"no latency for {missing}: add them to --profile or give --latency NAME=SECONDS")
    return given


def indices(profile: Profile | None, names: list[str]) -> dict[str, int]:
    """The sweep's model index per variant: the profile's where it has one, else the next free one."""
    index = {v.name: v.index for v in profile.variants if v.index is not None} if profile else {}
    out: dict[str, int] = {}
    taken = set(index.values())
    for n in names:
        if n in index:
            out[n] = index[n]
        else:
            out[n] = next(i for i in range(len(taken) + len(names) + 1) if i not in taken)
            taken.add(out[n])
    return out
