"""The learned router's ridge head (hadis_worker.training.router.fit_ridge): numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from hadis_worker.training.router import RidgeHead, fit_ridge, light_target


def test_ridge_recovers_a_planted_linear_map_and_picks_a_small_penalty() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 10))
    w = rng.normal(size=10)
    y = x @ w + 3.0 + rng.normal(scale=0.01, size=300)
    head = fit_ridge(x, y, alphas=(0.001, 1000.0))
    assert head.alpha == 0.001
    assert np.allclose(head.weights, w, atol=0.01) and head.bias == pytest.approx(3.0, abs=0.01)
    assert np.array_equal(head.router_score(x), -head.predict(x))
    again = RidgeHead.from_dict(head.to_dict())
    assert np.array_equal(again.predict(x), head.predict(x))


def test_ridge_picks_a_large_penalty_for_pure_noise() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 50))
    y = rng.normal(size=60)
    assert fit_ridge(x, y, alphas=(0.001, 1000.0)).alpha == 1000.0


def test_light_target_is_log_mean_p_real() -> None:
    t = light_target(np.array([[0.1, 0.3], [0.0, 0.0]]))
    assert t == pytest.approx([np.log(0.2 + 1e-6), np.log(1e-6)])


def test_ridge_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        fit_ridge(np.zeros((1, 3)), np.zeros(1))
    with pytest.raises(ValueError):
        fit_ridge(np.zeros((4, 3)), np.zeros(4), alphas=(0.0,))
