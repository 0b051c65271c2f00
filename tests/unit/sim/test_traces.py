"""Trace generators: target rates, the paper's shape method, burstiness, compression, validation."""

from __future__ import annotations

import numpy as np
import pytest

from hadis.sim.traces import (
    Trace,
    compress_to_qps,
    gamma_trace,
    minmax_scale,
    mmpp_trace,
    paper_rates,
    paper_trace,
    poisson_trace,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_poisson_hits_its_rate() -> None:
    t = poisson_trace(20.0, 2000.0, rng())
    assert t.mean_qps == pytest.approx(20.0, rel=0.03)
    assert np.all(np.diff(t.arrival_s) >= 0) and t.arrival_s[-1] < 2000.0
    gaps = np.diff(t.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential gaps


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_has_its_rate_and_cv(cv: float) -> None:
    t = gamma_trace(10.0, cv, 20000.0, rng(1))
    gaps = np.diff(t.arrival_s)
    assert t.mean_qps == pytest.approx(10.0, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.1)


def test_mmpp_alternates_between_two_rates() -> None:
    t = mmpp_trace((5.0, 50.0), (100.0, 100.0), 20000.0, rng(2))
    assert t.mean_qps == pytest.approx(27.5, rel=0.1)  # sojourn-weighted mean
    per_10s = t.rate_per_second(10.0)
    low, high = np.percentile(per_10s, [10, 90])
    assert low == pytest.approx(5.0, abs=2.0)
    assert high == pytest.approx(50.0, abs=5.0)


def test_paper_trace_follows_the_minmax_scaled_shape() -> None:
    shape = np.array([100.0, 300.0, 200.0, 500.0] * 200)  # 800 points → 800 s
    t = paper_trace(shape, 10.0, 64.0, rng(3))
    expected = minmax_scale(shape, 10.0, 64.0)
    assert expected.min() == 10.0 and expected.max() == 64.0
    assert t.duration_s == 800.0
    got = t.rate_per_second()
    assert got.shape == expected.shape
    # per-second counts are Poisson around the scaled shape: check each shape level on average
    for level in np.unique(expected):
        assert got[expected == level].mean() == pytest.approx(level, rel=0.08)
    assert np.corrcoef(got, expected)[0, 1] > 0.9
    assert t.prompt_id.min() >= 0 and t.prompt_id.max() < 5000


def test_paper_trace_stretches_points_over_longer_periods() -> None:
    shape = np.array([0.0, 1.0, 0.5])
    step = paper_rates(shape, 40.0, 410.0, seconds_per_point=100.0)
    assert step.size == 300 and step[0] == 40.0 and step[150] == 410.0 and step[250] == 225.0
    smooth = paper_rates(shape, 40.0, 410.0, seconds_per_point=100.0, interpolate=True)
    # points sit at the centres of their periods (50 s, 150 s, 250 s); linear in between
    assert (
        smooth[0] == 40.0
        and smooth[100] == pytest.approx(225.0, abs=2)
        and smooth[150] == pytest.approx(410, abs=2)
    )
    t = paper_trace(shape, 40.0, 410.0, rng(4), seconds_per_point=100.0)
    assert t.duration_s == 300.0 and t.mean_qps == pytest.approx(step.mean(), rel=0.03)


def test_generators_are_deterministic_per_seed() -> None:
    a, b, c = (poisson_trace(5.0, 100.0, rng(s)) for s in (7, 7, 8))
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_id, b.prompt_id)
    assert not np.array_equal(a.arrival_s, c.arrival_s)


def test_compression_to_a_target_rate_keeps_the_shape() -> None:
    t = paper_trace(np.arange(100.0), 1.0, 20.0, rng(5))
    c = compress_to_qps(t, 100.0)
    assert c.mean_qps == pytest.approx(100.0)
    assert len(c) == len(t) and np.array_equal(c.prompt_id, t.prompt_id)
    factor = t.mean_qps / 100.0
    assert np.allclose(c.arrival_s, t.arrival_s * factor)


def test_rate_per_second_and_head() -> None:
    t = Trace(np.array([0.1, 0.2, 1.5, 3.9]), np.array([1, 2, 3, 4]), "x")
    assert t.duration_s == 4.0 and t.mean_qps == 1.0
    assert t.rate_per_second().tolist() == [2.0, 1.0, 0.0, 1.0]
    assert len(t.head(1.0)) == 2 and t.head(1.0).duration_s == 1.0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: poisson_trace(-1.0, 10.0, rng()), "qps"),
        (lambda: poisson_trace(1.0, 0.0, rng()), "duration_s"),
        (lambda: gamma_trace(1.0, 0.0, 10.0, rng()), "cv"),
        (lambda: mmpp_trace((1.0, -2.0), (1.0, 1.0), 10.0, rng()), "rates[1]"),
        (lambda: paper_trace([1.0, 2.0], 5.0, 1.0, rng()), "qps_max"),
        (lambda: paper_trace([1.0, 2.0], -1.0, 1.0, rng()), "qps_min"),
        (lambda: compress_to_qps(poisson_trace(1.0, 10.0, rng()), 0.0), "target_qps"),
    ],
)
def test_bad_parameters_name_the_field(make, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        make()


def test_trace_rejects_unsorted_or_negative_arrivals() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Trace(np.array([2.0, 1.0]), np.array([0, 0]))
    with pytest.raises(ValueError, match="≥ 0"):
        Trace(np.array([-1.0]), np.array([0]))
