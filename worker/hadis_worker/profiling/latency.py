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
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from hadis.api.wire import GenerateRequest
from hadis.errors import UserError
from hadis.profiles import load_profile, write_profile
from hadis.profiling.latency_options import add_latency_arguments
from hadis.profiling.latency_report import build_report, next_steps, summary_lines
from hadis.profiling.latency_stats import (
    BatchMeasurement,
    ProfileBuildError,
    VariantMeasurement,
    batches_to_measure,
    build_profile,
)
from hadis_worker.engines.diffusers_engine import DiffusersEngine, plan_from_settings
from hadis_worker.settings import SettingsError, WorkerSettings

GIB = 2**30
#: worker setting names in engine errors → the options of this command
OPTION_NAMES = {
    "HADIS_WORKER_VARIANT": "--variant",
    "HADIS_MODEL": "--variant",
    "HADIS_UNET_CHECKPOINT": "--unet",
    "HADIS_DEVICE": "--device",
}


class LatencyError(Exception):
    """A problem with the options or the inputs; printed as one line, exit status 2."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def partial_path(out: Path) -> Path:
    return out.with_suffix(".partial.json")


def report_path(out: Path) -> Path:
    return out.with_suffix(".latency.json")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _options(name: str, msg: str) -> str:
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
            raise LatencyError(_options(name, str(e))) from None
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


def requests(engine: DiffusersEngine, n: int, side: int, prompt: str) -> list[GenerateRequest]:
    return [
        GenerateRequest(
            request_id=f"profile-{i}",
            prompt=prompt,
            variant=engine.variant,
            width=side,
            height=side,
            seed=i,
            deadline_unix_s=time.time() + 86400,
        )
        for i in range(n)
    ]


def measure_batch(
    engine: DiffusersEngine, device: str, b: int, args: argparse.Namespace, side: int
) -> BatchMeasurement:
    batch = requests(engine, b, side, args.prompt)
    cuda = device.startswith("cuda")
    try:
        for _ in range(args.warmup):
            engine.generate_blocking(batch, record=False)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            engine.generate_blocking(batch, record=False)
            times.append(time.perf_counter() - started)
    except (torch.OutOfMemoryError, MemoryError):
        if cuda:
            torch.cuda.empty_cache()
        return BatchMeasurement(batch=b, oom=True)
    peak = torch.cuda.max_memory_allocated(device) / GIB if cuda else None
    return BatchMeasurement(batch=b, latencies_s=tuple(times), peak_memory_gib=peak)


def measure_discriminator(
    engine: DiffusersEngine, args: argparse.Namespace, side: int, device: str, n: int
) -> float:
    """The discriminator's seconds per image: median of repeats scoring ``n`` generated images at once."""
    from PIL import Image

    from hadis.profiling.latency_stats import quantile
    from hadis_worker.discriminator import Discriminator, DiscriminatorError

    clip, head = args.discriminator
    try:
        disc = Discriminator.load(clip, head, device)
    except DiscriminatorError as e:
        raise LatencyError(f"--discriminator: {e}") from None
    images = [
        Image.open(io.BytesIO(png))
        for png, _ in engine.generate_blocking(requests(engine, n, side, args.prompt), record=False)
    ]
    disc.score(images)  # warm-up
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        disc.score(images)
        times.append(time.perf_counter() - started)
    return quantile(times, 0.5) / n


def profile_variant(
    engine: DiffusersEngine, device: str, args: argparse.Namespace, m: VariantMeasurement, save: Any
) -> VariantMeasurement:
    todo = batches_to_measure(args.batches, m.batches)
    want_disc = args.discriminator is not None and m.discriminator_s_per_image is None
    name = engine.variant
    if not todo and not want_disc:
        say(f"[{name}] already measured (resumed): batches {[b.batch for b in m.batches]}")
        return m
    started = time.perf_counter()
    engine.load()
    m = replace(m, load_s=time.perf_counter() - started, swap_s=None)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        started = time.perf_counter()
        engine.pipe = engine.pipe.to(device)
        torch.cuda.synchronize(device)
        m = replace(m, swap_s=time.perf_counter() - started)
    swap = f", host-to-GPU {m.swap_s:.2f} s" if m.swap_s is not None else ""
    say(f"[{name}] loaded in {m.load_s:.2f} s{swap}; batches to measure: {todo}")
    side = args.size or max(64, engine.native_size())
    for i, b in enumerate(todo, start=1):
        bm = measure_batch(engine, device, b, args, side)
        m = m.with_batch(bm)
        save(m)
        if bm.oom:
            say(f"[{name}] batch {b}: out of memory; larger batches skipped ({i}/{len(todo)})")
            break
        mem = f"{bm.peak_memory_gib:.2f} GiB" if bm.peak_memory_gib is not None else "memory unknown (CPU)"
        say(f"[{name}] batch {b}: p50 {bm.p50_s:.3f} s  p90 {bm.p90_s:.3f} s  {mem}  ({i}/{len(todo)})")
    if want_disc and m.largest_batch is None:
        say(f"[{name}] discriminator not measured: no batch of images fitted")
    elif want_disc:
        # images from a batch size that fitted (at most 4), scored in one call as the light workers do
        per_image = measure_discriminator(engine, args, side, device, min(4, m.largest_batch or 1))
        m = replace(m, discriminator_s_per_image=per_image)
        save(m)
        say(f"[{name}] discriminator: {per_image * 1000:.1f} ms per image")
    engine.pipe = None
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return m


def import_pipelines() -> None:
    """diffusers imports its pipeline classes on first use: not part of any variant's load time."""
    import diffusers.pipelines.auto_pipeline  # noqa: F401
    import transformers  # noqa: F401


def load_partial(path: Path, resume: bool) -> dict[str, Any]:
    if not resume:
        if path.exists():
            say(f"{path}: replaced (an earlier run's measurements; --resume keeps them)")
        return {}
    if not path.exists():
        say(f"{path}: nothing to resume, measuring everything")
        return {}
    try:
        data = json.loads(path.read_text())
        return dict(data["variants"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LatencyError(f"--resume: {path} is not a partial latency file ({e})") from None


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
        _write_json(partial, {"kind": "HadisLatencyPartial", "variants": state})

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
    _write_json(report_path(args.out), report)
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
