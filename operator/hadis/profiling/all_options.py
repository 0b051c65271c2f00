"""The options of ``hadis profile all``, defined once for the CLI and the worker module it runs.

``hadis profile all`` measures the latencies (``hadis profile latency``), runs the quality sweep
(``hadis profile quality``) and checks the result, into one output directory. The CLI (no torch)
parses the options for ``--help`` and early errors (:func:`resolve`), then runs
``python -m hadis_worker.profiling.profile_all`` with the same arguments. :func:`latency_argv` and
:func:`quality_argv` are the two stages' command lines, so each stage runs exactly as its own
command would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hadis.profiling.latency_options import DTYPES, at_least, batch_list, name_value

#: what ``hadis profile all`` writes in ``--out-dir``
PROFILE = "profile.json"
SWEEP = "sweep.csv"
TABLE = "table.csv"
CACHE = "cache"
STAGES = "stages.json"
CHECK = "check.json"
CONFIG_MAP = "profile-configmap.yaml"
TINY_MODELS = "tiny-models"
FEATURES = ("tiny", "clip", "inception")

#: defaults without --tiny, and with it (tiny random-weight pipelines on the CPU: small and quick)
DEFAULTS: dict[str, object] = {
    "batches": [1, 2, 4, 8],
    "repeats": 5,
    "warmup": 1,
    "k": 4,
    "size": None,
    "batch_size": 4,
    "features": "inception",
    "grid_step": 0.1,
}
TINY_DEFAULTS: dict[str, object] = {
    "batches": [1, 2],
    "repeats": 1,
    "warmup": 0,
    "k": 2,
    "size": 64,
    "batch_size": 8,
    "features": "tiny",
    "grid_step": 0.1,
    "device": "cpu",
    "dtype": "float32",
    "steps": 2,
    "guidance_scale": 0.0,
    "gpu_type": "cpu",
}
#: what --tiny builds itself (the worker's hadis_worker.tiny_models and a seeded prompt/reference set)
TINY_BUILDS = ("variant", "unet", "discriminator", "prompts", "reference_images", "reference_stats", "merge")


class OptionError(ValueError):
    """Options that do not go together; the message names the option."""


def add_all_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_argument_group("what to profile (or --tiny)")
    what.add_argument(
        "--tiny",
        action="store_true",
        help=f"build tiny random-weight pipelines and a discriminator (in OUT_DIR/{TINY_MODELS}), prompts "
        "and reference images, and profile them on the CPU (a demo and smoke test: not a quality measure)",
    )
    what.add_argument(
        "--variant",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=MODEL",
        help="a variant and its diffusers pipeline (local directory or hub id); at least two",
    )
    what.add_argument(
        "--unet",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=CHECKPOINT",
        help="a UNet .safetensors state dict loaded over NAME's pipeline (the SDXL-Lightning way)",
    )
    what.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="a profile (JSON file or built-in name) the latencies are added to: its steps and guidance "
        "per variant, its other GPU types (the sweep is replaced by this run's)",
    )
    what.add_argument(
        "--discriminator",
        nargs=2,
        type=Path,
        default=None,
        metavar=("CLIP_DIR", "HEAD"),
        help="the CLIP image encoder directory and the MLP head the light workers score with",
    )
    what.add_argument("--prompts", type=Path, default=None, help="text file, one prompt per line")
    ref = what.add_mutually_exclusive_group()
    ref.add_argument("--reference-images", type=Path, default=None, help="folder of reference (real) images")
    ref.add_argument(
        "--reference-stats", type=Path, default=None, help=".npz with mu and sigma of the reference"
    )
    what.add_argument(
        "--router-scores",
        type=Path,
        default=None,
        help="CSV prompt,router_score (default: the gateway's router)",
    )
    how = p.add_argument_group("how to generate")
    how.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)"
    )
    how.add_argument("--dtype", choices=DTYPES, default=None, help="default: float16 on cuda, float32 on cpu")
    how.add_argument("--steps", type=at_least(1), default=None, help="denoising steps (default: --merge's)")
    how.add_argument("--guidance-scale", type=float, default=None, help="guidance scale (default: --merge's)")
    how.add_argument("--size", type=at_least(64), default=None, help="image side in pixels (default: native)")
    lat = p.add_argument_group("latencies (hadis profile latency)")
    lat.add_argument(
        "--gpu-type", default=None, help="the GPU type the latencies are recorded under, e.g. L40S"
    )
    lat.add_argument("--gpu-memory-gib", type=float, default=None, help="the GPU's memory (default: CUDA's)")
    lat.add_argument("--batches", type=batch_list, default=None, help="batch sizes (1,2,4,8; --tiny: 1,2)")
    lat.add_argument(
        "--repeats", type=at_least(1), default=None, help="timed runs per batch size (5; --tiny: 1)"
    )
    lat.add_argument(
        "--warmup", type=at_least(0), default=None, help="untimed runs before them (1; --tiny: 0)"
    )
    qual = p.add_argument_group("quality sweep (hadis profile quality)")
    qual.add_argument(
        "--k", type=at_least(1), default=None, help="images per prompt per variant (4; --tiny: 2)"
    )
    qual.add_argument("--seed", type=int, default=0, help="base seed of the images (0)")
    qual.add_argument("--batch-size", type=at_least(1), default=None, help="images per pipeline call (4)")
    qual.add_argument(
        "--features",
        choices=FEATURES,
        default=None,
        help="feature extractor of the FID (inception; --tiny: tiny)",
    )
    qual.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help="the Inception-v3 weights file of --features inception (nothing is downloaded)",
    )
    qual.add_argument("--grid-step", type=float, default=None, help="θ and τ go from 0 to 1 by this (0.1)")
    out = p.add_argument_group("output")
    out.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help=f"where everything goes: {PROFILE}, {TABLE}, {SWEEP}, {CHECK}, the image cache ({CACHE}/)",
    )
    out.add_argument(
        "--name", default=None, help="the profile's name (default: --merge's, else OUT_DIR's name)"
    )
    out.add_argument(
        "--export",
        default=None,
        metavar="CONFIGMAP",
        help=f"also write the profile as a ConfigMap of this name ({CONFIG_MAP})",
    )
    out.add_argument("--namespace", default=None, help="the exported ConfigMap's namespace")
    out.add_argument(
        "--resume",
        action="store_true",
        help="keep what an earlier run finished: its latencies (partial ones too) and a finished sweep",
    )


def resolve(ns: argparse.Namespace) -> argparse.Namespace:
    """``ns`` with its defaults filled in (``--tiny``'s or the usual ones), checked; raises OptionError."""
    if ns.tiny:
        given = [f"--{k.replace('_', '-')}" for k in TINY_BUILDS if getattr(ns, k) not in (None, [])]
        if given:
            raise OptionError(f"{', '.join(given)}: --tiny builds its own; give one or the other")
        defaults = TINY_DEFAULTS
    else:
        defaults = DEFAULTS
        missing = [
            opt
            for opt, value in (
                ("--variant (at least two)", len(ns.variant) >= 2),
                ("--discriminator", ns.discriminator is not None),
                ("--prompts", ns.prompts is not None),
                ("--reference-images or --reference-stats", ns.reference_images or ns.reference_stats),
                ("--gpu-type", ns.gpu_type is not None),
            )
            if not value
        ]
        if missing:
            raise OptionError(f"{', '.join(missing)}: required (or --tiny, for tiny pipelines on the CPU)")
    out = argparse.Namespace(**vars(ns))
    for key, value in defaults.items():
        if getattr(out, key) is None:
            setattr(out, key, value)
    names = [n for n, _ in out.variant]
    if len(set(names)) != len(names):
        raise OptionError(f"--variant: duplicate names in {names}")
    if out.features == "inception" and out.inception_weights is None:
        raise OptionError(
            "--inception-weights: required with --features inception (the Inception-v3 weights file; "
            "nothing is downloaded), or choose --features clip or tiny"
        )
    if not ns.tiny and out.merge is None and (out.steps is None or out.guidance_scale is None):
        raise OptionError("--steps and --guidance-scale: required without --merge (a profile that has them)")
    if out.namespace is not None and out.export is None:
        raise OptionError("--namespace: only with --export")
    return out


def _flags(pairs: list[tuple[str, object]]) -> list[str]:
    return [f"{flag}={value}" for flag, value in pairs if value is not None]


def latency_argv(ns: argparse.Namespace) -> list[str]:
    """``hadis profile latency``'s arguments for resolved options (``ns.variant`` etc. filled in)."""
    out = [f"--variant={n}={m}" for n, m in ns.variant] + [f"--unet={n}={c}" for n, c in ns.unet]
    out += _flags(
        [
            ("--device", ns.device),
            ("--dtype", ns.dtype),
            ("--batches", ",".join(str(b) for b in ns.batches)),
            ("--repeats", ns.repeats),
            ("--warmup", ns.warmup),
            ("--steps", ns.steps),
            ("--guidance-scale", ns.guidance_scale),
            ("--size", ns.size),
            ("--gpu-type", ns.gpu_type),
            ("--gpu-memory-gib", ns.gpu_memory_gib),
            ("--merge", ns.merge),
            ("--name", ns.name or (None if ns.merge else ns.out_dir.resolve().name)),
            ("--out", ns.out_dir / PROFILE),
        ]
    )
    out += ["--discriminator", *(str(x) for x in ns.discriminator)]
    return out


def quality_argv(ns: argparse.Namespace) -> list[str]:
    """``hadis profile quality``'s arguments for resolved options (merged into the stage-1 profile)."""
    out = [f"--variant={n}={m}" for n, m in ns.variant] + [f"--unet={n}={c}" for n, c in ns.unet]
    out += _flags(
        [
            ("--prompts", ns.prompts),
            ("--k", ns.k),
            ("--seed", ns.seed),
            ("--device", ns.device),
            ("--dtype", ns.dtype),
            ("--steps", ns.steps),
            ("--guidance-scale", ns.guidance_scale),
            ("--size", ns.size),
            ("--batch-size", ns.batch_size),
            ("--router-scores", ns.router_scores),
            ("--reference-images", ns.reference_images),
            ("--reference-stats", ns.reference_stats),
            ("--features", ns.features),
            ("--inception-weights", ns.inception_weights),
            ("--grid-step", ns.grid_step),
            ("--cache", ns.out_dir / CACHE),
            ("--out", ns.out_dir / SWEEP),
            ("--table", ns.out_dir / TABLE),
            ("--profile", ns.out_dir / PROFILE),
        ]
    )
    out += ["--discriminator", *(str(x) for x in ns.discriminator)]
    return out
