"""Losses of the tracking embedding, composed from :mod:`shared.losses` (no loss is defined here)."""
from __future__ import annotations

from torch import nn

from shared.losses import InstanceToTrackLoss, NTXentLoss


def build_loss(objective: str, temperature: float) -> nn.Module:
    """``i2t``: detection vs track prototypes (Semi-TCL); ``i2i``: detection vs detection (NT-Xent)."""
    if objective == "i2t":
        return InstanceToTrackLoss(temperature=temperature)
    if objective == "i2i":
        return NTXentLoss(temperature=temperature)
    raise ValueError(f"unknown objective {objective!r}")
