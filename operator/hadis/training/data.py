"""Reading the router's training data: the artifact's ``prompt_features.csv`` and
``discriminator_scores.csv`` formats (see ../shared/data/hadis-l40s)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hadis.errors import InputFileError
from hadis.training.metrics import FloatArray

#: The router's features, in the gateway's (and the artifact's) order.
FEATURES: tuple[str, ...] = (
    "prompt_length",
    "token_rarity",
    "num_objects",
    "abstractness",
    "attribute_density",
    "spatial_relations",
    "action_verbs",
    "named_entities",
)


@dataclass(frozen=True)
class PromptFeatures:
    prompts: list[str]
    values: FloatArray  # prompts × FEATURES


def read_prompt_features(path: Path) -> PromptFeatures:
    """``prompt,<the 8 features>``: one row per prompt, in prompt_index order."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("prompt", *FEATURES) if c not in (reader.fieldnames or [])]
            if missing:
                raise InputFileError(f"{path}: missing columns {missing}")
            prompts, rows = [], []
            for i, row in enumerate(reader, start=2):
                try:
                    rows.append([float(row[c]) for c in FEATURES])
                except (TypeError, ValueError):
                    raise InputFileError(f"{path}:{i}: a feature is not a number") from None
                prompts.append(row["prompt"])
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e.strerror or e}") from None
    if not rows:
        raise InputFileError(f"{path}: no prompts")
    return PromptFeatures(prompts, np.array(rows, dtype=np.float64))


def read_light_scores(path: Path, variant: str, n_prompts: int) -> FloatArray:
    """p_real of ``variant``'s images from ``prompt_index,variant,image,p_real``: prompts × images
    (every prompt must have the same number of images)."""
    per_prompt: dict[int, dict[int, float]] = {}
    variants: set[str] = set()
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [
                c
                for c in ("prompt_index", "variant", "image", "p_real")
                if c not in (reader.fieldnames or [])
            ]
            if missing:
                raise InputFileError(f"{path}: missing columns {missing}")
            for i, row in enumerate(reader, start=2):
                variants.add(row["variant"])
                if row["variant"] != variant:
                    continue
                try:
                    per_prompt.setdefault(int(row["prompt_index"]), {})[int(row["image"])] = float(
                        row["p_real"]
                    )
                except (TypeError, ValueError):
                    raise InputFileError(f"{path}:{i}: prompt_index/image/p_real is not a number") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e.strerror or e}") from None
    if not per_prompt:
        raise InputFileError(f"{path}: no scores for variant {variant!r} (has {sorted(variants)})")
    lacking = [i for i in range(n_prompts) if i not in per_prompt]
    if lacking:
        raise InputFileError(f"{path}: variant {variant!r} has no scores for prompt_index {lacking[:5]}")
    counts = {len(per_prompt[i]) for i in range(n_prompts)}
    if len(counts) != 1:
        raise InputFileError(
            f"{path}: variant {variant!r}: prompts have different image counts {sorted(counts)}"
        )
    return np.array(
        [[v for _, v in sorted(per_prompt[i].items())] for i in range(n_prompts)], dtype=np.float64
    )
