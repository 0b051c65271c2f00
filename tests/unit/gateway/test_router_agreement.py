"""The router's features and scores against the HADIS artifact's (needs ../shared/data; skips without it).

Floors are a little below what bench/bench_router.py measures on all 5,000 prompts with spaCy 3.8 +
en_core_web_sm 3.8.0 (the parser/tagger features differ on ~5% of prompts from the artifact's,
which ran another pipeline version; the lexical features match exactly).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hadis_gateway.router import FEATURES, PromptRouter, ReferenceStats, RouterModelError

N = 1500  # prompts checked (the bench runs all 5,000)

EXACT_FLOOR = {
    "prompt_length": 0.998,
    "token_rarity": 0.998,
    "num_objects": 0.93,
    "abstractness": 0.998,
    "attribute_density": 0.92,
    "spatial_relations": 0.998,
    "action_verbs": 0.94,
    "named_entities": 0.96,
}
SPEARMAN_FLOOR = 0.98


def _artifact(shared_data):  # type: ignore[no-untyped-def]
    root = shared_data / "hadis-l40s"
    prompts = (root / "prompts_imagenet1k_5k.txt").read_text(encoding="utf-8").splitlines()
    with (root / "prompt_features.csv").open(newline="", encoding="utf-8") as f:
        ref = np.array([[float(r[n]) for n in FEATURES] for r in csv.DictReader(f)])
    return prompts, ref


def _ranks(a: np.ndarray) -> np.ndarray:
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (starts + (counts - 1) / 2)[inv]


def test_reference_stats_reproduce_the_profile_scores(shared_data) -> None:  # type: ignore[no-untyped-def]
    from hadis.profiles import load_prompt_scores

    _, ref = _artifact(shared_data)
    stats = ReferenceStats.packaged()
    ours = np.array([stats.score(dict(zip(FEATURES, row, strict=True))) for row in ref])
    np.testing.assert_allclose(ours, load_prompt_scores().router, atol=1e-4)


def test_features_agree_with_artifact(shared_data) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("spacy")
    prompts, ref = _artifact(shared_data)
    try:
        router = PromptRouter(cache_size=0)
    except RouterModelError as e:
        pytest.skip(str(e))
    feats = router.features_many(prompts[:N])
    x = np.array([[f[n] for n in FEATURES] for f in feats])
    exact = {n: float(np.mean(x[:, j] == ref[:N, j])) for j, n in enumerate(FEATURES)}
    assert all(exact[n] >= EXACT_FLOOR[n] for n in FEATURES), exact
    ours = np.array([router.score_features(f) for f in feats])
    theirs = np.array([router.score_features(dict(zip(FEATURES, r, strict=True))) for r in ref[:N]])
    rho = float(np.corrcoef(_ranks(ours), _ranks(theirs))[0, 1])
    assert rho >= SPEARMAN_FLOOR, rho
