"""Fractions → score thresholds: quantiles of a reference distribution kept current by live scores.

θ (router) and τ (discriminator) are *fractions*. The gateway turns them into score thresholds
with the quantiles of the scores it sees: seeded from the profile's reference distribution, then
from a sliding window of the last ``window`` live scores, so the observed fractions keep tracking
θ and τ when the prompt mix drifts. Until the window is full, the two are blended in quantile space
with weight ``len(live) / window`` on the live quantile.

Usage (one instance per score stream):

* router: ``hard = score >= t.threshold(theta, upper=True)``  (θ=0 → nothing, θ=1 → everything);
* discriminator: ``escalate = p_real < t.threshold(tau, upper=False)``  (τ=0 → none, τ=1 → all).

Pure and single-threaded (the gateway's event loop owns it); no I/O. ``observe`` is O(window)
(a memmove in a sorted list), ``threshold`` O(1).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def _sorted_quantile(a: Sequence[float] | npt.NDArray[np.float64], q: float) -> float:
    """q-quantile of non-empty sorted ``a``, linear interpolation (numpy's default method)."""
    pos = q * (len(a) - 1)
    lo = int(pos)
    if lo >= len(a) - 1:
        return float(a[-1])
    frac = pos - lo
    return float(a[lo]) + frac * (float(a[lo + 1]) - float(a[lo]))


class QuantileThreshold:
    """Score thresholds for fractions, from a reference distribution and a window of live scores."""

    def __init__(self, reference: npt.ArrayLike, window: int) -> None:
        ref = np.asarray(reference, dtype=np.float64).ravel()
        ref = ref[np.isfinite(ref)]
        if ref.size == 0:
            raise ValueError("QuantileThreshold: the reference distribution has no finite score")
        if window < 1:
            raise ValueError("QuantileThreshold: window must be >= 1")
        self._reference = np.sort(ref)
        self._window = window
        self._live: deque[float] = deque()  # the window in arrival order
        self._sorted: list[float] = []  # the same scores, sorted

    @property
    def window(self) -> int:
        return self._window

    @property
    def live_count(self) -> int:
        """Live scores currently in the window."""
        return len(self._live)

    def observe(self, score: float) -> None:
        """Add a live score (non-finite scores are ignored); the oldest leaves a full window."""
        if not math.isfinite(score):
            return
        score = float(score)
        if len(self._live) == self._window:
            old = self._live.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._live.append(score)
        bisect.insort(self._sorted, score)

    def quantile(self, q: float) -> float:
        """The q-quantile of the current distribution (reference blended with the live window)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q} not in [0, 1]")
        ref_q = _sorted_quantile(self._reference, q)
        n = len(self._live)
        if n == 0:
            return ref_q
        live_q = _sorted_quantile(self._sorted, q)
        a = n / self._window
        return live_q if a >= 1.0 else (1.0 - a) * ref_q + a * live_q

    def threshold(self, fraction: float, upper: bool) -> float:
        """Score threshold selecting ``fraction`` of the scores.

        ``upper=True``: the top fraction, selected by ``score >= threshold`` (+inf for 0, −inf for
        1). ``upper=False``: the bottom fraction, selected by ``score < threshold`` (−inf for 0,
        +inf for 1).
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction {fraction} not in [0, 1]")
        if upper:
            if fraction <= 0.0:
                return math.inf
            if fraction >= 1.0:
                return -math.inf
            return self.quantile(1.0 - fraction)
        if fraction <= 0.0:
            return -math.inf
        if fraction >= 1.0:
            return math.inf
        return self.quantile(fraction)
