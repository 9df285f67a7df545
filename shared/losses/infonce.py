"""General InfoNCE: each query against its positive and a set of negatives (shared or per query)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import LossInputError, check_2d, check_positive, compute_dtype, full_precision


class InfoNCE(nn.Module):
    """InfoNCE / MoCo loss: cross entropy with the positive at index 0 of ``[q·k⁺, q·negatives] / τ``.

    All inputs are L2-normalised here. ``negatives`` is ``(K, D)`` (shared, e.g. a MoCo queue),
    ``(B, K, D)`` (one set per query), or ``None`` (the other queries' positives are the negatives).

    Example::

        loss_fn = InfoNCE(temperature=0.07)
        loss = loss_fn(q, k, queue.negatives())   # q, k: (B, D); negatives: (K, D)
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        check_positive("InfoNCE", "temperature", temperature)
        self.temperature = float(temperature)

    @full_precision
    def forward(self, query: torch.Tensor, positive: torch.Tensor,
                negatives: torch.Tensor | None = None) -> torch.Tensor:
        check_2d("query", "InfoNCE", query)
        b, d = query.shape
        check_2d("positive", "InfoNCE", positive, rows=b, dim=d)
        dtype = compute_dtype(query)
        q = F.normalize(query.to(dtype), dim=1)
        k = F.normalize(positive.to(dtype), dim=1)
        inv_t = 1.0 / self.temperature
        if negatives is None:
            logits = torch.mm(q * inv_t, k.t())
            return F.cross_entropy(logits, torch.arange(b, device=q.device))
        if not isinstance(negatives, torch.Tensor) or not negatives.is_floating_point():
            raise LossInputError("InfoNCE: negatives must be a float tensor of shape (K, D) or (B, K, D)")
        if negatives.dim() == 2 and negatives.shape[1] == d:
            neg = F.normalize(negatives.to(dtype), dim=1)
            l_neg = torch.mm(q, neg.t())
        elif negatives.dim() == 3 and negatives.shape[0] == b and negatives.shape[2] == d:
            neg = F.normalize(negatives.to(dtype), dim=2)
            l_neg = torch.bmm(neg, q.unsqueeze(2)).squeeze(2)
        else:
            raise LossInputError(
                f"InfoNCE: negatives must have shape (K, {d}) or ({b}, K, {d}), got {tuple(negatives.shape)}")
        l_pos = (q * k).sum(dim=1, keepdim=True)
        logits = torch.cat([l_pos, l_neg], dim=1) * inv_t
        return F.cross_entropy(logits, torch.zeros(b, dtype=torch.long, device=q.device))

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
