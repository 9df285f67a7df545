"""BYOL loss: normalised MSE 2 − 2·cos(prediction, target), optionally symmetrised."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import LossInputError, check_2d, compute_dtype, full_precision


def _norm_mse(p: torch.Tensor, z: torch.Tensor, detach: bool) -> torch.Tensor:
    dtype = compute_dtype(p)
    z = z.detach() if detach else z
    cos = (F.normalize(p.to(dtype), dim=-1) * F.normalize(z.to(dtype), dim=-1)).sum(dim=-1)
    return (2.0 - 2.0 * cos).mean()


class BYOLLoss(nn.Module):
    """``2 − 2·cos(p0, z1)`` averaged over rows; the mean of both directions when p1 and z0 are given.

    Targets (z) are detached by default (they come from the EMA target network).

    Example::

        loss_fn = BYOLLoss()
        loss = loss_fn(online_pred(v0), target_proj(v1), online_pred(v1), target_proj(v0))
    """

    def __init__(self, detach_targets: bool = True) -> None:
        super().__init__()
        self.detach_targets = detach_targets

    @full_precision
    def forward(self, p0: torch.Tensor, z1: torch.Tensor, p1: torch.Tensor | None = None,
                z0: torch.Tensor | None = None) -> torch.Tensor:
        check_2d("p0", "BYOLLoss", p0)
        check_2d("z1", "BYOLLoss", z1, rows=p0.shape[0], dim=p0.shape[1])
        loss = _norm_mse(p0, z1, self.detach_targets)
        if (p1 is None) != (z0 is None):
            raise LossInputError("BYOLLoss: pass both p1 and z0 for the symmetric loss, or neither")
        if p1 is None or z0 is None:
            return loss
        check_2d("p1", "BYOLLoss", p1, rows=p0.shape[0], dim=p0.shape[1])
        check_2d("z0", "BYOLLoss", z0, rows=p0.shape[0], dim=p0.shape[1])
        return 0.5 * (loss + _norm_mse(p1, z0, self.detach_targets))
