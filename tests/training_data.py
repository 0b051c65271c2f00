"""Small synthetic router-training inputs in the artifact's CSV formats (prompt_features.csv,
discriminator_scores.csv), shared by the router training tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hadis.training.data import FEATURES

EASY = [
    "a red apple",
    "a small dog",
    "a green leaf",
    "a blue car",
    "a white cup",
    "a brown horse",
    "a yellow bus",
]
EASY += ["a black cat", "an orange fish", "a gray stone"]
HARD = [
    "the abstract concept of justice dissolving into bureaucratic melancholy",
    "an allegory of forgotten memories negotiating with the philosophy of time",
    "the ineffable paradox of freedom interpreted through existential ambiguity",
    "a metaphor for democracy reconsidering its ideological contradictions",
    "the inexpressible nostalgia of hypothetical futures and theoretical regret",
    "a surreal critique of capitalism, irony and the sublime uncertainty of meaning",
    "the epistemology of doubt rendered as conceptual tension and moral hesitation",
    "an interpretation of consciousness as a negotiation between theory and belief",
    "the dialectic of hope and despair within an imaginary political philosophy",
    "the notion of infinity debating the abstraction of its own definition",
]


def write_inputs(
    root: Path, easy: list[str], hard: list[str], seed: int = 0, images: int = 2
) -> tuple[Path, Path]:
    """CSV files for the prompts: hard prompts have many objects and attributes (features) and a
    low p_real on the light model ``light``; a second variant ``other`` has random scores."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    features, scores = root / "prompt_features.csv", root / "discriminator_scores.csv"
    prompts = [(p, False) for p in easy] + [(p, True) for p in hard]
    with features.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", *FEATURES])
        for text, is_hard in prompts:
            row = dict.fromkeys(FEATURES, 0)
            row["prompt_length"] = len(text.split())
            row["num_objects"] = int(rng.integers(3, 6)) if is_hard else int(rng.integers(0, 3))
            row["attribute_density"] = int(rng.integers(0, 4))
            row["spatial_relations"] = int(rng.integers(0, 2))
            w.writerow([text, *(row[k] for k in FEATURES)])
    with scores.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt_index", "variant", "image", "p_real"])
        for i, (_, is_hard) in enumerate(prompts):
            for image in range(images):
                light = rng.uniform(0.0001, 0.01) if is_hard else rng.uniform(0.1, 0.6)
                w.writerow([i, "light", image, f"{light:.6g}"])
                w.writerow([i, "other", image, f"{rng.uniform(0, 1):.6g}"])
    return features, scores
