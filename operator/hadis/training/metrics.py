"""AUROC (with ties) and k-fold cross-validation splits, in numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def average_ranks(x: npt.ArrayLike) -> FloatArray:
    """1-based ranks of ``x``; tied values share the mean of their ranks."""
    a = np.asarray(x, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of the last element of each group of equal values
    mean_rank = ends - (counts - 1) / 2.0
    return np.asarray(mean_rank[inverse], dtype=np.float64)


def auroc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = positive).

    The Mann-Whitney statistic: the probability that a random positive scores above a random
    negative, a tie counting one half. NaN when either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"auroc: {s.size} scores but {y.size} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("auroc: non-finite score")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[IntArray, IntArray]]:
    """``k`` (train, test) index pairs over ``range(n)``: shuffled once, test folds disjoint,
    covering every index, sizes differing by at most one."""
    if k < 2:
        raise ValueError(f"k-fold: k must be >= 2, got {k}")
    if n < k:
        raise ValueError(f"k-fold: {n} items cannot make {k} folds")
    order = np.random.default_rng(seed).permutation(n).astype(np.int64)
    folds = np.array_split(order, k)
    out = []
    for i, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        out.append((np.sort(train), np.sort(test)))
    return out
