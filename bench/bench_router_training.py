"""Benchmark: which router best predicts the light model's escalations? (prints a table; not a test)

On the HADIS artifact's 5,000 prompts (../shared/data/hadis-l40s): for each light model
(sdxl-lightning, the paper's lightest, and sd35-large-turbo) and τ ∈ {0.1, 0.2, 0.3}, the
5-fold cross-validated AUROC of each router's score for "the light output would be escalated"
(the prompt's mean p_real over its 4 images is among the lowest τ share). Every fitted router is
trained on four folds and scored on the fifth (z-normalisation statistics from the training folds);
mean ± std over the folds.

Rows:

* paper weights — variants.json's router (no fitting);
* random search, AUROC — the paper's 400-draw search with the objective the data allows
  (training-fold AUROC at the same τ; the paper's mix-FID objective needs image features);
* random search, kept-escalation — the same search minimising escalations among the prompts
  kept on the light model at θ = 0.3;
* ridge on the 8 features — a linear fit of log mean p_real on the same features;
* MiniLM + ridge — the learned router (all-MiniLM-L6-v2 embeddings, ridge head predicting
  log mean p_real; ``hadis_worker.training.router``);
* another image's p_real — not a router (it needs an image): the p_real of one of the prompt's
  4 images as the score for labels from the other 3: how much of the label is the prompt rather
  than the seed (not a bound: its labels come from 3 images, the routers' from 4).

Needs ../shared/data (or $HADIS_SHARED_DATA) and the training extra. Embedding the 5,000 prompts
dominates: ~5 min on 2 busy CPU cores (run with nice), the folds ~5 min more.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hadis.training.data import FEATURES, read_light_scores, read_prompt_features
from hadis.training.metrics import FloatArray, IntArray, auroc, kfold_indices
from hadis.training.search import (
    Standardizer,
    auroc_objective,
    escalation_labels,
    kept_escalation_objective,
    random_search,
    router_scores,
)
from hadis_worker.training.router import SentenceEncoder, fit_ridge, light_target

SHARED = Path(os.environ.get("HADIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ARTIFACT = SHARED / "hadis-l40s"
LIGHTS = ("sdxl-lightning", "sd35-large-turbo")
TAUS = (0.1, 0.2, 0.3)
THETA = 0.3
FOLDS = 5
SEED = 0

#: fit(train indices, τ) -> score(test indices); higher = harder
Router = Callable[[IntArray, float], Callable[[IntArray], FloatArray]]


def cv_auroc(
    router: Router, labels: dict[float, np.ndarray], folds: list[tuple[IntArray, IntArray]]
) -> dict[float, list[float]]:
    out: dict[float, list[float]] = {}
    for tau, y in labels.items():
        out[tau] = [auroc(router(train, tau)(test), y[test]) for train, test in folds]
    return out


def compare(
    x: FloatArray, emb: FloatArray, p: FloatArray, paper_w: FloatArray, folds: list[tuple[IntArray, IntArray]]
) -> list[tuple[str, dict[float, list[float]]]]:
    """The table's rows for one light model (p: its p_real, prompts × images)."""
    labels = {tau: escalation_labels(p, tau) for tau in TAUS}
    y = light_target(p)

    def paper(train: IntArray, tau: float) -> Callable[[IntArray], FloatArray]:
        std = Standardizer.fit(x[train])
        return lambda test: router_scores(x[test], paper_w, std)

    def search_auroc(train: IntArray, tau: float) -> Callable[[IntArray], FloatArray]:
        r = random_search(x[train], auroc_objective(labels[tau][train]), seed=SEED)
        return lambda test: router_scores(x[test], r.weights, r.standardizer)

    def search_kept(train: IntArray, tau: float) -> Callable[[IntArray], FloatArray]:
        r = random_search(x[train], kept_escalation_objective(p[train], tau, THETA), seed=SEED)
        return lambda test: router_scores(x[test], r.weights, r.standardizer)

    def ridge_features(train: IntArray, tau: float) -> Callable[[IntArray], FloatArray]:
        std = Standardizer.fit(x[train])
        head = fit_ridge(std.transform(x[train]), y[train])
        return lambda test: head.router_score(std.transform(x[test]))

    def minilm(train: IntArray, tau: float) -> Callable[[IntArray], FloatArray]:
        head = fit_ridge(emb[train], y[train])
        return lambda test: head.router_score(emb[test])

    rows: list[tuple[str, dict[float, list[float]]]] = [
        ("paper weights (variants.json)", cv_auroc(paper, labels, folds)),
        ("random search, AUROC at τ", cv_auroc(search_auroc, labels, folds)),
        (f"random search, kept-escalation θ={THETA}", cv_auroc(search_kept, labels, folds)),
        ("ridge on the 8 features", cv_auroc(ridge_features, labels, folds)),
        ("MiniLM-L6 + ridge (learned)", cv_auroc(minilm, labels, folds)),
    ]
    ceiling = {}
    for tau in TAUS:
        # image 0's p_real (negated: low p_real = escalated) for labels from images 1-3
        rest = escalation_labels(p[:, 1:], tau)
        ceiling[tau] = [auroc(-p[held, 0], rest[held]) for _, held in folds]
    rows.append(("[not a router] another image's p_real", ceiling))
    return rows


def main() -> int:
    if not (ARTIFACT / "variants.json").is_file():
        print(f"skipped: {ARTIFACT} not found", file=sys.stderr)
        return 0
    meta = json.loads((ARTIFACT / "variants.json").read_text())
    if list(meta["router"]["features"]) != list(FEATURES):
        raise SystemExit("variants.json router features are not in the expected order")
    paper_w = np.asarray(meta["router"]["weights"], dtype=np.float64)
    data = read_prompt_features(ARTIFACT / "prompt_features.csv")
    x, n = data.values, len(data.prompts)
    folds = kfold_indices(n, FOLDS, seed=SEED)

    t0 = time.perf_counter()
    encoder = SentenceEncoder()
    emb = encoder.embed(data.prompts, batch=128)
    print(f"MiniLM embeddings of {n} prompts: {time.perf_counter() - t0:.1f} s ({emb.shape[1]}-d)")

    print(f"\n{FOLDS}-fold cross-validated AUROC (mean ± std over folds) of the router score for")
    print("'the light output would be escalated' (prompt's mean p_real among the lowest τ share)\n")
    for light in LIGHTS:
        t0 = time.perf_counter()
        p = read_light_scores(ARTIFACT / "discriminator_scores.csv", light, n)
        rows = compare(x, emb, p, paper_w, folds)
        print(f"light = {light}  ({p.shape[1]} images per prompt; {time.perf_counter() - t0:.1f} s)")
        head = f"{'router':<42}" + "".join(f"{'τ = ' + str(t):>16}" for t in TAUS)
        print(head)
        print("-" * len(head))
        for name, res in rows:
            cells = "".join(f"{np.mean(res[t]):>10.3f} ± {np.std(res[t]):.3f}" for t in TAUS)
            print(f"{name:<42}{cells}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
