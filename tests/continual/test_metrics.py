"""Stream metrics against explicit loops."""
from __future__ import annotations

import numpy as np
import pytest

from apps.continual.evaluate import cluster_accuracy, knn_error, task_accuracies


def _purity_loop(assign, labels):
    total = 0
    for c in set(assign.tolist()):
        counts = {}
        for a, l in zip(assign, labels):
            if a == c:
                counts[l] = counts.get(l, 0) + 1
        total += max(counts.values())
    return total / len(labels)


def _knn_loop(train_x, train_y, test_x, test_y, k):
    wrong = 0
    for x, y in zip(test_x, test_y):
        d = [float(np.sum((x - t) ** 2)) for t in train_x]
        nearest = sorted(range(len(d)), key=lambda i: d[i])[:k]
        votes = {}
        for i in nearest:
            votes[int(train_y[i])] = votes.get(int(train_y[i]), 0) + 1
        best = max(votes.values())
        predicted = min(label for label, v in votes.items() if v == best)
        wrong += predicted != y
    return wrong / len(test_y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_accuracy_is_official_purity(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 200)
    assign = np.where(rng.random(200) < 0.6, labels * 2 % 7, rng.integers(0, 7, 200))
    assert cluster_accuracy(assign, labels) == pytest.approx(_purity_loop(assign, labels))
    # the official formula on the confusion matrix (rows: labels, columns: components)
    confusion = np.zeros((5, 7))
    np.add.at(confusion, (labels, assign), 1)
    assert cluster_accuracy(assign, labels) == pytest.approx(confusion.max(axis=0).sum() / confusion.sum())


def test_task_accuracies_restrict_the_global_mapping():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assign = np.array([5, 5, 5, 6, 6, 6, 7, 7])  # 5->0, 6->2 (2 of 3), 7->3
    acc = task_accuracies(assign, labels, [[0, 1], [2, 3]])
    assert acc == [pytest.approx(0.5), pytest.approx(1.0)]


@pytest.mark.parametrize("k", [1, 5, 10])
def test_knn_error_matches_loop(k):
    rng = np.random.default_rng(k)
    train_x, test_x = rng.normal(size=(60, 3)), rng.normal(size=(25, 3))
    train_y, test_y = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    assert knn_error(train_x, train_y, test_x, test_y, k) == pytest.approx(_knn_loop(train_x, train_y, test_x, test_y, k))
