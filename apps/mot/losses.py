"""Losses of the tracking embedding, composed from :mod:`shared.losses` (no loss is defined here)."""
from __future__ import annotations

from torch import nn

from shared.losses import InstanceToTrackLoss, SupConLoss


def build_loss(objective: str, temperature: float) -> nn.Module:
    """``i2t``: detection vs track prototypes (Semi-TCL); ``i2i``: detection vs detections of the batch,
    label-aware (every detection of the same track is a positive: multi-positive ``SupConLoss``), so
    the two objectives differ only in "prototype vs instance", not in how labels are used."""
    if objective == "i2t":
        return InstanceToTrackLoss(temperature=temperature)
    if objective == "i2i":
        return SupConLoss(temperature=temperature)
    raise ValueError(f"unknown objective {objective!r}")
