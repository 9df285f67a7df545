"""Inference keeps the input order for clouds larger than N (chunks + nearest-neighbour propagation)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from apps.points.data import LoadedCloud
from apps.points.infer import chunk_indices, propagate, segment


class SignOfX(nn.Module):
    """Stub segmenter: chair part 12 where x > 0, part 13 where x < 0 (other parts -inf)."""

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        logits = torch.full((x.shape[0], 50, x.shape[2]), float("-inf"))
        logits[:, 12] = 10 * x[:, 0]
        logits[:, 13] = -10 * x[:, 0]
        return logits


def _two_blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.normal(scale=0.2, size=(n, 3)).astype(np.float32)
    pts[: n // 2, 0] += 2.0
    pts[n // 2:, 0] -= 2.0
    return pts[rng.permutation(n)]


def test_labels_follow_input_order_for_large_clouds():
    pts = _two_blobs(5000, 0)
    cloud = LoadedCloud(pts, np.tile([0, 1, 0], (len(pts), 1)).astype(np.float32), False)
    expected = np.where(pts[:, 0] - pts[:, 0].mean() > 0, 12, 13)
    result = segment(SignOfX(), cloud, [4], n_points=256, max_chunks=3)  # 768 run, 4232 propagated
    labels, category = result.labels, result.category
    assert category == 4 and labels.shape == (5000,) and result.probability == 1.0
    assert np.array_equal(labels, expected)


def test_chunks_are_disjoint_and_propagation_copies_covered_values():
    chunks = chunk_indices(1000, 300, max_chunks=10, seed=0)
    assert [len(c) for c in chunks] == [300] * 4
    assert len(np.unique(np.concatenate(chunks[:3]))) == 900 and set(np.concatenate(chunks)) == set(range(1000))
    assert len(chunk_indices(1000, 300, max_chunks=2)) == 2
    pts = np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32)
    covered = np.zeros(200, bool)
    covered[::3] = True
    values = np.arange(200)
    out = propagate(pts, covered, values)
    assert np.array_equal(out[covered], values[covered])
    src = np.flatnonzero(covered)
    for i in np.flatnonzero(~covered)[:20]:
        assert out[i] == src[np.argmin(((pts[src] - pts[i]) ** 2).sum(1))]
