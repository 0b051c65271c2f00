"""What ``hadis profile all --tiny`` profiles: tiny random-weight pipelines on the CPU.

The pipelines and the discriminator are :mod:`hadis_worker.tiny_models`' (built once into
``OUT_DIR/tiny-models``; kept when a rerun finds them), the prompts a fixed set of eight, the
reference images sixteen seeded noise images. The weights are random, so the images are noise too:
the figures exercise every step and file, they are not a quality measure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hadis.profiling.all_options import TINY_MODELS
from hadis_worker.profiling.progress import say
from hadis_worker.tiny_models import HEAVY, LIGHT

PROMPTS = (
    "a red ball sits in the grass on a green field",
    "the sail is white",
    "a small animal with big eyes sitting on the ground",
    "a large metal structure",
    "a wooden box with a japanese writing on it",
    "two dogs running along a beach next to a blue boat at sunset",
    "a bowl of soup",
    "an old man reading a newspaper on a bench in a crowded park",
)
REFERENCE_IMAGES = 16
REFERENCE_PX = 64


def model_paths(root: Path) -> dict[str, Path]:
    """Where :func:`hadis_worker.tiny_models.build_all` writes each part under ``root``."""
    return {
        "sd": root / "tiny-sd",
        "sdxl": root / "tiny-sdxl",
        "unet_checkpoint": root / "tiny-sdxl-lightning-unet.safetensors",
        "clip": root / "discriminator" / "clip",
        "head": root / "discriminator" / "head.safetensors",
        "profile": root / "tiny-diffusers.json",
    }


def build_models(root: Path) -> dict[str, Path]:
    """The tiny pipelines and discriminator under ``root``: built unless every part is there."""
    from hadis_worker import tiny_models

    paths = model_paths(root.resolve())
    if all(p.exists() for p in paths.values()):
        say(f"tiny pipelines and discriminator: {root} (built by an earlier run)")
        return paths
    say(f"building tiny random-weight pipelines and discriminator in {root}")
    built = tiny_models.build_all(root)
    if built != paths:
        raise RuntimeError(f"hadis_worker.tiny_models wrote {built}, expected {paths}")
    return paths


def write_prompts(path: Path) -> Path:
    path.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    return path


def write_reference(folder: Path) -> Path:
    """Seeded noise images (the same on every run, so cached reference statistics stay valid)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(REFERENCE_IMAGES):
        pixels = rng.integers(0, 256, (REFERENCE_PX, REFERENCE_PX, 3), dtype=np.uint8)
        path = folder / f"{i:03d}.png"
        if not path.is_file():
            Image.fromarray(pixels).save(path)
    return folder


def prepare(ns: argparse.Namespace) -> argparse.Namespace:
    """``ns`` (resolved options with --tiny) with the tiny variants, discriminator, prompts and reference."""
    m = build_models(ns.out_dir / TINY_MODELS)
    return argparse.Namespace(
        **{
            **vars(ns),
            "variant": [(LIGHT, str(m["sd"])), (HEAVY, str(m["sdxl"]))],
            "unet": [(HEAVY, str(m["unet_checkpoint"]))],
            "discriminator": [m["clip"], m["head"]],
            "prompts": write_prompts(ns.out_dir / "prompts.txt"),
            "reference_images": write_reference(ns.out_dir / "reference"),
        }
    )
