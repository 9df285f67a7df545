"""The video-QA objectives, composed from ``shared.losses`` (no loss is defined here).

* answer (stage 2) and question (stage 1) prediction: cross entropy over the five candidate scores;
* masked-answer contrast (stage 2, weight ``contrast_weight``): the representation of the *masked*
  ground-truth input is the anchor, the *unmasked* ground-truth input its positive and the other four
  candidates its negatives - :class:`shared.losses.InfoNCE` with per-anchor negatives::

      L = -log( exp(cos(m, g)/t) / (exp(cos(m, g)/t) + sum_{i != y} exp(cos(m, u_i)/t)) )
"""
from __future__ import annotations

from typing import Sequence

import torch

from shared.losses import InfoNCE

from .text import CLS, MASK, PAD, SEP


def mask_inputs(ids: torch.Tensor, segment: torch.Tensor, prob: float, scope: str,
                generator: torch.Generator | None = None, mask_id: int = MASK,
                special_ids: Sequence[int] = (PAD, CLS, SEP)) -> torch.Tensor:
    """Masking noise: each real token (of the answer only when ``scope='answer'``) becomes ``mask_id`` with
    probability ``prob``; at least one token per row is masked; ``special_ids`` (padding, [CLS], [SEP]
    - the tokenizer's own for a pretrained one) are never masked. ``ids``/``segment``: (B, L)."""
    eligible = ~torch.isin(ids, torch.tensor(list(special_ids), dtype=ids.dtype, device=ids.device))
    if scope == "answer":
        eligible &= segment
    noise = torch.rand(ids.shape, generator=generator, device=ids.device)
    chosen = (noise < prob) & eligible
    # rows where nothing was drawn: mask the eligible token with the smallest noise
    none = ~chosen.any(dim=1) & eligible.any(dim=1)
    if none.any():
        first = noise.masked_fill(~eligible, 2.0).argmin(dim=1)
        chosen[none, first[none]] = True
    return ids.masked_fill(chosen, mask_id)


def masked_answer_contrast(joint: torch.Tensor, labels: torch.Tensor, loss_fn: InfoNCE) -> torch.Tensor:
    """``joint``: (B, 6, D) = five candidates then the masked ground-truth input; ``labels``: (B,)."""
    b, c, d = joint.shape
    anchor = joint[:, c - 1]
    rows = torch.arange(b, device=joint.device)
    positive = joint[rows, labels]
    keep = torch.ones(b, c - 1, dtype=torch.bool, device=joint.device)
    keep[rows, labels] = False
    negatives = joint[:, : c - 1][keep].reshape(b, c - 2, d)
    return loss_fn(anchor, positive, negatives)
