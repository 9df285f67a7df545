"""CURL (Srinivas et al. 2020): bilinear contrastive loss between anchor queries and momentum keys."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_2d, compute_dtype, full_precision


class CURLLoss(nn.Module):
    """``CE(q W kᵀ − rowmax, arange(B))`` with a learnable (dim, dim) matrix W.

    Inputs are used as given (CURL does not normalise); pass keys from the EMA encoder under
    ``torch.no_grad()``.

    Example::

        curl = CURLLoss(dim=50)
        loss = curl(q, k)      # q, k: (B, 50)
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)
        self.W = nn.Parameter(torch.rand(self.dim, self.dim))

    def logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        check_2d("q", "CURLLoss", q, dim=self.dim)
        check_2d("k", "CURLLoss", k, dim=self.dim)
        dtype = compute_dtype(q)
        q = q.to(dtype)
        logits = torch.mm(torch.mm(q, self.W.to(dtype)), k.to(dtype).t())
        return logits - logits.amax(dim=1, keepdim=True)

    @full_precision
    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        check_2d("q", "CURLLoss", q, dim=self.dim)
        check_2d("k", "CURLLoss", k, rows=q.shape[0], dim=self.dim)
        logits = self.logits(q, k)
        return F.cross_entropy(logits, torch.arange(q.shape[0], device=q.device))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
