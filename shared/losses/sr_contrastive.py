"""Contrastive losses of blind super-resolution (CRL-SR style), built on :class:`InfoNCE`.

Notation: ``N`` patch embeddings per batch (e.g. B images × g² grid cells), dimension ``D``;
``sim`` is cosine similarity, ``τ`` the temperature, ``ℓ(q, k⁺, {k⁻}) = -log e^{sim(q,k⁺)/τ} /
(e^{sim(q,k⁺)/τ} + Σ e^{sim(q,k⁻)/τ})`` (InfoNCE).

* :class:`BidirectionalContrastiveLoss` — *contrastive decoupling*: the resolution-invariant
  embedding of an LR patch ``u_i`` and the embedding of its HR patch ``h_i`` are positives in both
  directions; the resolution-variant embeddings ``v_j`` (all j) and the other patches are negatives::

      L_bi = ½ [ mean_i ℓ(u_i, h_i, {h_j}_{j≠i} ∪ {v_j}_j) + mean_i ℓ(h_i, u_i, {u_j}_{j≠i} ∪ {v_j}_j) ]

* :class:`ConditionalContrastiveLoss` — *contrastive refinement*: the restored patch's features
  ``a_i`` are pulled to the HR features ``p_i`` and pushed from degraded/upsampled versions
  ``n_ik`` and from other patches' HR ``p_j``, all compared after a FiLM modulation conditioned on
  the input's features ``c_i``: ``e_i(x) = x ⊙ (1 + γ(c_i)) + β(c_i)`` (γ, β linear in ``c_i``,
  initialised to zero so training starts from the unconditioned loss)::

      L_cond = mean_i ℓ(e_i(a_i), e_i(p_i), {e_i(n_ik)}_k ∪ {e_i(p_j)}_{j≠i})

Under DDP (``gather_distributed=True`` and more than one process) each rank keeps its local
anchors but draws the negatives — the other patches' ``h_j``/``u_j``/``v_j`` and ``p_j`` — from every
rank with :func:`shared.engine.distributed.gather_with_grad`; after DDP's gradient averaging the
loss and gradients equal the single-process loss on the concatenated batch (tested on 2 gloo ranks).

Example::

    bi = BidirectionalContrastiveLoss(temperature=0.1)
    loss = bi(lr_invariant, hr_embedding, lr_variant)          # each (N, D)
    cond = ConditionalContrastiveLoss(dim=64, cond_dim=32, temperature=0.1)
    loss = cond(sr_emb, hr_emb, torch.stack([bicubic_emb, coarse_emb], 1), lr_condition)
"""
from __future__ import annotations

import torch
from torch import nn

from shared.engine.distributed import gather_with_grad, get_rank, get_world_size

from ._checks import LossInputError, check_2d, check_positive
from .infonce import InfoNCE


def others(x: torch.Tensor, offset: int = 0, n: int | None = None) -> torch.Tensor:
    """``(M, D)`` → ``(n, M-1, D)``: row i holds every row of ``x`` except row ``offset + i``
    (``n`` anchors, default all rows; ``offset`` = where this rank's rows sit in a gathered ``x``)."""
    m, d = x.shape
    n = m if n is None else n
    mask = torch.ones(n, m, dtype=torch.bool, device=x.device)
    mask[torch.arange(n, device=x.device), offset + torch.arange(n, device=x.device)] = False
    return x.unsqueeze(0).expand(n, m, d)[mask].view(n, m - 1, d)


def _gathered(gather: bool, *tensors: torch.Tensor) -> tuple[int, list[torch.Tensor]]:
    """(row offset of the local batch, tensors gathered over ranks) — identity in one process."""
    if not gather or get_world_size() == 1:
        return 0, list(tensors)
    return get_rank() * tensors[0].shape[0], [gather_with_grad(t) for t in tensors]


class BidirectionalContrastiveLoss(nn.Module):
    """LR-invariant ↔ HR positives in both directions; variant part and other patches negatives."""

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__()
        check_positive("BidirectionalContrastiveLoss", "temperature", temperature)
        self.info_nce = InfoNCE(temperature)
        self.gather_distributed = gather_distributed

    def forward(self, invariant: torch.Tensor, hr: torch.Tensor, variant: torch.Tensor) -> torch.Tensor:
        name = "BidirectionalContrastiveLoss"
        check_2d("invariant", name, invariant)
        n, d = invariant.shape
        check_2d("hr", name, hr, rows=n, dim=d)
        check_2d("variant", name, variant, dim=d)
        if n < 2:
            raise LossInputError(f"{name}: needs at least 2 patches, got {n}")
        offset, (inv_all, hr_all, var_all) = _gathered(self.gather_distributed, invariant, hr, variant)
        var = var_all.unsqueeze(0).expand(n, var_all.shape[0], d)
        lr_to_hr = self.info_nce(invariant, hr, torch.cat([others(hr_all, offset, n), var], dim=1))
        hr_to_lr = self.info_nce(hr, invariant, torch.cat([others(inv_all, offset, n), var], dim=1))
        return 0.5 * (lr_to_hr + hr_to_lr)


class ConditionalContrastiveLoss(nn.Module):
    """Restored ↔ HR positives, degraded versions and other patches negatives, FiLM-conditioned on the input."""

    def __init__(self, dim: int, cond_dim: int, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__()
        check_positive("ConditionalContrastiveLoss", "temperature", temperature)
        self.info_nce = InfoNCE(temperature)
        self.gather_distributed = gather_distributed
        self.film = nn.Linear(cond_dim, 2 * dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                condition: torch.Tensor) -> torch.Tensor:
        name = "ConditionalContrastiveLoss"
        check_2d("anchor", name, anchor)
        n, d = anchor.shape
        check_2d("positive", name, positive, rows=n, dim=d)
        check_2d("condition", name, condition, rows=n, dim=self.film.in_features)
        if d != self.film.out_features // 2:
            raise LossInputError(f"{name}: embeddings have dim {d}, the loss was built for {self.film.out_features // 2}")
        if negatives.dim() != 3 or negatives.shape[0] != n or negatives.shape[2] != d:
            raise LossInputError(f"{name}: negatives must have shape ({n}, K, {d}), got {tuple(negatives.shape)}")
        gamma, beta = self.film(condition).chunk(2, dim=1)
        scale = 1 + gamma
        a = anchor * scale + beta
        p = positive * scale + beta
        negs = negatives * scale.unsqueeze(1) + beta.unsqueeze(1)
        # other patches' HR embeddings (all ranks under DDP), modulated by *this* patch's condition
        offset, (p_all,) = _gathered(self.gather_distributed, positive)
        other_p = others(p_all, offset, n) * scale.unsqueeze(1) + beta.unsqueeze(1) if p_all.shape[0] > 1 else negs[:, :0]
        return self.info_nce(a, p, torch.cat([negs, other_p], dim=1))
