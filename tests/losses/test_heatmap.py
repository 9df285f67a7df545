"""GaussianHeatmapCE against an explicit per-cell loop."""
from __future__ import annotations

import math

import pytest
import torch

from shared.losses._checks import LossInputError
from shared.losses.heatmap import GaussianHeatmapCE


def test_heatmap_ce_matches_explicit_loop():
    torch.manual_seed(0)
    b, k, h, w, sigma = 2, 3, 5, 6, 0.8
    prob = torch.softmax(torch.randn(b, k, h * w), -1).view(b, k, h, w).double()
    uv = torch.rand(b, k, 2).double()
    weight = torch.tensor([1.0, 0.0]).double()
    got = GaussianHeatmapCE(sigma)(prob, uv)
    got_w = GaussianHeatmapCE(sigma)(prob, uv, weight)
    per_sample = []
    for i in range(b):
        total = 0.0
        for j in range(k):
            cu, cv = uv[i, j, 0].item() * w, uv[i, j, 1].item() * h
            g = [[math.exp(-((x + 0.5 - cu) ** 2 + (y + 0.5 - cv) ** 2) / (2 * sigma ** 2)) for x in range(w)] for y in range(h)]
            z = sum(map(sum, g))
            total += -sum(g[y][x] / z * math.log(prob[i, j, y, x].item()) for y in range(h) for x in range(w))
        per_sample.append(total / k)
    assert abs(got.item() - sum(per_sample) / b) < 1e-9
    assert abs(got_w.item() - per_sample[0]) < 1e-9
    # minimised by the target itself (Gibbs), so the loss is a proper scoring of the heatmap
    loss = GaussianHeatmapCE(sigma)
    target = loss.targets(uv, h, w)
    assert loss(target, uv) <= loss(prob, uv)
    with pytest.raises(LossInputError):
        loss(prob, uv[:, :2])
