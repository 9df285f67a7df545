"""Procrustes-aligned keypoint error (PA-MPJPE) as a differentiable loss: the metric hand and body pose
benchmarks report (FreiHAND's ``align_w_scale``), so a network can be trained on exactly what is scored.

Example::

    loss = ProcrustesMPJPE()(pred_xyz, gt_xyz)        # (B, K, 3) each; mean over samples and keypoints
    aligned = procrustes_align(pred_xyz, gt_xyz)       # pred moved onto gt by the best similarity transform

Per sample both point sets are centred and divided by their Frobenius norms, the orthogonal matrix ``R`` and
scale ``s`` come from the SVD of ``gt_nᵀ pred_n`` (``R = U Vᵀ``, ``s`` = the sum of its singular values, as
``scipy.linalg.orthogonal_procrustes``, which allows reflections, as the official FreiHAND evaluation does), and
``aligned = pred_n Rᵀ s ‖gt‖ + mean(gt)``. The loss is the mean Euclidean distance of ``aligned`` to ``gt``
(``eps`` under the square root keeps its gradient finite at zero distance); gradients flow through the SVD.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import LossInputError, check_float


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``pred`` (B, K, 3) similarity-aligned onto ``gt`` (B, K, 3), per sample (see the module docstring)."""
    check_float("pred", "procrustes_align", pred)
    check_float("gt", "procrustes_align", gt)
    if pred.dim() != 3 or pred.shape != gt.shape:
        raise LossInputError(f"procrustes_align: pred and gt must both be (B, K, D), got {tuple(pred.shape)} "
                             f"and {tuple(gt.shape)}")
    pred, gt = pred.float(), gt.float()
    mu_gt = gt.mean(1, keepdim=True)
    gt_c, pred_c = gt - mu_gt, pred - pred.mean(1, keepdim=True)
    s_gt = gt_c.flatten(1).norm(dim=1)[:, None, None] + eps
    s_pred = pred_c.flatten(1).norm(dim=1)[:, None, None] + eps
    gt_n, pred_n = gt_c / s_gt, pred_c / s_pred
    u, sv, vh = torch.linalg.svd(gt_n.transpose(1, 2) @ pred_n)
    rot = u @ vh
    scale = sv.sum(-1)[:, None, None]
    return (pred_n @ rot.transpose(1, 2)) * scale * s_gt + mu_gt


class ProcrustesMPJPE(nn.Module):
    """Mean per-joint Euclidean error after per-sample similarity (Procrustes) alignment, optionally
    weighted per sample (``weight`` (B,))."""

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(pred.device.type, enabled=False):
            aligned = procrustes_align(pred, gt)
            err = ((aligned - gt.float()) ** 2).sum(-1).add(self.eps).sqrt().mean(1)     # (B,)
            if weight is None:
                return err.mean()
            weight = weight.float()
            return (err * weight).sum() / weight.sum().clamp_min(1e-12)
