"""Fréchet distance between two sets of image features (FID when the features are Inception's).

FID = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½), with μ the feature mean and Σ the (unbiased) feature
covariance of each set. The matrix square root is taken without scipy: Σ₁ Σ₂ is similar to the
symmetric positive semi-definite S = Σ₁^½ Σ₂ Σ₁^½, so tr((Σ₁ Σ₂)^½) = Σ √λᵢ(S), and both square
roots come from ``numpy.linalg.eigh`` (tiny negative eigenvalues from rounding are clipped to 0).
Sets with fewer samples than feature dimensions give singular covariances; the formula still holds
(the estimate is just noisy), so they are accepted; a set needs at least two samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hadis.errors import InputFileError, UserError

FloatArray = npt.NDArray[np.float64]

#: Fewest samples a covariance can be estimated from.
MIN_SAMPLES = 2


class FidError(UserError):
    """Features that give no Fréchet distance (too few samples, mismatched dimensions, NaN)."""


@dataclass(frozen=True)
class FeatureStats:
    """Mean (d,) and covariance (d, d) of a feature set, and how many samples they came from."""

    mu: FloatArray
    sigma: FloatArray
    n: int = 0

    def __post_init__(self) -> None:
        d = self.mu.shape[0] if self.mu.ndim == 1 else -1
        if d < 1 or self.sigma.shape != (d, d):
            raise FidError(f"feature statistics: mu {self.mu.shape} and sigma {self.sigma.shape} differ")
        if not (np.isfinite(self.mu).all() and np.isfinite(self.sigma).all()):
            raise FidError("feature statistics: mu or sigma is not finite")

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])


def as_samples(features: npt.ArrayLike) -> FloatArray:
    """``features`` as an (n, d) float64 array, checked: 2-d, at least two samples, finite."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise FidError(f"features: expected a 2-d array (samples × dimensions), got shape {x.shape}")
    n = x.shape[0]
    if n < MIN_SAMPLES:
        raise FidError(
            f"features: {n} sample(s); a Fréchet distance needs at least {MIN_SAMPLES} "
            "(more prompts or more images per prompt)"
        )
    if not np.isfinite(x).all():
        raise FidError("features: NaN or infinite values")
    return x


def feature_stats(features: npt.ArrayLike) -> FeatureStats:
    """Mean and unbiased covariance of ``features`` (n samples × d dimensions)."""
    x = as_samples(features)
    return FeatureStats(mu=x.mean(axis=0), sigma=np.atleast_2d(np.cov(x, rowvar=False)), n=x.shape[0])


def _sqrt_psd(a: FloatArray) -> FloatArray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues below 0 clipped)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return np.asarray((v * np.sqrt(np.clip(w, 0.0, None))) @ v.T, dtype=np.float64)


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½); ≥ 0 (clipped at 0 against rounding)."""
    return FidAgainst(a)(b)


class FidAgainst:
    """Fréchet distance of many feature sets to one reference (its covariance root computed once)."""

    def __init__(self, reference: FeatureStats) -> None:
        self.reference = reference
        self._root = _sqrt_psd(reference.sigma)
        self._trace = float(np.trace(reference.sigma))

    @property
    def root(self) -> FloatArray:
        """Σ_ref^½ (symmetric)."""
        return self._root

    def check_dim(self, dim: int) -> None:
        if dim != self.reference.dim:
            raise FidError(
                f"feature dimensions differ: reference {self.reference.dim} vs {dim} (same extractor?)"
            )

    def distance(self, mu: FloatArray, trace_sigma: float, inner: FloatArray) -> float:
        """The distance from a set's mean, tr Σ and a matrix with the eigenvalues of Σ_ref^½ Σ Σ_ref^½.

        ``inner`` may be that d × d matrix itself or, for n < d samples, the n × n Gram matrix of
        the centred, projected samples (x − μ) Σ_ref^½ / √(n − 1), which has the same nonzero
        eigenvalues at a fraction of the cost.
        """
        self.check_dim(mu.shape[0])
        eig = np.linalg.eigvalsh((inner + inner.T) / 2)
        tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
        diff = self.reference.mu - mu
        return max(float(diff @ diff) + self._trace + trace_sigma - 2.0 * tr_covmean, 0.0)

    def __call__(self, other: FeatureStats) -> float:
        self.check_dim(other.dim)
        return self.distance(other.mu, float(np.trace(other.sigma)), self._root @ other.sigma @ self._root)

    def of_features(self, features: npt.ArrayLike) -> float:
        """The distance of a raw feature set (n × d); uses the n × n route when n < d."""
        x = as_samples(features)
        n = x.shape[0]
        self.check_dim(x.shape[1])
        mu = x.mean(axis=0)
        xc = x - mu
        trace_sigma = float((xc * xc).sum()) / (n - 1)
        yc = (xc @ self._root) / np.sqrt(n - 1)
        inner = yc @ yc.T if n < x.shape[1] else yc.T @ yc
        return self.distance(mu, trace_sigma, inner)


def fid_of_features(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Fréchet distance between two raw feature sets."""
    return frechet_distance(feature_stats(x), feature_stats(y))


def save_stats(stats: FeatureStats, path: Path) -> None:
    """Write ``mu`` and ``sigma`` (and ``n``) to an ``.npz`` file (clean-fid's and pytorch-fid's keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, mu=stats.mu, sigma=stats.sigma, n=np.array(stats.n))


def load_stats(path: Path) -> FeatureStats:
    """Read reference statistics from an ``.npz`` with arrays ``mu`` (d,) and ``sigma`` (d, d)."""
    try:
        with np.load(path) as data:
            missing = [k for k in ("mu", "sigma") if k not in data]
            if missing:
                raise InputFileError(f"{path}: lacks array(s) {missing} (has {sorted(data.files)})")
            mu = np.asarray(data["mu"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
            n = int(data["n"]) if "n" in data else 0
    except OSError as e:
        raise InputFileError(f"{path}: cannot read reference statistics: {e}") from None
    except ValueError as e:
        raise InputFileError(f"{path}: not an .npz file of reference statistics: {e}") from None
    try:
        return FeatureStats(mu=mu, sigma=np.atleast_2d(sigma), n=n)
    except FidError as e:
        raise InputFileError(f"{path}: {e}") from None
