"""Supervised contrastive loss (Khosla et al. 2020, "L_out"): positives are all samples sharing a label."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import LossInputError, check_float, check_labels, check_positive, compute_dtype, full_precision


class SupConLoss(nn.Module):
    """For each anchor a: −mean_{p∈P(a)} log softmax_{j≠a}(s_aj/τ)[p], averaged over anchors with ≥1 positive.

    ``features`` is (B, D) or (B, V, D) (V views per sample, all sharing the sample's label);
    features are L2-normalised here. Returns a zero (differentiable) loss when no anchor has a positive.

    Example::

        loss = SupConLoss(temperature=0.1)(features, labels)   # (B, V, D), (B,)
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        check_positive("SupConLoss", "temperature", temperature)
        self.temperature = float(temperature)

    @full_precision
    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_float("features", "SupConLoss", features)
        if features.dim() == 2:
            features = features.unsqueeze(1)
        if features.dim() != 3:
            raise LossInputError(f"SupConLoss: features must be (B, D) or (B, V, D), got {tuple(features.shape)}")
        b, v, d = features.shape
        check_labels("SupConLoss", "labels", labels, b)
        feats = F.normalize(features.to(compute_dtype(features)), dim=2).transpose(0, 1).reshape(v * b, d)
        lab = labels.to(feats.device).repeat(v)
        logits = torch.mm(feats, feats.t()) / self.temperature
        n = v * b
        self_mask = torch.eye(n, dtype=torch.bool, device=feats.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pos_mask = (lab[:, None] == lab[None, :]) & ~self_mask
        num_pos = pos_mask.sum(dim=1)
        usable = num_pos > 0
        if not bool(usable.any()):
            return logits.masked_fill(self_mask, 0.0).sum() * 0.0
        pos_log_prob = log_prob.masked_fill(~pos_mask, 0.0).sum(dim=1)
        return -(pos_log_prob[usable] / num_pos[usable]).mean()

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
