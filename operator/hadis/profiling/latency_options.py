"""The options of ``hadis profile latency``, defined once for the CLI and the worker module it runs.

``hadis profile latency`` (control plane, no torch) parses them for ``--help`` and early errors,
then runs ``python -m hadis_worker.profiling.latency`` with :func:`to_argv` of the parsed values.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

DTYPES = ("float32", "float16", "bfloat16")


def name_value(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` → (NAME, VALUE)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def batch_list(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated batch sizes, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be ≥ 1, got {text!r}")
    return sizes


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}, got {value}")
        return value

    return parse


def add_latency_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--variant",
        action="append",
        type=name_value,
        required=True,
        metavar="NAME=MODEL",
        help="a variant and its diffusers pipeline (local directory or hub id); repeatable",
    )
    p.add_argument(
        "--unet",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=CHECKPOINT",
        help="a UNet .safetensors state dict loaded over NAME's pipeline (the SDXL-Lightning way)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)"
    )
    p.add_argument("--dtype", choices=DTYPES, default=None, help="default: float16 on cuda, float32 on cpu")
    p.add_argument("--batches", type=batch_list, default=[1, 2, 4, 8], help="batch sizes (1,2,4,8)")
    p.add_argument("--repeats", type=at_least(1), default=5, help="timed runs per batch size (5)")
    p.add_argument("--warmup", type=at_least(0), default=1, help="untimed runs before them (1)")
    p.add_argument(
        "--steps", type=at_least(1), default=None, help="denoising steps (default: the merged profile's)"
    )
    p.add_argument(
        "--guidance-scale", type=float, default=None, help="guidance scale (default: the merged profile's)"
    )
    p.add_argument("--size", type=at_least(64), default=None, help="image side in pixels (default: native)")
    p.add_argument("--prompt", default="a photo of a cat", help="the prompt every image is generated from")
    p.add_argument(
        "--gpu-type", required=True, help="the GPU type the latencies are recorded under, e.g. L40S"
    )
    p.add_argument(
        "--gpu-memory-gib", type=float, default=None, help="the GPU's memory (default: what CUDA reports)"
    )
    p.add_argument("--out", type=Path, required=True, help="the profile JSON to write")
    p.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="a profile (JSON file or built-in name) to add the measurements to; its sweep and FIDs are kept",
    )
    p.add_argument("--name", default=None, help="the profile's name (default: --merge's, else --out's stem)")
    p.add_argument(
        "--fid",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=FID",
        help="single-model FID of a variant the merged profile does not have",
    )
    p.add_argument(
        "--discriminator",
        nargs=2,
        type=Path,
        default=None,
        metavar=("CLIP_DIR", "HEAD"),
        help="also measure the discriminator's seconds per image",
    )
    p.add_argument("--resume", action="store_true", help="keep what OUT.partial.json already measured")


def to_argv(ns: argparse.Namespace) -> list[str]:
    """Command-line arguments that parse back into ``ns`` (see :func:`add_latency_arguments`)."""
    out: list[str] = []
    for name, model in ns.variant:
        out.append(f"--variant={name}={model}")
    for name, ckpt in ns.unet:
        out.append(f"--unet={name}={ckpt}")
    for name, fid in ns.fid:
        out.append(f"--fid={name}={fid}")
    out.append(f"--batches={','.join(str(b) for b in ns.batches)}")
    out += [f"--repeats={ns.repeats}", f"--warmup={ns.warmup}", f"--prompt={ns.prompt}"]
    out += [f"--gpu-type={ns.gpu_type}", f"--out={ns.out}"]
    for flag, value in (
        ("--device", ns.device),
        ("--dtype", ns.dtype),
        ("--steps", ns.steps),
        ("--guidance-scale", ns.guidance_scale),
        ("--size", ns.size),
        ("--gpu-memory-gib", ns.gpu_memory_gib),
        ("--merge", ns.merge),
        ("--name", ns.name),
    ):
        if value is not None:
            out.append(f"{flag}={value}")
    if ns.discriminator is not None:
        out += ["--discriminator", *(str(x) for x in ns.discriminator)]
    if ns.resume:
        out.append("--resume")
    return out
