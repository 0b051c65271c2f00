"""``hadis table``: build and print the Pareto table of a profile's cascade sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from hadis.api import Profile
from hadis.cli.common import add_profile_options, load, pareto, print_json, progress, variants
from hadis.errors import InputFileError
from hadis.profiles import read_sweep_csv


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("table", help="build and print the Pareto table (cost per query vs FID)")
    add_profile_options(p)
    p.add_argument(
        "--sweep",
        type=Path,
        default=None,
        help="a sweep CSV (light_model,heavy_model,router_ratio,disc_ratio,threshold,latency,fid; models by "
        "the profile's variant index) to use instead of the profile's own sweep",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    profile = load(args)
    if args.sweep is not None:
        profile = with_sweep(profile, args.sweep)
    table = pareto(profile, variants(args, profile))
    if args.json:
        print_json(
            {"profile": profile.name, "sweepRows": len(profile.sweep), "rows": [r.to_wire() for r in table]}
        )
        return 0
    print(f"profile {profile.name}: {len(profile.sweep)} sweep rows -> {len(table)} Pareto-optimal rows")
    print(f"{'light':<18} {'heavy':<18} {'θ':>5} {'τ':>5} {'p':>5} {'cost s/q':>9} {'FID':>7}")
    for r in table:
        print(
            f"{r.light:<18} {r.heavy:<18} {r.theta:>5.2f} {r.tau:>5.2f} {r.p:>5.2f} "
            f"{r.cost_s or 0:>9.3f} {r.fid:>7.2f}"
        )
    return 0


def with_sweep(profile: Profile, path: Path) -> Profile:
    """The profile with its sweep replaced by the rows of a sweep CSV file."""
    names = {v.index: v.name for v in profile.variants if v.index is not None}
    rows = read_sweep_csv(path, names)
    if any(r.cost_s is None for r in rows):
        raise InputFileError(f"{path}: the Pareto table needs the 'latency' column (expected cost per query)")
    progress(f"read {len(rows)} configurations from {path}")
    return profile.model_copy(update={"sweep": rows})
