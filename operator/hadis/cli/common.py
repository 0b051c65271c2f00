"""Options shared by several commands, and turning them into typed inputs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hadis.api import GpuPool, Profile
from hadis.errors import UserError
from hadis.policy.pareto import build_pareto_table, table_for
from hadis.policy.registry import POLICIES
from hadis.profiles import DEFAULT_PROFILE, load_profile

#: The paper's E1 setup: 16 L40S GPUs, SLO 6 s, every latency × 0.1 (time-compressed 10x).
E1 = {"gpus": 16, "slo": 6.0, "time_scale": 0.1}


def add_profile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"built-in profile name or a profile JSON file ({DEFAULT_PROFILE})",
    )
    p.add_argument("--time-scale", type=float, default=None, help="multiply every latency (E1: 0.1)")
    p.add_argument("--variants", default=None, help="comma-separated variants to use (default: all)")


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, default=None, help="GPUs in a single pool of the profile's GPU type")
    p.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="NAME:GPU_TYPE:COUNT",
        help="a GPU pool (repeatable); instead of --gpus",
    )
    p.add_argument("--slo", type=float, default=None, help="latency SLO in seconds")
    p.add_argument("--policy", default="hadis", help=f"one of: {', '.join(POLICIES)}")
    p.add_argument(
        "--fixed-pair", default=None, metavar="LIGHT,HEAVY", help="the pair for --policy fixed-pair"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def positive(name: str, value: float | None, *, allow_zero: bool = False) -> float:
    if value is None:
        raise UserError(f"{name}: required")
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{name}: must be {'≥' if allow_zero else '>'} 0, got {value:g}")
    return value


def load(args: argparse.Namespace) -> Profile:
    profile = load_profile(args.profile)
    if args.time_scale is not None:
        profile = profile.time_scaled(positive("--time-scale", args.time_scale))
    return profile


def variants(args: argparse.Namespace, profile: Profile) -> list[str] | None:
    if not args.variants:
        return None
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    for n in names:
        if n not in profile.variant_names:
            raise UserError(f"--variants: unknown variant {n!r}; the profile has {profile.variant_names}")
    return names


def pools(args: argparse.Namespace, profile: Profile) -> list[GpuPool]:
    if args.pool and args.gpus is not None:
        raise UserError("--gpus and --pool: give one or the other")
    if not args.pool:
        count = int(positive("--gpus", args.gpus, allow_zero=True))
        return [GpuPool(name="default", gpu_type=profile.reference_gpu_type, count=count)]
    out = []
    for spec in args.pool:
        parts = spec.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise UserError(f"--pool {spec!r}: expected NAME:GPU_TYPE:COUNT, e.g. a:L40S:8")
        if parts[1] not in profile.gpu_types:
            raise UserError(
                f"--pool {spec!r}: GPU type {parts[1]!r} not in the profile ({profile.gpu_types})"
            )
        try:
            out.append(GpuPool(name=parts[0], gpu_type=parts[1], count=int(parts[2])))
        except ValueError as e:
            raise UserError(f"--pool {spec!r}: {e}") from None
    return out


def policy_name(args: argparse.Namespace) -> str:
    if args.policy not in POLICIES:
        raise UserError(f"--policy: unknown policy {args.policy!r}; choose one of: {', '.join(POLICIES)}")
    return str(args.policy)


def fixed_pair(args: argparse.Namespace, profile: Profile) -> tuple[str, str] | None:
    if not args.fixed_pair:
        if args.policy == "fixed-pair":
            raise UserError("--fixed-pair: required with --policy fixed-pair (LIGHT,HEAVY)")
        return None
    parts = [x.strip() for x in args.fixed_pair.split(",")]
    if len(parts) != 2 or any(x not in profile.variant_names for x in parts):
        raise UserError(
            f"--fixed-pair {args.fixed_pair!r}: expected LIGHT,HEAVY from {profile.variant_names}"
        )
    return parts[0], parts[1]


def pareto(profile: Profile, names: list[str] | None) -> list[Any]:
    return table_for(profile, variants=names) if names else build_pareto_table(profile.sweep)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
