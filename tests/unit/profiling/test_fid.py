"""Fréchet distance between feature sets (numpy only): known values, edge cases, statistics files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hadis.errors import InputFileError
from hadis.profiling.fid import (
    FeatureStats,
    FidAgainst,
    FidError,
    feature_stats,
    fid_of_features,
    frechet_distance,
    load_stats,
    save_stats,
)


def test_identical_sets_have_distance_zero() -> None:
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert fid_of_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_shifted_mean_gives_the_squared_shift() -> None:
    x = np.random.default_rng(1).normal(size=(300, 8))
    shift = np.arange(8, dtype=np.float64) / 4
    # same covariance, so only ‖Δμ‖² remains
    assert fid_of_features(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9, abs=1e-9)


def test_gaussians_with_diagonal_covariances_match_the_closed_form() -> None:
    # FID of N(μ1, diag(a)) and N(μ2, diag(b)) = ‖μ1 − μ2‖² + Σ (√a − √b)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    s1 = FeatureStats(mu=np.zeros(3), sigma=np.diag(a))
    s2 = FeatureStats(mu=np.array([1.0, 0.0, 2.0]), sigma=np.diag(b))
    expected = 1.0 + 4.0 + float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(s1, s2) == pytest.approx(expected)
    assert frechet_distance(s2, s1) == pytest.approx(expected)


def test_full_covariances_match_the_eigen_definition() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 5)), rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5))
    sx, sy = feature_stats(x), feature_stats(y)
    # tr((Σx Σy)^½) = Σ √λ of Σx Σy (real, non-negative eigenvalues)
    lam = np.linalg.eigvals(sx.sigma @ sy.sigma).real
    traces = np.trace(sx.sigma) + np.trace(sy.sigma)
    expected = float(((sx.mu - sy.mu) ** 2).sum() + traces - 2 * np.sqrt(lam.clip(0)).sum())
    assert frechet_distance(sx, sy) == pytest.approx(expected, rel=1e-8)
    assert FidAgainst(sx)(sy) == pytest.approx(expected, rel=1e-8)


def test_fewer_samples_than_dimensions_is_allowed_and_finite() -> None:
    rng = np.random.default_rng(3)
    d = fid_of_features(rng.normal(size=(5, 32)), rng.normal(size=(6, 32)))
    assert np.isfinite(d) and d > 0


def test_too_few_samples_is_a_clear_error() -> None:
    with pytest.raises(FidError, match="at least 2"):
        feature_stats(np.ones((1, 4)))
    with pytest.raises(FidError, match="2-d array"):
        feature_stats(np.ones(4))


def test_mismatched_dimensions_and_nan_are_errors() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(FidError, match="dimensions differ"):
        fid_of_features(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))
    bad = rng.normal(size=(10, 3))
    bad[2, 1] = np.nan
    with pytest.raises(FidError, match="NaN"):
        feature_stats(bad)


def test_stats_round_trip_and_bad_files(tmp_path: Path) -> None:
    stats = feature_stats(np.random.default_rng(5).normal(size=(20, 4)))
    save_stats(stats, tmp_path / "ref.npz")
    back = load_stats(tmp_path / "ref.npz")
    np.testing.assert_array_equal(back.mu, stats.mu)
    np.testing.assert_array_equal(back.sigma, stats.sigma)
    assert back.n == 20
    np.savez(tmp_path / "other.npz", mean=stats.mu)
    with pytest.raises(InputFileError, match="lacks array"):
        load_stats(tmp_path / "other.npz")
    np.savez(tmp_path / "shape.npz", mu=stats.mu, sigma=np.eye(3))
    with pytest.raises(InputFileError, match=r"shape\.npz"):
        load_stats(tmp_path / "shape.npz")
    with pytest.raises(InputFileError, match="cannot read"):
        load_stats(tmp_path / "missing.npz")
