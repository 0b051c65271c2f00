"""The paper's router random search (hadis.training.search): draws, determinism, planted weights."""

from __future__ import annotations

import numpy as np
import pytest

from hadis.training.metrics import auroc
from hadis.training.search import (
    Standardizer,
    auroc_objective,
    draw_weights,
    escalation_labels,
    kept_escalation_objective,
    kept_on_light,
    lowest_share,
    mix_fid_objective,
    random_search,
    router_scores,
)

#: one of the search's own 400 draws (seed 0), so a noise-free objective has exactly one optimum
PLANTED = draw_weights(8, 400, seed=0)[123]


def _planted(n: int = 1500, seed: int = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Features and per-prompt p_real: prompts scoring high under PLANTED have low p_real."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)) * rng.uniform(0.5, 3.0, 8) + rng.uniform(0, 10, 8)
    hard = router_scores(x, PLANTED, Standardizer.fit(x))
    p_real = 1.0 / (1.0 + np.exp(2.0 * hard + rng.normal(scale=noise, size=n)))
    return x, p_real


def test_draws_are_uniform_two_decimal_and_seeded() -> None:
    w = draw_weights(8, 400, seed=5)
    assert w.shape == (400, 8)
    assert w.min() >= 0.0 and w.max() <= 1.0
    assert np.allclose(w * 100, np.round(w * 100))
    assert np.array_equal(w, draw_weights(8, 400, seed=5))
    assert not np.array_equal(w, draw_weights(8, 400, seed=6))


def test_standardizer_population_std_and_constant_feature() -> None:
    x = np.array([[1.0, 3.0], [3.0, 3.0]])
    s = Standardizer.fit(x)
    assert s.std.tolist() == [1.0, 0.0]
    assert s.transform(x).tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def test_lowest_share_and_labels() -> None:
    assert lowest_share([0.3, 0.1, 0.2, 0.4], 0.5).tolist() == [False, True, True, False]
    p = np.array([[0.1, 0.3], [0.9, 0.9], [0.0, 0.1], [0.5, 0.6]])  # means 0.2, 0.9, 0.05, 0.55
    assert escalation_labels(p, 0.25).tolist() == [False, False, True, False]
    assert kept_on_light([5.0, 1.0, 3.0, 2.0], 0.25).tolist() == [False, True, True, True]


def test_random_search_is_deterministic_and_finds_planted_weights() -> None:
    x, p_real = _planted()
    labels = escalation_labels(p_real, 0.2)
    objective = auroc_objective(labels)
    a = random_search(x, objective, draws=400, seed=0)
    b = random_search(x, objective, draws=400, seed=0)
    assert np.array_equal(a.weights, b.weights) and a.loss == b.loss
    assert a.losses.shape == (400,) and a.loss == a.losses.min()
    assert np.array_equal(a.weights, PLANTED), a.weights
    assert a.loss == pytest.approx(0.0)
    # another seed draws other weights: it cannot find the planted ones, but its best beats its median
    c = random_search(x, objective, draws=400, seed=1)
    assert not np.array_equal(c.weights, PLANTED)
    assert c.loss < np.median(c.losses) - 0.05


def test_random_search_on_noisy_data_recovers_the_direction() -> None:
    x, p_real = _planted(noise=1.0)
    labels = escalation_labels(p_real, 0.2)
    result = random_search(x, auroc_objective(labels), draws=400, seed=0)
    planted_auc = auroc(router_scores(x, PLANTED, result.standardizer), labels)
    assert 1.0 - result.loss >= planted_auc - 0.01
    cosine = result.weights @ PLANTED / (np.linalg.norm(result.weights) * np.linalg.norm(PLANTED))
    assert cosine > 0.95, (result.weights, cosine)


def test_kept_escalation_objective_prefers_the_planted_router() -> None:
    x, p_real = _planted(seed=1)
    loss = kept_escalation_objective(p_real, tau=0.2, theta=0.3)
    std = Standardizer.fit(x)
    planted = loss(router_scores(x, PLANTED, std))
    inverse = loss(-router_scores(x, PLANTED, std))
    assert planted < 0.05 < 0.2 < inverse
    result = random_search(x, loss, draws=100, seed=0)
    assert result.loss <= planted + 0.05


def test_mix_fid_objective_uses_heavy_features_for_the_top_theta() -> None:
    light = np.zeros((4, 2, 3))
    heavy = np.ones((4, 2, 3))
    seen: list[np.ndarray] = []

    def fid(features: np.ndarray) -> float:
        seen.append(features)
        return float(features.sum())

    loss = mix_fid_objective(light, heavy, theta=0.5, fid=fid)
    assert loss(np.array([0.0, 9.0, 1.0, 8.0])) == pytest.approx(2 * 2 * 3)
    mix = seen[0].reshape(4, 2, 3)
    assert mix[1].min() == 1.0 and mix[3].min() == 1.0 and mix[0].max() == 0.0
    with pytest.raises(ValueError):
        mix_fid_objective(light, heavy[:2], 0.5, fid)


def test_random_search_rejects_empty_input() -> None:
    with pytest.raises(ValueError):
        random_search(np.zeros((0, 8)), lambda s: 0.0)
