"""AdCo (Hu et al., CVPR 2021): a learnable bank of negatives trained adversarially.

The encoder minimises CE over ``[q·k_j for every key j of the (gathered) batch, q·Ŵ] / τ`` with
target the query's own key (Ŵ = column-normalised bank). The bank then takes one step of gradient
*ascent* on that same contrastive loss, with its own temperature τ_m, by SGD with momentum and
weight decay, exactly as the official code's memory update:

    p_ik = softmax_j([q_i·k_j]_j ++ [q_i·ŵ_k]_k / τ_m)   restricted to the bank columns k
    ∇_{w_k} L = ( mean_i p_ik q_i − mean_i(p_ik q_i·ŵ_k) ŵ_k ) / (‖w_k‖ τ_m)
    v ← m·v − ∇_W L + wd·W,   W ← W − lr·v

Under DDP the keys are all-gathered (every query sees every rank's keys in its softmax, its target
offset by rank·B, as in the official code) and the bank gradient is averaged over ranks, so every
rank's bank stays identical and equals the single-process update on the concatenated batch.
The bank is a buffer, not a parameter, so the encoder's optimizer never touches it.
A symmetrised loss ½[L(q₀, k₁) + L(q₁, k₀)] steps the bank with
``ascent_step_pairs([(q0, k1), (q1, k0)])`` (the official ``--sym 1`` update, g = ½(g₁ + g₂)).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from shared.engine.distributed import all_reduce_mean, gather_no_grad, gather_with_grad, get_rank, get_world_size

from ._checks import LossInputError, check_2d, check_positive, compute_dtype, full_precision


class AdCoBank(nn.Module):
    """Bank W (D, K) of adversarial negatives plus its SGD momentum buffer (both checkpointed).

    Example::

        bank = AdCoBank(dim=128, size=4096)
        bank.init_from_keys(keys)                   # warm-up: key features (call until full)
        loss = AdCoLoss(0.12)(q, k, bank)            # encoder step
        ...  # after optimizer.step():
        bank.ascent_step(q.detach(), k.detach())
        # symmetrised: bank.ascent_step_pairs([(q0.detach(), k1), (q1.detach(), k0)])
    """

    def __init__(self, dim: int, size: int, temperature: float = 0.02, lr: float = 3.0,
                 momentum: float = 0.9, weight_decay: float = 1e-4) -> None:
        super().__init__()
        if dim < 1 or size < 1:
            raise LossInputError(f"AdCoBank: dim and size must be >= 1, got dim={dim}, size={size}")
        check_positive("AdCoBank", "temperature", temperature)
        self.dim, self.size = int(dim), int(size)
        self.temperature, self.lr = float(temperature), float(lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.register_buffer("bank", F.normalize(torch.randn(self.dim, self.size), dim=0))
        self.register_buffer("velocity", torch.zeros(self.dim, self.size))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # next column init_from_keys writes

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # checkpoints written before ``ptr`` existed: continue after the filled columns
        if prefix + "filled" in state_dict and prefix + "ptr" not in state_dict:
            state_dict[prefix + "ptr"] = state_dict[prefix + "filled"].clone() % self.size
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def normalized_bank(self) -> torch.Tensor:
        """Ŵ: the bank with unit-norm columns (D, K), detached."""
        return F.normalize(self.bank.detach(), dim=0)

    @torch.no_grad()
    def init_from_keys(self, keys: torch.Tensor) -> int:
        """Write key features (B, D) (gathered over ranks) into the next columns; returns #filled.

        Call it over a warm-up pass until it returns ``size``; once full, later calls wrap around
        and overwrite the oldest columns (a ring, like a MoCo queue). At most ``size`` keys of one
        call are used.
        """
        check_2d("keys", "AdCoBank.init_from_keys", keys, dim=self.dim)
        keys = F.normalize(gather_no_grad(keys.detach()).to(self.bank.dtype), dim=1)[: self.size]
        start = int(self.ptr) % self.size
        idx = (torch.arange(keys.shape[0], device=self.bank.device) + start) % self.size
        self.bank[:, idx] = keys.t()
        self.velocity.zero_()
        self.ptr.fill_((start + keys.shape[0]) % self.size)
        self.filled.fill_(min(int(self.filled) + keys.shape[0], self.size))
        return int(self.filled)

    @full_precision
    def logits(self, q: torch.Tensor) -> torch.Tensor:
        """Cosine similarities of normalised queries (B, D) with Ŵ: (B, K) (no gradient to the bank)."""
        check_2d("q", "AdCoBank.logits", q, dim=self.dim)
        qn = F.normalize(q.to(compute_dtype(q)), dim=1)
        return torch.mm(qn, self.normalized_bank().to(qn.dtype))

    def bank_loss(self, bank: torch.Tensor, q: torch.Tensor, keys: torch.Tensor, offset: int = 0,
                  include_batch_keys: bool = True) -> torch.Tensor:
        """CE([q_i·k_j]_j ++ [q_i·Ŵ] / τ_m, target ``offset + i``) as a function of the raw ``bank``.

        ``keys`` are all keys of the (gathered) batch, query i's own key at row ``offset + i``.
        ``include_batch_keys=False`` keeps only each query's own key: CE([q_i·k_i, q_i·Ŵ]).
        """
        qn = F.normalize(q, dim=1)
        kn = F.normalize(keys, dim=1)
        l_neg = torch.mm(qn, F.normalize(bank, dim=0))
        if include_batch_keys:
            l_keys = torch.mm(qn, kn.t())
            target = offset + torch.arange(q.shape[0], device=q.device)
        else:
            l_keys = (qn * kn[offset: offset + q.shape[0]]).sum(dim=1, keepdim=True)
            target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        logits = torch.cat([l_keys, l_neg], dim=1) / self.temperature
        return F.cross_entropy(logits, target)

    @full_precision
    def ascent_step(self, q_detached: torch.Tensor, k_detached: torch.Tensor,
                    include_batch_keys: bool = True) -> torch.Tensor:
        """One SGD-momentum step that *increases* the contrastive loss w.r.t. the bank; returns the loss.

        ``q``/``k`` are this rank's queries and their keys; keys are gathered over ranks (official AdCo).
        """
        return self.ascent_step_pairs([(q_detached, k_detached)], include_batch_keys)

    @full_precision
    def ascent_step_pairs(self, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
                          include_batch_keys: bool = True) -> torch.Tensor:
        """One SGD-momentum ascent step on the MEAN of the bank losses of several (queries, keys) pairs.

        The symmetrised loss ``½[L(q₀, k₁) + L(q₁, k₀)]`` needs
        ``ascent_step_pairs([(q0, k1), (q1, k0)])``: each query's softmax holds only the keys of its
        own direction, so the step is the official symmetric-mode update ``g = ½(g₁ + g₂)``
        (``--sym 1``). Passing ``cat([q0, q1])`` with ``cat([k1, k0])`` to :meth:`ascent_step` instead
        would put every query's own-view key (a near-copy of the query) into its softmax.
        """
        if not pairs:
            raise LossInputError("AdCoBank.ascent_step_pairs: needs at least one (queries, keys) pair")
        prepared = []
        for q_detached, k_detached in pairs:
            check_2d("q", "AdCoBank.ascent_step", q_detached, dim=self.dim)
            check_2d("k", "AdCoBank.ascent_step", k_detached, rows=q_detached.shape[0], dim=self.dim)
            q = q_detached.detach().to(self.bank.dtype)
            keys = gather_no_grad(k_detached.detach().to(self.bank.dtype))
            offset = get_rank() * q.shape[0] if get_world_size() > 1 else 0
            prepared.append((q, keys, offset))
        with torch.enable_grad():
            w = self.bank.detach().clone().requires_grad_(True)
            loss = sum(self.bank_loss(w, q, keys, offset, include_batch_keys)
                       for q, keys, offset in prepared) / len(prepared)
            (grad,) = torch.autograd.grad(loss, w)
        grad = all_reduce_mean(grad)
        with torch.no_grad():
            self.velocity.mul_(self.momentum).sub_(grad).add_(self.bank, alpha=self.weight_decay)
            self.bank.sub_(self.velocity, alpha=self.lr)
        return loss.detach()

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, size={self.size}, temperature={self.temperature}, lr={self.lr}, "
                f"momentum={self.momentum}, weight_decay={self.weight_decay}")


class AdCoLoss(nn.Module):
    """Encoder loss of AdCo: CE over ``[q·k, (q·k_j)_{j≠i}, q·Ŵ] / τ`` with target the positive.

    Under DDP the keys ``k_j`` are gathered from every rank (official code; the target of local
    query i is ``rank·B + i``). ``include_batch_keys=False`` drops the in-batch keys (pure
    ``[q·k, q·Ŵ]`` as in the paper); pass the same flag to :meth:`AdCoBank.ascent_step`.

    Example::

        loss = AdCoLoss(temperature=0.12)(q, k, bank)   # q: (B, D) queries, k: (B, D) keys
    """

    def __init__(self, temperature: float = 0.12, include_batch_keys: bool = True) -> None:
        super().__init__()
        check_positive("AdCoLoss", "temperature", temperature)
        self.temperature = float(temperature)
        self.include_batch_keys = include_batch_keys

    @full_precision
    def forward(self, q: torch.Tensor, k: torch.Tensor, bank: AdCoBank) -> torch.Tensor:
        if not isinstance(bank, AdCoBank):
            raise LossInputError(f"AdCoLoss: bank must be an AdCoBank, got {type(bank).__name__}")
        check_2d("q", "AdCoLoss", q, dim=bank.dim)
        check_2d("k", "AdCoLoss", k, rows=q.shape[0], dim=bank.dim)
        dtype = compute_dtype(q)
        qn = F.normalize(q.to(dtype), dim=1)
        kn = F.normalize(k.to(dtype), dim=1)
        l_neg = torch.mm(qn, bank.normalized_bank().to(dtype))
        b = q.shape[0]
        if self.include_batch_keys:
            offset = get_rank() * b if get_world_size() > 1 else 0
            logits = torch.cat([torch.mm(qn, gather_with_grad(kn).t()), l_neg], dim=1) / self.temperature
            target = offset + torch.arange(b, device=q.device)
        else:
            l_pos = (qn * kn).sum(dim=1, keepdim=True)
            logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
            target = torch.zeros(b, dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, include_batch_keys={self.include_batch_keys}"
