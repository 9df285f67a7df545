"""Losses of the points app, composed from :mod:`shared.losses` (no loss is defined here)."""
from __future__ import annotations

from torch import nn

from shared.losses import InfoNCE


def build_contrastive_loss(temperature: float = 0.07) -> nn.Module:
    """InfoNCE (tau 0.07 as in SCL): patch vs its self-similar positive and its sampled negatives
    (``negatives`` (B, K, D)); for the instance ablation the other clouds of the batch are the negatives."""
    return InfoNCE(temperature=temperature)


def build_segmentation_loss() -> nn.Module:
    """Per-point cross entropy over the category's parts (other parts are masked to -inf by the model)."""
    return nn.CrossEntropyLoss()
