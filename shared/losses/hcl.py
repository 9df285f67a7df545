"""Hard-negative contrastive loss, HCL (Robinson et al., ICLR 2021), computed in log space.

Over the 2B normalised embeddings of two views, every anchor has one positive and N = 2B−2
negatives with similarities s. With ``neg = exp(s/t)``, ``pos = exp(s⁺/t)``, ``imp = exp(β·s/t)``:

    reweight = Σ(imp·neg) / mean(imp)                     (sums/means over the N negatives)
    Ng       = max((−τ⁺·N·pos + reweight) / (1−τ⁺),  N·e^{−1/t})
    loss     = mean −log(pos / (pos + Ng))

β=0, τ⁺=0 is NT-Xent; β=0, τ⁺>0 the debiased loss (Chuang et al. 2020). The official code uses
raw ``exp`` which overflows in fp16/bf16 and at small t; here every term is a logsumexp:
log reweight = LSE((1+β)s/t) − LSE(βs/t) + log N, log(a−b) = log a + log1p(−b/a), and
loss = softplus(log Ng − s⁺/t).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from shared.engine.distributed import gather_with_grad, get_rank, get_world_size

from ._checks import LossInputError, check_pair, check_positive, compute_dtype, full_precision


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, accurate near 0 and for very negative x."""
    cut = -math.log(2.0)
    near = torch.log(-torch.expm1(torch.clamp(x, min=cut)))  # each branch sees only its own range,
    far = torch.log1p(-torch.exp(torch.clamp(x, max=cut)))   # so no inf/NaN leaks into the gradient
    return torch.where(x > cut, near, far)


class HCLLoss(nn.Module):
    """Hard-negative (β) and debiased (τ⁺) contrastive loss over two views.

    Example::

        loss_fn = HCLLoss(temperature=0.5, tau_plus=0.1, beta=1.0)
        loss = loss_fn(z0, z1)     # z0, z1: (B, D) raw embeddings of two views
    """

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1, beta: float = 1.0,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        check_positive("HCLLoss", "temperature", temperature)
        if not 0.0 <= tau_plus < 1.0:
            raise LossInputError(f"HCLLoss: tau_plus must be in [0, 1), got {tau_plus}")
        if beta < 0:
            raise LossInputError(f"HCLLoss: beta must be >= 0, got {beta}")
        self.temperature, self.tau_plus, self.beta = float(temperature), float(tau_plus), float(beta)
        self.gather_distributed = gather_distributed

    @full_precision
    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        check_pair("HCLLoss", z0, z1)
        dtype = compute_dtype(z0)
        local = F.normalize(torch.cat([z0, z1], dim=0).to(dtype), dim=1)  # (2b, D)
        n2 = local.shape[0]
        half = n2 // 2
        offset = 0
        candidates = local
        if self.gather_distributed and get_world_size() > 1:
            candidates = gather_with_grad(local)
            offset = get_rank() * n2
        total = candidates.shape[0]
        num_neg = total - 2
        if num_neg < 1:
            raise LossInputError(f"HCLLoss: needs at least 2 samples per view in total, got {total // 2}")
        inv_t = 1.0 / self.temperature
        logits = torch.mm(local * inv_t, candidates.t())  # s/t, (2b, 2N)
        rows = torch.arange(n2, device=local.device)
        partner = offset + (rows + half) % n2
        pos_logit = logits[rows, partner]  # s⁺/t
        mask = torch.zeros_like(logits, dtype=torch.bool)
        mask[rows, offset + rows] = True
        mask[rows, partner] = True
        neg = logits.masked_fill(mask, float("-inf"))  # only the N negatives stay finite
        log_n = math.log(num_neg)
        if self.beta == 0.0:
            log_reweight = torch.logsumexp(neg, dim=1)
        else:
            log_reweight = (torch.logsumexp(neg * (1.0 + self.beta), dim=1)
                            - torch.logsumexp(neg * self.beta, dim=1) + log_n)
        if self.tau_plus > 0.0:
            log_sub = math.log(self.tau_plus) + log_n + pos_logit  # log(τ⁺·N·pos)
            gap = log_sub - log_reweight
            valid = gap < 0
            safe_gap = torch.where(valid, gap, torch.full_like(gap, -1.0))
            log_ng = log_reweight + _log1mexp(safe_gap) - math.log1p(-self.tau_plus)
            log_ng = torch.where(valid, log_ng, torch.full_like(log_ng, float("-inf")))
        else:
            log_ng = log_reweight
        log_ng = torch.clamp(log_ng, min=log_n - inv_t)
        return F.softplus(log_ng - pos_logit).mean()

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, tau_plus={self.tau_plus}, beta={self.beta}, "
                f"gather_distributed={self.gather_distributed}")
