"""Cross-entropy of predicted keypoint heatmaps against Gaussian targets (dense supervision that makes
soft-argmax / integral keypoint heads learn far faster than a coordinate loss alone).

Example::

    prob = torch.softmax(logits.flatten(2), -1).view(B, K, H, W)   # one distribution per keypoint
    loss = GaussianHeatmapCE(sigma=1.0)(prob, uv)                    # uv (B, K, 2) in [0, 1] image units

The target of keypoint ``k`` is a normalised Gaussian centred on ``uv * (W, H)`` in cell units (cell
centres at ``i + 0.5``) with standard deviation ``sigma`` cells; the loss is
``mean_{b,k} -sum_cells target * log(prob)``, optionally weighted per sample.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import LossInputError


def cell_centres(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column centres ``i + 0.5`` of an (h, w) map in cell units, dtype/device of ``like``."""
    ys = torch.arange(h, dtype=like.dtype, device=like.device) + 0.5
    xs = torch.arange(w, dtype=like.dtype, device=like.device) + 0.5
    return ys, xs


def map_cross_entropy(target: torch.Tensor, log_prob: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``-sum_cells target * log_prob`` per (B, M, H, W) map, averaged over the M maps and then over the batch,
    or weighted per sample (``weight`` (B,); normalised by its sum, at least 1). Shared by the heatmap losses."""
    ce = -(target * log_prob).sum((-2, -1)).mean(1)     # (B,)
    if weight is None:
        return ce.mean()
    weight = weight.to(ce.dtype)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


class GaussianHeatmapCE(nn.Module):
    def __init__(self, sigma: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__()
        if sigma <= 0:
            raise LossInputError(f"GaussianHeatmapCE: sigma must be > 0, got {sigma}")
        self.sigma, self.eps = float(sigma), float(eps)

    def targets(self, uv: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, K, H, W) normalised Gaussians at ``uv`` (B, K, 2) in image units."""
        ys, xs = cell_centres(h, w, uv)
        dx = xs[None, None, None, :] - uv[..., 0, None, None] * w
        dy = ys[None, None, :, None] - uv[..., 1, None, None] * h
        g = torch.exp(-(dx * dx + dy * dy) / (2 * self.sigma ** 2))
        return g / g.sum((-2, -1), keepdim=True).clamp_min(self.eps)

    def forward(self, prob: torch.Tensor, uv: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if prob.dim() != 4 or uv.shape != (*prob.shape[:2], 2):
            raise LossInputError(f"GaussianHeatmapCE: prob (B, K, H, W) and uv (B, K, 2) expected, "
                                 f"got {tuple(prob.shape)} and {tuple(uv.shape)}")
        target = self.targets(uv.to(prob.dtype), prob.shape[2], prob.shape[3])
        return map_cross_entropy(target, torch.log(prob.clamp_min(self.eps)), weight)
