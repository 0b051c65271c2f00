"""The HADIS paper's router training: random search over the 8 feature weights.

The router scores a prompt by ``Σ_i w_i · (f_i − μ_i) / σ_i`` (μ, σ: mean and population std of
each feature over the training prompts, as the gateway's router does; a feature with σ = 0
contributes 0). The paper draws 400 weight vectors, each weight U[0, 1] rounded to 2 decimals, and
keeps the one whose routed mix has the lowest FID at a router split θ.

The objective is a callable ``router scores → loss`` (lower is better), so the search does not
care what it measures:

* :func:`mix_fid_objective` — the paper's: the FID of the mix in which the θ highest-scoring
  prompts take the heavy model's images and the rest the light model's (needs image features of
  both models and an FID function);
* :func:`auroc_objective` — what per-prompt discriminator scores alone allow (the paper's public
  data has no image features): 1 − AUROC of the router score for "the light output would be
  escalated" (its p_real among the lowest τ share);
* :func:`kept_escalation_objective` — the expected escalation rate among the prompts the router
  keeps on the light model at split θ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hadis.training.metrics import FloatArray, auroc

Objective = Callable[[FloatArray], float]

DRAWS = 400
DECIMALS = 2


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and population standard deviation (ddof = 0)."""

    mean: FloatArray
    std: FloatArray

    @classmethod
    def fit(cls, x: npt.ArrayLike) -> Standardizer:
        a = np.asarray(x, dtype=np.float64)
        return cls(mean=a.mean(axis=0), std=a.std(axis=0))

    def transform(self, x: npt.ArrayLike) -> FloatArray:
        a = np.asarray(x, dtype=np.float64)
        safe = np.where(self.std > 0, self.std, 1.0)
        z = (a - self.mean) / safe
        return np.where(self.std > 0, z, 0.0)


def router_scores(x: npt.ArrayLike, weights: npt.ArrayLike, standardizer: Standardizer) -> FloatArray:
    """Router score of each row of ``x`` (prompts × features): higher = harder."""
    return standardizer.transform(x) @ np.asarray(weights, dtype=np.float64)


def lowest_share(values: npt.ArrayLike, share: float) -> npt.NDArray[np.bool_]:
    """True for the ``round(share · n)`` smallest values (stable order on ties): the gateway's
    "lowest-p_real share τ is escalated"."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    out = np.zeros(v.size, dtype=bool)
    out[np.argsort(v, kind="stable")[: round(share * v.size)]] = True
    return out


def escalation_labels(p_real: npt.ArrayLike, tau: float) -> npt.NDArray[np.bool_]:
    """Per prompt: would its light output be escalated at τ? ``p_real`` is prompts × images (or a
    vector); a prompt's p_real is the mean over its images, and the lowest τ share is escalated."""
    p = np.asarray(p_real, dtype=np.float64)
    mean = p.mean(axis=1) if p.ndim == 2 else p
    return lowest_share(mean, tau)


def auroc_objective(labels: npt.ArrayLike) -> Objective:
    """Loss = 1 − AUROC of the router score for ``labels`` (True = escalated)."""
    y = np.asarray(labels, dtype=bool)
    return lambda scores: 1.0 - auroc(scores, y)


def kept_on_light(scores: npt.ArrayLike, theta: float) -> npt.NDArray[np.bool_]:
    """The prompts the router keeps on the light model at split θ (all but the θ highest scores)."""
    s = np.asarray(scores, dtype=np.float64)
    return ~lowest_share(-s, theta)


def kept_escalation_objective(p_real: npt.ArrayLike, tau: float, theta: float) -> Objective:
    """Loss = the share of light images escalated at τ (image-level lowest τ share of p_real) among
    the prompts kept on the light model at split θ."""
    p = np.asarray(p_real, dtype=np.float64)
    p = p if p.ndim == 2 else p[:, None]
    escalated = lowest_share(p.ravel(), tau).reshape(p.shape).mean(axis=1)

    def loss(scores: FloatArray) -> float:
        kept = kept_on_light(scores, theta)
        return float(escalated[kept].mean()) if kept.any() else 0.0

    return loss


def mix_fid_objective(
    light_features: npt.ArrayLike,
    heavy_features: npt.ArrayLike,
    theta: float,
    fid: Callable[[FloatArray], float],
) -> Objective:
    """Loss = ``fid(mix)``: image features (prompts × images × dim, or prompts × dim) of the heavy
    model for the θ highest-scoring prompts and of the light model for the rest; ``fid`` compares a
    feature matrix (rows = images) with the reference statistics."""
    light = np.asarray(light_features, dtype=np.float64)
    heavy = np.asarray(heavy_features, dtype=np.float64)
    if light.shape != heavy.shape:
        raise ValueError(f"light features {light.shape} and heavy features {heavy.shape} differ")

    def loss(scores: FloatArray) -> float:
        to_heavy = ~kept_on_light(scores, theta)
        mix = np.where(to_heavy.reshape((-1,) + (1,) * (light.ndim - 1)), heavy, light)
        return float(fid(mix.reshape(-1, mix.shape[-1])))

    return loss


def draw_weights(n_features: int, draws: int = DRAWS, seed: int = 0) -> FloatArray:
    """``draws`` weight vectors, each weight U[0, 1] rounded to 2 decimals (the paper's search)."""
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(0.0, 1.0, size=(draws, n_features)), DECIMALS)


@dataclass(frozen=True)
class SearchResult:
    weights: FloatArray
    loss: float
    standardizer: Standardizer
    losses: FloatArray  # the loss of every draw, in draw order


def random_search(
    x: npt.ArrayLike, objective: Objective, *, draws: int = DRAWS, seed: int = 0
) -> SearchResult:
    """The draw with the lowest loss (the first one on ties); ``x`` is prompts × features."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(
            f"random search: features must be a non-empty prompts × features matrix, got {a.shape}"
        )
    if draws < 1:
        raise ValueError("random search: draws must be >= 1")
    std = Standardizer.fit(a)
    z = std.transform(a)
    candidates = draw_weights(a.shape[1], draws, seed)
    losses = np.array([objective(z @ w) for w in candidates], dtype=np.float64)
    best = int(np.nanargmin(losses))
    return SearchResult(weights=candidates[best], loss=float(losses[best]), standardizer=std, losses=losses)
