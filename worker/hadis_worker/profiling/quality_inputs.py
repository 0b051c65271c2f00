"""The quality sweep's inputs: the prompts, their router scores and the reference statistics."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hadis.errors import UserError
from hadis.profiling.fid import FeatureStats, FidError, feature_stats, load_stats, save_stats
from hadis_worker.profiling.errors import QualityError
from hadis_worker.profiling.image_cache import digest
from hadis_worker.profiling.progress import say
from hadis_worker.profiling.score_cache import cached_features

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def read_prompts(path: Path) -> list[str]:
    try:
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise QualityError(f"--prompts {path}: {e.strerror}") from None
    if not prompts:
        raise QualityError(f"--prompts {path}: no prompts")
    return prompts


def read_router_scores(path: Path, prompts: list[str]) -> np.ndarray:
    """Scores by prompt text from a CSV with columns ``prompt`` and ``router_score``."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise QualityError(f"--router-scores {path}: {e.strerror}") from None
    if not rows or not {"prompt", "router_score"} <= set(rows[0]):
        raise QualityError(f"--router-scores {path}: expected columns prompt,router_score")
    try:
        by_prompt = {r["prompt"].strip(): float(r["router_score"]) for r in rows}
    except ValueError as e:
        raise QualityError(f"--router-scores {path}: {e}") from None
    missing = [p for p in prompts if p not in by_prompt]
    if missing:
        raise QualityError(
            f"--router-scores {path}: no score for {len(missing)} prompt(s), e.g. {missing[0]!r}"
        )
    return np.array([by_prompt[p] for p in prompts], dtype=np.float64)


def router_scores(args: argparse.Namespace, prompts: list[str]) -> np.ndarray:
    """--router-scores; else the gateway's router in a subprocess (cached); else word counts."""
    if args.router_scores is not None:
        return read_router_scores(args.router_scores, prompts)
    cached = args.cache / f"router-scores-{digest(prompts)}.csv"
    if not cached.is_file():
        say("no --router-scores: scoring the prompts with python -m hadis_gateway.score_prompts")
        src = args.cache / "prompts.txt"
        src.write_text("\n".join(prompts) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "hadis_gateway.score_prompts", str(src), str(cached)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            say(
                f"WARNING: the gateway's router cannot run here ({tail}); routing by word count, its stand-in"
            )
            return np.array([float(len(p.split())) for p in prompts], dtype=np.float64)
    return read_router_scores(cached, prompts)


def reference(args: argparse.Namespace, extractor: Any) -> FeatureStats:
    """--reference-stats, or the statistics of --reference-images' features (saved in the cache)."""
    if args.reference_stats is not None:
        try:
            return load_stats(args.reference_stats)
        except UserError as e:
            raise QualityError(f"--reference-stats: {e}") from None
    folder: Path = args.reference_images
    images = (
        sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    )
    if not images:
        raise QualityError(f"--reference-images {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    key = digest([extractor.name, *[(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in images]])
    path = args.cache / f"reference-{extractor.name}-{key}.npz"
    if path.is_file():
        return load_stats(path)
    try:
        stats = feature_stats(
            cached_features(args.cache / f"reference-features-{key}.npz", images, extractor, "reference")
        )
    except FidError as e:
        raise QualityError(f"--reference-images {folder}: {e}") from None
    save_stats(stats, path)
    say(f"reference statistics of {len(images)} images -> {path} (reusable with --reference-stats)")
    return stats
