"""LimbHeatmapCE against an explicit per-cell loop (point-to-segment distances in plain Python)."""
from __future__ import annotations

import math

import pytest
import torch

from shared.losses import LimbHeatmapCE
from shared.losses._checks import LossInputError


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Distance of (px, py) to the segment a-b, by minimising over a fine parameter grid and the ends
    (independent of the closed form used by the loss)."""
    best = min(math.hypot(px - ax, py - ay), math.hypot(px - bx, py - by))
    for i in range(2001):
        t = i / 2000
        best = min(best, math.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay))))
    return best


def _loop_targets(uv, limbs, h, w, sigma):
    maps = []
    for a, b in limbs:
        ax, ay = uv[a][0] * w, uv[a][1] * h
        bx, by = uv[b][0] * w, uv[b][1] * h
        g = [[math.exp(-_segment_distance(x + 0.5, y + 0.5, ax, ay, bx, by) ** 2 / (2 * sigma ** 2))
              for x in range(w)] for y in range(h)]
        z = sum(map(sum, g))
        maps.append([[v / z for v in row] for row in g])
    return maps


def test_limb_targets_and_loss_match_explicit_loop():
    torch.manual_seed(0)
    bsz, k, h, w, sigma = 2, 4, 5, 7, 0.9
    limbs = [(0, 1), (1, 2), (0, 3), (2, 2)]          # the last one has zero length: a Gaussian at its point
    uv = torch.rand(bsz, k, 2).double()
    logits = torch.randn(bsz, len(limbs), h, w).double()
    loss = LimbHeatmapCE(limbs, sigma)
    got_targets = loss.targets(uv, h, w)
    per_sample = []
    for i in range(bsz):
        maps = _loop_targets(uv[i].tolist(), limbs, h, w, sigma)
        total = 0.0
        for j, target in enumerate(maps):
            row = logits[i, j].flatten().tolist()
            lse = math.log(sum(math.exp(v) for v in row))
            for y in range(h):
                for x in range(w):
                    assert abs(got_targets[i, j, y, x].item() - target[y][x]) < 1e-5
                    total += -target[y][x] * (logits[i, j, y, x].item() - lse)
        per_sample.append(total / len(limbs))
    assert abs(loss(logits, uv).item() - sum(per_sample) / bsz) < 1e-5
    weight = torch.tensor([0.0, 1.0]).double()
    assert abs(loss(logits, uv, weight).item() - per_sample[1]) < 1e-5


def test_limb_targets_lie_on_the_segment():
    """A horizontal limb across a 16 x 16 grid: its target mass sits in the rows around the segment and
    spreads evenly along it; a zero-length limb equals GaussianHeatmapCE's target at that point."""
    from shared.losses.heatmap import GaussianHeatmapCE

    uv = torch.tensor([[[4 / 16, 8 / 16], [12 / 16, 8 / 16], [0.3, 0.6]]])
    t = LimbHeatmapCE([(0, 1), (2, 2)], sigma=1.0).targets(uv, 16, 16)[0]
    rows = t[0].sum(1)
    assert rows[7] == pytest.approx(rows[8]) and rows[7] + rows[8] > 0.65 and rows[6:10].sum() > 0.95
    cols = t[0].sum(0)
    assert torch.allclose(cols[5:11], cols[5:11].mean().expand(6), rtol=1e-4)   # flat along the segment
    assert cols[0] < 0.01 * cols[8] and cols[15] < 0.01 * cols[8]               # nothing beyond its ends
    point = GaussianHeatmapCE(1.0).targets(uv[:, 2:3], 16, 16)[0, 0]
    assert torch.allclose(t[1], point, atol=1e-6)


def test_limb_loss_is_minimised_by_its_target_and_checks_inputs():
    torch.manual_seed(1)
    uv = torch.rand(3, 5, 2)
    loss = LimbHeatmapCE([(0, 1), (1, 4)])
    target = loss.targets(uv, 8, 8)
    at_target = loss(torch.log(target.clamp_min(1e-12)), uv)
    assert at_target <= loss(torch.randn(3, 2, 8, 8), uv)
    logits = torch.log(target.clamp_min(1e-12)).requires_grad_(True)
    loss(logits, uv).backward()
    assert logits.grad.abs().max() < 1e-6                                       # softmax(log t) = t: stationary
    assert loss(torch.randn(3, 2, 8, 8, dtype=torch.float16), uv).dtype == torch.float32
    with pytest.raises(LossInputError):
        loss(torch.randn(3, 3, 8, 8), uv)                                      # one map per limb
    with pytest.raises(LossInputError):
        LimbHeatmapCE([(0, 9)])(torch.randn(3, 1, 8, 8), uv)                   # index beyond the keypoints
    with pytest.raises(LossInputError):
        LimbHeatmapCE([(0, 1)], sigma=0.0)
