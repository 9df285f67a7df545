"""Distributional (C51) Q-learning loss (Bellemare et al. 2017) as data-efficient Rainbow uses it:
project the n-step target distribution onto the fixed support, then cross-entropy.

Example::

    support = torch.linspace(-10, 10, 51)
    m = c51_project(next_probs_of_greedy_action, returns, discount, support)   # (B, 51), no grad
    loss_per_sample = c51_loss(log_probs_of_taken_action, m)                  # (B,)
"""
from __future__ import annotations

import torch


@torch.no_grad()
def c51_project(next_probs: torch.Tensor, returns: torch.Tensor, discount: torch.Tensor,
                support: torch.Tensor) -> torch.Tensor:
    """Target distribution m (B, atoms): the mass of each atom z_j at ``Tz_j = R + discount·z_j``
    (clamped to [v_min, v_max]) split between its two neighbouring atoms in proportion to distance.

    ``discount`` is γⁿ·(1 − terminal) per sample. When ``Tz`` lands exactly on an atom all of its mass
    goes there (the reference Rainbow code moves l/u apart to keep it; same result).
    """
    atoms = support.numel()
    v_min, v_max = float(support[0]), float(support[-1])
    delta = (v_max - v_min) / (atoms - 1)
    tz = (returns.reshape(-1, 1) + discount.reshape(-1, 1) * support.reshape(1, -1)).clamp(v_min, v_max)
    b = (tz - v_min) / delta
    lower, upper = b.floor().long(), b.ceil().long()
    exact = lower == upper
    m = torch.zeros_like(next_probs)
    m.scatter_add_(1, lower, next_probs * torch.where(exact, torch.ones_like(b), upper.to(b.dtype) - b))
    m.scatter_add_(1, upper, next_probs * torch.where(exact, torch.zeros_like(b), b - lower.to(b.dtype)))
    return m


def c51_loss(log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy ``−Σ_j m_j log p_j`` (B,); weight by PER importance weights outside."""
    return -(target * log_probs).sum(dim=1)
