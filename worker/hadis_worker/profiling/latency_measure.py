"""Measuring one variant: load and host-to-GPU swap time, each batch size's latencies and peak
memory (smallest first, until one runs out of memory), and the discriminator's seconds per image.

Every finished measurement goes to the ``save`` callback (the resumable partial file)."""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from hadis.api.wire import GenerateRequest
from hadis.profiling.latency_stats import BatchMeasurement, VariantMeasurement, batches_to_measure, quantile
from hadis_worker.engines.diffusers_engine import DiffusersEngine
from hadis_worker.profiling.errors import LatencyError
from hadis_worker.profiling.progress import say

GIB = 2**30


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
    engine: DiffusersEngine,
    device: str,
    args: argparse.Namespace,
    m: VariantMeasurement,
    save: Callable[[VariantMeasurement], None],
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
