"""NT-Xent (SimCLR) loss: 2B normalised embeddings, each one's positive is its partner view.

Speed: on one process the loss and its gradient are computed by a small autograd function that
does ONE (2B x 2B) similarity matmul forward and ONE matmul backward (the similarity is symmetric,
so d/dZ of Z Zᵀ is (G + Gᵀ) Z), keeping exp(S) in the similarity buffer; no masked_select or
extra (2B x 2B) copies. Under DDP with ``gather_distributed=True`` each rank scores its local
anchors against the gathered candidates (``gather_with_grad``), so after DDP's gradient
averaging the gradient equals the single-process one on the concatenated batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.engine.distributed import gather_with_grad, get_rank, get_world_size

from ._checks import check_pair, check_positive, compute_dtype, full_precision


_EXP_RANGE = {torch.float32: 80.0, torch.float64: 700.0}


class _SymmetricNTXent(torch.autograd.Function):
    """Mean NT-Xent over the 2B rows of normalised ``zn`` (rows i and i+B are positives).

    Forward keeps E = exp(S − 1/t) with a zero diagonal (S = Zₙ Zₙᵀ / t), which is symmetric,
    and the row sums; backward needs (P + Pᵀ) Zₙ with P = diag(r) E, r = 1/rowsum, and
    P + Pᵀ = E ⊙ (r_i + r_j): one elementwise pass and one (2B x 2B)·(2B x D) matmul.
    Because |S| ≤ 1/t the fixed shift 1/t cannot overflow; it is used only when 2/t is inside
    exp's range (else the row-max path).
    """

    @staticmethod
    @full_precision
    def forward(ctx, zn: torch.Tensor, inv_t: float) -> torch.Tensor:  # type: ignore[override]
        n2 = zn.shape[0]
        half = n2 // 2
        symmetric = 2.0 * inv_t < _EXP_RANGE.get(zn.dtype, 0.0)
        sim = torch.mm(zn * inv_t, zn.t())  # (2B, 2B) logits S
        if symmetric:
            shift = torch.full((n2, 1), inv_t, dtype=zn.dtype, device=zn.device)
            sim.sub_(inv_t).exp_()
            sim.diagonal().zero_()
        else:
            sim.diagonal().fill_(float("-inf"))
            shift = sim.amax(dim=1, keepdim=True)
            sim.sub_(shift).exp_()
        row_sum = sim.sum(dim=1, keepdim=True)
        lse = shift.squeeze(1) + row_sum.squeeze(1).log()
        pos = (zn[:half] * zn[half:]).sum(dim=1) * inv_t
        loss = (lse.sum() - 2.0 * pos.sum()) / n2
        ctx.save_for_backward(zn, sim, row_sum)
        ctx.inv_t, ctx.symmetric = inv_t, symmetric
        return loss

    @staticmethod
    @full_precision
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        zn, expo, row_sum = ctx.saved_tensors
        n2 = zn.shape[0]
        half = n2 // 2
        recip = row_sum.reciprocal()
        if ctx.symmetric:
            # P + Pᵀ = E ⊙ (r_i + r_j) because E is symmetric: one elementwise pass, one matmul.
            grad = torch.mm(expo * (recip + recip.t()), zn)
        else:
            prob = expo * recip
            grad = torch.mm(prob + prob.t(), zn)
        partner = torch.cat([zn[half:], zn[:half]], dim=0)
        grad.sub_(partner, alpha=2.0)
        grad.mul_(grad_out * (ctx.inv_t / n2))
        return grad, None


def ntxent_gathered(z_local: torch.Tensor, candidates: torch.Tensor, offset: int, inv_t: float) -> torch.Tensor:
    """NT-Xent of local rows ``z_local`` (2b, D; views stacked) against ``candidates`` (2N, D).

    ``candidates[offset:offset+2b]`` is ``z_local`` itself, laid out the same way.
    """
    n2 = z_local.shape[0]
    half = n2 // 2
    logits = torch.mm(z_local * inv_t, candidates.t())
    logits.diagonal(offset).fill_(float("-inf"))
    idx = torch.arange(n2, device=z_local.device)
    target = offset + (idx + half) % n2
    return F.cross_entropy(logits, target)


class NTXentLoss(nn.Module):
    """Normalised-temperature cross entropy (SimCLR) over two views.

    Example::

        loss_fn = NTXentLoss(temperature=0.5)
        loss = loss_fn(z0, z1)          # z0, z1: (B, D) raw embeddings of two views
        loss.backward()
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False) -> None:
        super().__init__()
        check_positive("NTXentLoss", "temperature", temperature)
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    @full_precision
    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        check_pair("NTXentLoss", z0, z1)
        dtype = compute_dtype(z0)
        zn = F.normalize(torch.cat([z0, z1], dim=0).to(dtype), dim=1)
        inv_t = 1.0 / self.temperature
        if self.gather_distributed and get_world_size() > 1:
            candidates = gather_with_grad(zn)
            return ntxent_gathered(zn, candidates, get_rank() * zn.shape[0], inv_t)
        return _SymmetricNTXent.apply(zn, inv_t)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"
