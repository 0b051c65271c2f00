"""``python -m hadis_worker.profiling.profile_all``: latencies, quality sweep and checks, in one directory.

``hadis profile all`` runs this module (its options: :mod:`hadis.profiling.all_options`). Into
``--out-dir`` it

1. measures the latencies exactly as ``hadis profile latency`` does (:mod:`.latency`) → ``profile.json``
   (and ``profile.latency.json``, every figure);
2. runs the quality sweep exactly as ``hadis profile quality`` does (:mod:`.quality`), merging the
   sweep and the FIDs into that profile → ``sweep.csv``, ``table.csv`` (the Pareto table), the image
   cache ``cache/`` and ``profile.prompts.csv``/``.txt``;
3. checks the result, read back through the planning core's loaders
   (:mod:`hadis.profiling.profile_check`): every variant and batch size measured, every
   (pair, θ, τ) cell in the sweep, the table the sweep's Pareto table, and a feasible allocation
   by the allocator → ``check.json``;
4. with ``--export NAME``, writes the profile as a ConfigMap (``profile-configmap.yaml``).

With ``--tiny`` it first builds tiny random-weight pipelines, a discriminator, prompts and
reference images (:mod:`.tiny_demo`) and profiles them on the CPU.

Resumable: the stages' command lines are recorded in ``stages.json``; with ``--resume`` a stage
that finished with the same command line is not run again, an interrupted latency stage continues
from its partial file, and the sweep always reuses the images, scores and features in ``cache/``.
Progress goes to stderr; stdout gets the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from hadis.errors import UserError
from hadis.policy.pareto import table_for
from hadis.profiles import load_profile, read_sweep_csv
from hadis.profiling import all_options as opts
from hadis.profiling.export import build_profile_config_map, manifest_yaml
from hadis.profiling.latency_options import add_latency_arguments
from hadis.profiling.profile_check import (
    ProfileCheckError,
    check_allocation,
    check_latencies,
    check_sweep,
    check_table,
    lightest_first,
)
from hadis.profiling.sweep import default_grid
from hadis_worker.profiling import latency, quality
from hadis_worker.profiling.atomic_files import write_bytes, write_json
from hadis_worker.profiling.errors import ProfilingError
from hadis_worker.profiling.latency_files import partial_path
from hadis_worker.profiling.progress import say


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hadis profile all", description=__doc__.split("\n", 1)[0])
    opts.add_all_arguments(p)
    return p


def load_stages(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else {}
    except (OSError, ValueError, TypeError):
        say(f"{path}: unreadable, every stage runs again")
        return {}


def run_latency(ns: argparse.Namespace, stages: dict[str, Any], argv: list[str]) -> str:
    """Stage 1; returns what happened."""
    profile = ns.out_dir / opts.PROFILE
    if (
        ns.resume
        and stages.get("latency") == argv
        and profile.is_file()
        and not partial_path(profile).exists()
    ):
        return "finished by an earlier run (--resume)"
    p = argparse.ArgumentParser(prog="hadis profile latency")
    add_latency_arguments(p)
    args = p.parse_args([*argv, "--resume"] if ns.resume else argv)
    with contextlib.redirect_stdout(sys.stderr):  # its table is progress here; stdout gets the summary
        latency.run(args)
    stages.pop("quality", None)  # a new profile: the sweep is merged into it again
    stages["latency"] = argv
    write_json(ns.out_dir / opts.STAGES, stages)
    return "measured"


def run_quality(ns: argparse.Namespace, stages: dict[str, Any], argv: list[str]) -> str:
    """Stage 2; returns what happened."""
    done = all((ns.out_dir / f).is_file() for f in (opts.SWEEP, opts.TABLE))
    if ns.resume and stages.get("quality") == argv and done:
        return "finished by an earlier run (--resume)"
    summary = quality.run(quality.parser().parse_args(argv))
    stages["quality"] = argv
    write_json(ns.out_dir / opts.STAGES, stages)
    generated = sum(summary["generated"].values())
    cached = sum(summary["cached"].values())
    return f"{generated} images generated, {cached} from the cache"


def check(ns: argparse.Namespace) -> dict[str, Any]:
    """Stage 3: the profile and the table read back through the planning core's loaders, checked."""
    try:
        profile = load_profile(ns.out_dir / opts.PROFILE)
    except UserError as e:
        raise ProfileCheckError(f"profile: {e}") from None
    names = [n for n, _ in ns.variant]
    index = {v.index: v.name for v in profile.variants if v.index is not None}
    batches = check_latencies(profile, names, ns.batches, ns.gpu_type)
    order = lightest_first(profile, names, profile.reference_gpu_type)
    grid = default_grid(ns.grid_step)
    sweep = read_sweep_csv(ns.out_dir / opts.SWEEP, index)
    cells = check_sweep(sweep, order, grid)
    check_sweep(profile.sweep, order, grid)
    table = read_sweep_csv(ns.out_dir / opts.TABLE, index)
    rows = check_table(table, sweep)
    if [r.key for r in table_for(profile, variants=names)] != [r.key for r in table]:
        raise ProfileCheckError(f"table: {opts.TABLE} is not the Pareto table of the profile's sweep")
    alloc = check_allocation(profile, table, names, ns.gpu_type)
    a = alloc.allocation
    row = a.row
    return {
        "profile": str(ns.out_dir / opts.PROFILE),
        "gpuType": ns.gpu_type,
        "variants": order,
        "batches": batches,
        "sweepCells": cells,
        "tableRows": rows,
        "fid": {v.name: v.fid for v in profile.variants if v.name in names},
        "allocation": {
            "gpus": alloc.gpus,
            "demandQps": alloc.demand_qps,
            "sloS": alloc.slo_s,
            "feasible": a.feasible,
            "row": None
            if row is None
            else {"light": row.light, "heavy": row.heavy, "theta": row.theta, "tau": row.tau},
            "expectedFid": a.expected_fid,
            "replicas": {v.variant: v.replicas for v in a.variants},
        },
    }


def export(ns: argparse.Namespace) -> Path:
    profile = load_profile(ns.out_dir / opts.PROFILE)
    try:
        manifest = build_profile_config_map(profile, name=ns.export, namespace=ns.namespace)
    except ValueError as e:
        raise ProfilingError(f"--export {ns.export}: {e}") from None
    path: Path = ns.out_dir / opts.CONFIG_MAP
    write_bytes(path, manifest_yaml(manifest).encode())
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        ns = opts.resolve(args)
    except opts.OptionError as e:
        raise ProfilingError(str(e)) from None
    ns.out_dir.mkdir(parents=True, exist_ok=True)
    if ns.tiny:
        from hadis_worker.profiling.tiny_demo import prepare

        ns = prepare(ns)
    stages = load_stages(ns.out_dir / opts.STAGES)
    steps: dict[str, str] = {}
    for i, (name, stage, argv) in enumerate(
        (
            ("latency", run_latency, opts.latency_argv(ns)),
            ("quality", run_quality, opts.quality_argv(ns)),
        ),
        start=1,
    ):
        t = time.perf_counter()
        say(f"[{i}/3] {name}: hadis profile {name} {' '.join(argv)}")
        steps[name] = stage(ns, stages, argv)
        say(f"[{i}/3] {name}: {steps[name]} in {time.perf_counter() - t:.1f} s")
    say("[3/3] check: the profile and the table through the planning core's loaders and the allocator")
    result = {"steps": steps, **check(ns)}
    if ns.export is not None:
        result["configMap"] = str(export(ns))
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_json(ns.out_dir / opts.CHECK, result)
    return result


def summary_lines(r: dict[str, Any]) -> list[str]:
    a = r["allocation"]
    row = a["row"]
    cascade = f"{row['light']} -> {row['heavy']} θ={row['theta']:g} τ={row['tau']:g}" if row else "no cascade"
    return [
        f"profile {r['profile']}: {len(r['variants'])} variants on {r['gpuType']}, batch sizes "
        + "; ".join(f"{n} {b}" for n, b in r["batches"].items()),
        f"sweep: {r['sweepCells']} cells; Pareto table: {r['tableRows']} rows; single-model FID "
        + ", ".join(f"{n} {f:.4g}" for n, f in r["fid"].items()),
        f"allocator: {a['demandQps']:.3g} QPS within {a['sloS']:.3g} s on {a['gpus']} GPUs: {cascade}, "
        f"expected FID {a['expectedFid']:.4g}, replicas {a['replicas']}",
        f"done in {r['seconds']} s; the checks' details: {Path(r['profile']).parent / opts.CHECK}"
        + (f"; ConfigMap {r['configMap']}" if "configMap" in r else ""),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = run(args)
    except (ProfilingError, UserError) as e:
        print(f"hadis profile all: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"interrupted; what was done is in {args.out_dir} (the same command with --resume continues)",
            file=sys.stderr,
        )
        return 130
    print("\n".join(summary_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
