"""Cross-entropy of predicted limb (bone) maps against targets drawn along the segments between keypoint pairs:
dense supervision of *which* part of a keypoint skeleton covers which cells (e.g. which finger a pixel belongs to),
used as an auxiliary, training-only head beside per-joint heatmaps (the limb maps of part-affinity / bone-map
pose estimators, here as one softmax distribution per limb).

Example::

    bones = [(0, 1), (1, 2), (2, 3)]                        # (parent, child) keypoint indices
    logits = head(features)                                  # (B, len(bones), H, W), one map per limb
    loss = LimbHeatmapCE(bones, sigma=1.0)(logits, uv)       # uv (B, K, 2) keypoints in [0, 1] image units

The target of limb ``(a, b)`` is ``exp(-d^2 / (2 sigma^2))`` with ``d`` the distance (in cells, cell centres at
``i + 0.5``) from a cell centre to the segment ``uv_a -> uv_b`` scaled by ``(W, H)``, normalised to sum to 1
over the cells (a zero-length limb is a Gaussian at its point). The loss is
``mean_{b,l} -sum_cells target * log_softmax(logits)``, optionally weighted per sample: the same form as
:class:`shared.losses.heatmap.GaussianHeatmapCE`, so a weight of 1 gives a limb map the weight of a joint map.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import LossInputError
from .heatmap import cell_centres, map_cross_entropy


class LimbHeatmapCE(nn.Module):
    def __init__(self, limbs: Sequence[tuple[int, int]], sigma: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__()
        if sigma <= 0:
            raise LossInputError(f"LimbHeatmapCE: sigma must be > 0, got {sigma}")
        if not limbs or any(len(pair) != 2 or min(pair) < 0 for pair in limbs):
            raise LossInputError(f"LimbHeatmapCE: limbs must be non-empty (a, b) index pairs, got {limbs!r}")
        self.register_buffer("ends", torch.tensor([list(map(int, pair)) for pair in limbs], dtype=torch.long),
                             persistent=False)
        self.sigma, self.eps = float(sigma), float(eps)

    def targets(self, uv: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, L, H, W) normalised maps along the limbs of keypoints ``uv`` (B, K, 2) in image units."""
        scale = torch.tensor([w, h], dtype=uv.dtype, device=uv.device)
        a = uv[:, self.ends[:, 0]] * scale                       # (B, L, 2) in cell units
        b = uv[:, self.ends[:, 1]] * scale
        ys, xs = cell_centres(h, w, uv)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        cells = torch.stack([gx, gy], -1).view(1, 1, h * w, 2)  # (1, 1, HW, 2)
        ab = (b - a)[:, :, None]                                 # (B, L, 1, 2)
        ac = cells - a[:, :, None]                               # (B, L, HW, 2)
        length2 = (ab * ab).sum(-1)
        t = ((ac * ab).sum(-1) / length2.clamp_min(self.eps)).clamp(0.0, 1.0)
        t = torch.where(length2 > self.eps, t, torch.zeros_like(t))  # zero-length limb: distance to its point
        d = ac - t[..., None] * ab
        g = torch.exp(-(d * d).sum(-1) / (2 * self.sigma ** 2))
        g = g / g.sum(-1, keepdim=True).clamp_min(self.eps)
        return g.view(*uv.shape[:1], len(self.ends), h, w)

    def forward(self, logits: torch.Tensor, uv: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if logits.dim() != 4 or uv.dim() != 3 or uv.shape[-1] != 2 or len(uv) != len(logits) \
                or logits.shape[1] != len(self.ends):
            raise LossInputError(f"LimbHeatmapCE: logits (B, {len(self.ends)}, H, W) and uv (B, K, 2) expected, "
                                 f"got {tuple(logits.shape)} and {tuple(uv.shape)}")
        if int(self.ends.max()) >= uv.shape[1]:
            raise LossInputError(f"LimbHeatmapCE: limb index {int(self.ends.max())} out of range for {uv.shape[1]} keypoints")
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        target = self.targets(uv.to(logits.dtype), logits.shape[2], logits.shape[3])
        logp = torch.log_softmax(logits.flatten(2), -1).view_as(logits)
        return map_cross_entropy(target, logp, weight)
