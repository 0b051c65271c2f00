"""QuantileThreshold: fractions θ and τ become score thresholds that track a drifting live distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hadis_gateway.router import QuantileThreshold


def test_edges_and_validation() -> None:
    t = QuantileThreshold(np.arange(100.0), window=10)
    assert t.threshold(0.0, upper=True) == math.inf  # θ=0: nothing is hard
    assert t.threshold(1.0, upper=True) == -math.inf  # θ=1: everything is hard
    assert t.threshold(0.0, upper=False) == -math.inf  # τ=0: nothing escalates
    assert t.threshold(1.0, upper=False) == math.inf
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError):
            t.threshold(bad, upper=True)
    with pytest.raises(ValueError):
        QuantileThreshold([math.nan], window=10)
    with pytest.raises(ValueError):
        QuantileThreshold([1.0], window=0)


def test_reference_then_blend_then_window() -> None:
    t = QuantileThreshold(np.linspace(0.0, 1.0, 1001), window=4)
    assert t.threshold(0.3, upper=True) == pytest.approx(0.7)
    assert t.threshold(0.3, upper=False) == pytest.approx(0.3)
    t.observe(10.0)
    t.observe(math.inf)  # ignored
    assert t.live_count == 1
    assert t.quantile(0.5) == pytest.approx(0.75 * 0.5 + 0.25 * 10.0)
    for s in (10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0):  # window full: only the last 4 count
        t.observe(s)
    assert t.live_count == 4
    assert t.quantile(0.0) == 20.0


def test_reference_fractions_are_exact() -> None:
    ref = np.random.default_rng(1).normal(size=5000)
    t = QuantileThreshold(ref, window=100)
    for f in (0.1, 0.25, 0.5, 0.9):
        assert np.mean(ref >= t.threshold(f, upper=True)) == pytest.approx(f, abs=1e-3)
        assert np.mean(ref < t.threshold(f, upper=False)) == pytest.approx(f, abs=1e-3)


def test_observed_fractions_track_theta_and_tau_under_drift() -> None:
    rng = np.random.default_rng(7)
    n, window, theta, tau = 12_000, 500, 0.3, 0.2
    router = QuantileThreshold(rng.normal(size=5000), window)  # reference router scores ~ N(0, 1)
    disc = QuantileThreshold(rng.beta(5, 2, size=5000), window)  # reference p_real
    drift = np.linspace(0.0, 1.5, n)  # prompts get harder, images get worse
    scores = rng.normal(size=n) + drift
    p_real = np.clip(rng.beta(5, 2, size=n) - 0.3 * drift / 1.5, 0.0, 1.0)
    hard = np.empty(n, dtype=bool)
    escalate = np.empty(n, dtype=bool)
    for i in range(n):
        hard[i] = scores[i] >= router.threshold(theta, upper=True)
        escalate[i] = p_real[i] < disc.threshold(tau, upper=False)
        router.observe(scores[i])
        disc.observe(p_real[i])
    after = slice(window, n)  # once the window is full
    assert np.mean(hard[after]) == pytest.approx(theta, abs=0.02)
    assert np.mean(escalate[after]) == pytest.approx(tau, abs=0.02)
    for chunk in np.array_split(np.arange(window, n), 5):  # and at every stage of the drift
        assert np.mean(hard[chunk]) == pytest.approx(theta, abs=0.05)
        assert np.mean(escalate[chunk]) == pytest.approx(tau, abs=0.05)
    # the reference thresholds alone would have drifted far off
    static_hard = np.mean(scores[-2000:] >= np.quantile(router._reference, 1 - theta))
    assert static_hard > theta + 0.2


def test_sorted_quantile_matches_numpy() -> None:
    from hadis_gateway.router.calibration import _sorted_quantile

    a = np.sort(np.random.default_rng(3).normal(size=37))
    for q in (0.0, 0.1, 0.33, 0.5, 0.99, 1.0):
        assert _sorted_quantile(a, q) == pytest.approx(float(np.quantile(a, q)), abs=1e-12)
    assert _sorted_quantile([4.0], 0.7) == 4.0
