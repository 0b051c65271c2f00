"""AUROC (known values, ties) and k-fold splits of hadis.training.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hadis.training.metrics import auroc, average_ranks, kfold_indices


def test_auroc_perfect_inverse_and_known_value() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 1 + 2 of 4
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auroc_ties_count_one_half() -> None:
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.5)
    # one positive tied with one of two negatives and above the other: (0.5 + 1) / 2
    assert auroc([0.3, 0.5, 0.5], [0, 0, 1]) == pytest.approx(0.75)


def test_auroc_matches_pairwise_count_on_random_ties() -> None:
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 200).astype(float)  # many ties
    y = rng.random(200) < 0.3
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size
    )
    assert auroc(s, y) == pytest.approx(brute)


def test_auroc_one_class_is_nan_and_bad_input_raises() -> None:
    assert math.isnan(auroc([1.0, 2.0], [1, 1]))
    with pytest.raises(ValueError):
        auroc([1.0, 2.0], [1])
    with pytest.raises(ValueError):
        auroc([float("nan"), 1.0], [0, 1])


def test_average_ranks() -> None:
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_kfold_disjoint_covering_balanced_and_seeded() -> None:
    folds = kfold_indices(23, 5, seed=1)
    assert len(folds) == 5
    tests = [t for _, t in folds]
    assert sorted(np.concatenate(tests).tolist()) == list(range(23))
    assert {t.size for t in tests} <= {4, 5}
    for train, test in folds:
        assert not set(train.tolist()) & set(test.tolist())
        assert train.size + test.size == 23
    again = kfold_indices(23, 5, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    other = kfold_indices(23, 5, seed=2)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_kfold_rejects_bad_k() -> None:
    with pytest.raises(ValueError):
        kfold_indices(10, 1)
    with pytest.raises(ValueError):
        kfold_indices(3, 5)
