"""The options of ``python -m hadis_worker.profiling.quality`` (``hadis profile quality`` passes
every argument on; see :mod:`.quality` for what the command does with them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hadis.profiling.latency_options import name_value
from hadis_worker.profiling.features import KINDS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hadis_worker.profiling.quality",
        description="The cascade quality sweep: generate, score, FID of θ × τ for every ordered pair.",
    )
    p.add_argument("--prompts", type=Path, required=True, help="text file, one prompt per line")
    p.add_argument(
        "--variant",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=MODEL",
        help="a variant and its diffusers pipeline (local directory or hub id), lightest first; repeatable "
        "(default: the --profile's variants and models)",
    )
    p.add_argument(
        "--unet",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=CHECKPOINT",
        help="a UNet .safetensors state dict loaded over NAME's pipeline (the SDXL-Lightning way)",
    )
    p.add_argument("--k", type=int, default=4, help="images per prompt per variant (4)")
    p.add_argument(
        "--seed", type=int, default=0, help="base seed; image k of prompt i has the same seed everywhere"
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)"
    )
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None)
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="denoising steps (default: the profile's, else the pipeline's)",
    )
    p.add_argument(
        "--guidance-scale", type=float, default=None, help="(default: the profile's, else the pipeline's)"
    )
    p.add_argument("--size", type=int, default=512, help="image side in pixels (512)")
    p.add_argument("--batch-size", type=int, default=4, help="images per pipeline call (4)")
    p.add_argument(
        "--discriminator",
        nargs=2,
        type=Path,
        required=True,
        metavar=("CLIP_DIR", "HEAD"),
        help="the CLIP image encoder directory and the MLP head the light workers score with",
    )
    p.add_argument(
        "--router-scores",
        type=Path,
        default=None,
        help="CSV prompt,router_score (hadis_gateway.score_prompts)",
    )
    ref = p.add_mutually_exclusive_group(required=True)
    ref.add_argument("--reference-stats", type=Path, help=".npz with mu and sigma of the reference features")
    ref.add_argument("--reference-images", type=Path, help="folder of reference (real) images")
    p.add_argument(
        "--features", choices=KINDS, default="inception", help="feature extractor of the FID (inception)"
    )
    p.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help="the Inception-v3 weights file of --features inception (torch-fidelity's "
        "weights-inception-2015-12-05-6726825d.pth); nothing is downloaded",
    )
    p.add_argument("--grid-step", type=float, default=0.1, help="θ and τ go from 0 to 1 by this (0.1)")
    p.add_argument(
        "--cache", type=Path, required=True, help="folder for images, scores and features (resumable)"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="the sweep CSV to write (cascade_sweep.csv format)"
    )
    p.add_argument("--table", type=Path, default=None, help="also write the Pareto table (needs costs)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="a profile JSON: latencies from it, the sweep merged into it",
    )
    p.add_argument(
        "--latency",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=SECONDS",
        help="seconds per image of a variant (costs without --profile)",
    )
    return p
