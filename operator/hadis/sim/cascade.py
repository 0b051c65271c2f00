"""Per-request cascade decisions: the router (θ), the discriminator (τ) and the variant split.

θ and τ are fractions (the table's unit). They become score thresholds through quantiles of a
reference distribution, as the gateway does:

* router: a prompt is *hard* iff its router score ≥ the (1−θ) quantile of the reference router
  scores (θ = 0: none, θ = 1: all);
* discriminator: a light image is *escalated* iff its p_real < the τ quantile of the light
  variant's p_real distribution over the reference prompts the router leaves to the light variant
  at this θ (τ = 0: none, τ = 1: all). The gateway's live window holds exactly those scores, and
  the table's cost p = θ + (1−θ)τ assumes τ of the light-routed images escalate; thresholding
  against all prompts instead would escalate fewer than τ whenever the router takes the hard
  prompts (whose light images score low) away.

With per-prompt scores (e.g. the packaged profile's), a request's router score is its prompt's
(``prompt_id mod size``) and its p_real is that of one of the prompt's images, picked by the
seeded generator. Without scores both are uniform draws, so hard share = θ and escalation share
= τ in law. Every draw is made once per request up front, so results do not depend on the order
in which the simulator processes things.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hadis.api.allocation import Allocation
from hadis.api.profile import Profile
from hadis.api.scores import PromptScores

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class CascadeDraws:
    """The router scores, image picks and split draws of every request of a trace."""

    def __init__(self, prompt_id: IntArray, scores: PromptScores | None, rng: np.random.Generator) -> None:
        n = prompt_id.size
        self._scores = scores
        self._hard_thr: dict[float, float] = {}
        self._esc_thr: dict[tuple[str, float, float], float] = {}
        if scores is not None:
            self._row = (prompt_id % scores.size).astype(np.int64)
            images = min(a.shape[1] for a in scores.p_real.values()) if scores.p_real else 1
            self._image = rng.integers(0, images, size=n, dtype=np.int64)
            self.router: FloatArray = scores.router[self._row]
            self._ref_router = scores.router
            self._u_disc: FloatArray = np.empty(0)
        else:
            self._row = np.empty(0, dtype=np.int64)
            self._image = np.empty(0, dtype=np.int64)
            self.router = rng.random(n)
            self._ref_router = np.empty(0)
            self._u_disc = rng.random(n)
        self.u_split: FloatArray = rng.random(n)

    def hard(self, ids: IntArray, theta: float) -> BoolArray:
        """Which of the requests the router sends straight to the heavy variant."""
        if theta <= 0:
            return np.zeros(ids.size, dtype=np.bool_)
        if theta >= 1:
            return np.ones(ids.size, dtype=np.bool_)
        if self._scores is None:
            return self.router[ids] >= 1.0 - theta
        return self.router[ids] >= self._hard_threshold(theta)

    def _hard_threshold(self, theta: float) -> float:
        thr = self._hard_thr.get(theta)
        if thr is None:
            thr = self._hard_thr[theta] = float(np.quantile(self._ref_router, 1.0 - theta))
        return thr

    def escalate(self, ids: IntArray, light: str, tau: float, theta: float = 0.0) -> BoolArray:
        """Which light images the discriminator rejects (their prompts are regenerated on heavy).

        ``theta`` is the router ratio the requests were routed with: the threshold is the τ
        quantile of the light variant's p_real over the reference prompts not hard at ``theta``.
        """
        if tau <= 0:
            return np.zeros(ids.size, dtype=np.bool_)
        if tau >= 1:
            return np.ones(ids.size, dtype=np.bool_)
        if self._scores is None:
            return self._u_disc[ids] < tau
        ref = self._scores.p_real[light]
        key = (light, tau, theta)
        thr = self._esc_thr.get(key)
        if thr is None:
            routed = ref
            if 0 < theta < 1:
                easy = self._ref_router < self._hard_threshold(theta)
                if easy.any():
                    routed = ref[easy]
            thr = self._esc_thr[key] = float(np.quantile(routed, tau))
        return ref[self._row[ids], self._image[ids]] < thr

    def split(self, ids: IntArray, weights: dict[str, float]) -> dict[str, IntArray]:
        """Send each request to one variant with probability ∝ ``weights`` (all weights > 0)."""
        names = list(weights)
        w = np.array([weights[v] for v in names])
        cum = np.cumsum(w) / w.sum()
        which = np.minimum(np.searchsorted(cum, self.u_split[ids], side="right"), len(names) - 1)
        return {v: ids[which == i] for i, v in enumerate(names)}


def split_weights(alloc: Allocation, replicas: dict[str, int]) -> dict[str, float]:
    """Routing weights of a non-cascade allocation over the variants that have workers.

    The allocation's ``split`` renormalised to variants with replicas; when none of those has
    workers, every variant with workers in proportion to its replicas (so nothing is stranded).
    Empty when the allocation has no workers at all.
    """
    w = {v: s for v, s in alloc.split.items() if s > 0 and replicas.get(v, 0) > 0}
    if w:
        return w
    return {v: float(r) for v, r in replicas.items() if r > 0}


def final_target(alloc: Allocation, replicas: dict[str, int], profile: Profile) -> str | None:
    """Where a rejected light image is regenerated.

    The row's heavy variant, else the best-FID variant with workers (None when none has workers).
    """
    if alloc.row is not None and replicas.get(alloc.row.heavy, 0) > 0:
        return alloc.row.heavy
    live = [v for v, r in replicas.items() if r > 0]
    if not live:
        return None
    return min(live, key=lambda v: (profile.variant(v).fid, v))


def escalation_target(
    alloc: Allocation, replicas: dict[str, int], profile: Profile, light: str
) -> str | None:
    """The variant to regenerate on, or None to keep the light image (no better variant has workers)."""
    target = final_target(alloc, replicas, profile)
    if target is None or target == light or profile.variant(target).fid >= profile.variant(light).fid:
        return None
    return target
