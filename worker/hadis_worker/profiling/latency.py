"""``python -m hadis_worker.profiling.latency``: measure variants' batch latencies on this device.

``hadis profile latency`` runs this module (its options: :mod:`hadis.profiling.latency_options`).
For each variant the pipeline is loaded by the worker's own engine
(:class:`~hadis_worker.engines.diffusers_engine.DiffusersEngine`: AutoPipelineForText2Image, the
SDXL-Lightning UNet checkpoint path, the dtype) onto the CPU (timed: load), then moved to the GPU
(timed: host-to-GPU swap; not measured on the CPU). Each batch size then runs ``--warmup`` untimed
and ``--repeats`` timed generations through the worker's batch path (PNG encoding included, as
served), smallest first, until one runs out of memory (``torch.OutOfMemoryError``, recorded; larger
sizes are skipped). Peak memory is ``torch.cuda.max_memory_allocated`` per batch size on CUDA and
unknown (``null``) on the CPU. With ``--discriminator`` the discriminator's seconds per image are
measured too. Router overhead is not measured here (``bench/bench_router.py`` measures it).

Every finished measurement is saved to ``OUT.partial.json`` (atomically); ``--resume`` keeps it and
measures only what is missing. At the end the profile goes to ``OUT``, every figure (all repeats,
p90, load/swap/discriminator times, the largest batch that fits) to ``OUT.latency.json``.

The parts: :mod:`.latency_engines` (the engines, from the options), :mod:`.latency_measure` (one
variant's figures), :mod:`.latency_files` (the partial file and the report's path).
"""

from __future__ import annotations

import argparse
import resource
import sys
from typing import Any

import torch

from hadis.errors import UserError
from hadis.profiles import load_profile, write_profile
from hadis.profiling.latency_options import add_latency_arguments
from hadis.profiling.latency_report import build_report, next_steps, summary_lines
from hadis.profiling.latency_stats import ProfileBuildError, VariantMeasurement, build_profile
from hadis_worker.profiling.atomic_files import write_json
from hadis_worker.profiling.errors import LatencyError
from hadis_worker.profiling.latency_engines import build_engines, import_pipelines
from hadis_worker.profiling.latency_files import load_partial, partial_path, report_path
from hadis_worker.profiling.latency_measure import GIB, profile_variant

__all__ = ["LatencyError", "build_engines", "import_pipelines", "main", "partial_path", "run"]


def run(args: argparse.Namespace) -> int:
    fids: dict[str, float] = {}
    for name, value in args.fid:
        try:
            fids[name] = float(value)
        except ValueError:
            raise LatencyError(f"--fid {name}={value}: not a number") from None
    try:
        base = load_profile(args.merge) if args.merge is not None else None
    except UserError as e:
        raise LatencyError(f"--merge: {e}") from None
    engines = build_engines(args, base)
    import_pipelines()
    device = engines[0][1]["device"]
    partial = partial_path(args.out)
    saved = load_partial(partial, args.resume)
    state: dict[str, Any] = {}

    def save(m: VariantMeasurement) -> None:
        state[m.name] = {"settings": state[m.name]["settings"], **m.to_json()}
        write_json(partial, {"kind": "HadisLatencyPartial", "variants": state})

    measured = []
    for engine, fingerprint in engines:
        name = engine.variant
        old = saved.get(name)
        if old is not None and old.get("settings") != fingerprint:
            diff = sorted(k for k in fingerprint if old.get("settings", {}).get(k) != fingerprint[k])
            raise LatencyError(f"--resume: {partial} measured {name} with other settings ({', '.join(diff)})")
        fresh = VariantMeasurement(
            name=name,
            model=str(engine.plan.model),
            steps=fingerprint["steps"],
            guidance_scale=fingerprint["guidanceScale"],
        )
        m = VariantMeasurement.from_json(old) if old else fresh
        state[name] = {"settings": fingerprint, **m.to_json()}
        measured.append(profile_variant(engine, device, args, m, save))
    memory = args.gpu_memory_gib
    if memory is None and device.startswith("cuda"):
        memory = torch.cuda.get_device_properties(device).total_memory / GIB
    try:
        profile, placeholders = build_profile(
            measured,
            gpu_type=args.gpu_type,
            gpu_memory_gib=memory,
            base=base,
            name=args.name or (None if base else args.out.stem),
            fids=fids,
        )
    except ProfileBuildError as e:
        raise LatencyError(f"{e} (the measurements stay in {partial})") from None
    write_profile(profile, args.out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB
    settings = {name: entry["settings"] for name, entry in state.items()}
    report = build_report(
        measured,
        settings,
        profile_path=str(args.out),
        gpu_type=args.gpu_type,
        device=device,
        process_peak_rss_gib=rss,
    )
    write_json(report_path(args.out), report)
    partial.unlink(missing_ok=True)
    print("\n".join(summary_lines(measured)))
    print(
        f"wrote {args.out} (profile {profile.name!r}, GPU type {args.gpu_type}) and {report_path(args.out)}"
    )
    for line in next_steps(profile, placeholders):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hadis profile latency", description=__doc__.split("\n", 1)[0])
    add_latency_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except LatencyError as e:
        print(f"hadis profile latency: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"interrupted; what was measured is in {partial_path(args.out)} (--resume continues)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
