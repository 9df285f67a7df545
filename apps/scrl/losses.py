"""SCRL's objective: the shared BYOL loss applied per box pair (symmetrised), see ``shared/losses/byol.py``.

Example::

    loss = box_byol_loss(pred_boxes_v0, target_boxes_v1, pred_boxes_v1, target_boxes_v0)
"""
from __future__ import annotations

import torch

from shared.losses import BYOLLoss

_BYOL = BYOLLoss(detach_targets=True)


def box_byol_loss(p0: torch.Tensor, z1: torch.Tensor, p1: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """Mean over box pairs of ``(2 - 2 cos(p0_k, z1_k) + 2 - 2 cos(p1_k, z0_k)) / 2``; rows are box pairs
    (SCRL) or images (the image-level BYOL baseline)."""
    return _BYOL(p0, z1, p1, z0)
