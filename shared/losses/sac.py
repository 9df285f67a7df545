"""Soft actor-critic losses (Haarnoja et al. 2018) as the CURL code uses them: twin-Q soft Bellman
target, critic MSE, actor and temperature losses. Pure functions of tensors, so they test against an
explicit formula.

Example::

    target = sac_target(reward, discount, q1_next, q2_next, log_pi_next, alpha)   # (B, 1), no grad
    critic_loss = sac_critic_loss(q1, q2, target)
    actor_loss = sac_actor_loss(q1_pi, q2_pi, log_pi, alpha)
    alpha_loss = sac_alpha_loss(log_alpha, log_pi, target_entropy=-action_dim)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def sac_target(reward: torch.Tensor, discount: torch.Tensor, q1_next: torch.Tensor, q2_next: torch.Tensor,
               log_pi_next: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """``r + discount · (min(Q1', Q2') − α log π(a'|s'))``; ``discount`` = γ·(1 − terminal), all (B, 1)."""
    alpha = alpha.detach() if isinstance(alpha, torch.Tensor) else alpha
    return (reward + discount * (torch.min(q1_next, q2_next) - alpha * log_pi_next)).detach()


def sac_critic_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``MSE(Q1, y) + MSE(Q2, y)`` (official: sum of the two means)."""
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def sac_actor_loss(q1_pi: torch.Tensor, q2_pi: torch.Tensor, log_pi: torch.Tensor,
                   alpha: torch.Tensor | float) -> torch.Tensor:
    """``mean(α log π − min(Q1, Q2))`` with α held fixed."""
    alpha = alpha.detach() if isinstance(alpha, torch.Tensor) else alpha
    return (alpha * log_pi - torch.min(q1_pi, q2_pi)).mean()


def sac_alpha_loss(log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """``mean(α · (−log π − H̄))`` with log π held fixed (official CURL uses α, not log α, here)."""
    return (log_alpha.exp() * (-log_pi - target_entropy).detach()).mean()


def squashed_gaussian_log_prob(noise: torch.Tensor, log_std: torch.Tensor, pi_tanh: torch.Tensor) -> torch.Tensor:
    """log π of ``tanh(μ + σ·noise)``: Gaussian log-density minus ``Σ log(relu(1 − tanh²) + 1e-6)``, (B, 1)."""
    gaussian = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) - 0.5 * math.log(2 * math.pi) * noise.shape[-1]
    return gaussian - torch.log(F.relu(1 - pi_tanh.pow(2)) + 1e-6).sum(-1, keepdim=True)
