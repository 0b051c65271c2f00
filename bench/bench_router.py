"""Benchmark of the gateway's prompt router (prints figures; not a test).

* Load time of :class:`PromptRouter` (spaCy pipeline + wordfreq + norms).
* Per-prompt latency of ``features(prompt)`` on uncached prompts, p50 / p99 (target p50 ≤ 2 ms),
  and of the batched path (``features_many``, what the gateway runs under load), with NER gated
  on proper nouns (the default), on every prompt, and without NER; and a cache hit.
* Agreement with the HADIS artifact (for each of the three) on its 5,000 prompts
  (``prompts_imagenet1k_5k.txt`` vs ``prompt_features.csv``, same order): per feature the
  exact-match fraction and Pearson correlation, and the Spearman rank correlation of the
  resulting router scores.

Needs ../shared/data (or $HADIS_SHARED_DATA) for the prompts; skips cleanly without it.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hadis_gateway.router import FEATURES, PromptRouter

SHARED = Path(os.environ.get("HADIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ARTIFACT = SHARED / "hadis-l40s"


def load_artifact(root: Path = ARTIFACT) -> tuple[list[str], npt.NDArray[np.float64]]:
    """The 5,000 prompts and the artifact's (5000, 8) feature matrix, columns in FEATURES order."""
    prompts = (root / "prompts_imagenet1k_5k.txt").read_text(encoding="utf-8").splitlines()
    with (root / "prompt_features.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(rows)} feature rows")
    return prompts, np.array([[float(r[n]) for n in FEATURES] for r in rows], dtype=np.float64)


def rank(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks with ties averaged (for Spearman's ρ)."""
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a), dtype=np.float64)
    r[order] = np.arange(len(a), dtype=np.float64)
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r)
    return (sums / counts)[inv]


def spearman(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


@dataclass(frozen=True)
class Agreement:
    exact: dict[str, float]
    pearson: dict[str, float]
    score_spearman: float
    score_pearson: float


def agreement(router: PromptRouter, prompts: list[str], ref: npt.NDArray[np.float64]) -> Agreement:
    """Our features of ``prompts`` vs the artifact's ``ref``; scores use the packaged weights and stats."""
    mine = router.features_many(prompts)
    x = np.array([[f.get(n, np.nan) for n in FEATURES] for f in mine], dtype=np.float64)
    exact, pearson = {}, {}
    for j, name in enumerate(FEATURES):
        if np.isnan(x[:, j]).all():
            continue
        exact[name] = float(np.mean(x[:, j] == ref[:, j]))
        pearson[name] = float(np.corrcoef(x[:, j], ref[:, j])[0, 1])
    ours = np.array([router.score_features(f) for f in mine])
    theirs = np.array([router.score_features(dict(zip(FEATURES, row, strict=True))) for row in ref])
    return Agreement(exact, pearson, spearman(ours, theirs), float(np.corrcoef(ours, theirs)[0, 1]))


def latencies_ms(router: PromptRouter, prompts: list[str]) -> list[float]:
    out = []
    for p in prompts:
        t = time.perf_counter()
        router.features(p)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def main() -> int:
    if not (ARTIFACT / "prompt_features.csv").exists():
        print(f"skip: HADIS artifact data not found at {ARTIFACT}")
        return 0
    prompts, ref = load_artifact()

    t = time.perf_counter()
    router = PromptRouter(cache_size=0)
    load_s = time.perf_counter() - t
    print(f"load: {load_s:.2f} s (spaCy pipeline {router.loaded_model}, pipes {router._nlp.pipe_names})")

    warm, sample = prompts[:50], prompts[1000:2000]
    variants = {
        "NER on prompts with a proper noun (default)": router,
        "NER on every prompt (gate_entities=False)": PromptRouter(cache_size=0, gate_entities=False),
        "no NER (entities=False)": PromptRouter(cache_size=0, entities=False),
    }
    print(f"per-prompt latency on {len(sample)} uncached prompts (target: p50 ≤ 2 ms):")
    p50: dict[str, tuple[float, float]] = {}
    for name, r in variants.items():
        for p in warm:
            r.features(p)
        lat = latencies_ms(r, sample)
        t = time.perf_counter()
        r.features_many(sample)
        batched = (time.perf_counter() - t) * 1e3 / len(sample)
        p50[name] = (pct(lat, 50), batched)
        print(f"  {name:<45} features(prompt) p50 {pct(lat, 50):5.2f} ms, p99 {pct(lat, 99):6.2f} ms;")
        print(f"  {'':<45} features_many (batched, as the gateway under load) {batched:5.2f} ms/prompt")
    single, batched = p50["NER on prompts with a proper noun (default)"]
    met = {True: "MET", False: "NOT MET"}
    print(f"  target p50 ≤ 2 ms, default router: one at a time {single:.2f} ms ({met[single <= 2]}), "
          f"batched {batched:.2f} ms per prompt ({met[batched <= 2]})")  # fmt: skip

    cached = PromptRouter(cache_size=4096)
    cached.features(sample[0])
    hits = []
    for _ in range(1000):
        t = time.perf_counter()
        cached.score(sample[0])
        hits.append((time.perf_counter() - t) * 1e6)
    print(f"  cache hit, score(prompt): p50 {statistics.median(hits):.1f} µs")

    for name, r in variants.items():
        t = time.perf_counter()
        agr = agreement(r, prompts, ref)
        elapsed = time.perf_counter() - t
        print(f"\nagreement with the HADIS artifact on {len(prompts)} prompts, {name} ({elapsed:.1f} s):")
        print(f"  {'feature':<20} {'exact':>7} {'pearson':>8}")
        for feature in FEATURES:
            if feature in agr.exact:
                print(f"  {feature:<20} {agr.exact[feature]:>7.4f} {agr.pearson[feature]:>8.4f}")
        print(f"  router score: spearman {agr.score_spearman:.4f}, pearson {agr.score_pearson:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
