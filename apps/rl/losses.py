"""The objectives of the two agents, composed from ``shared.losses`` (no loss is defined here).

* CURL-SAC: ``sac_target`` / ``sac_critic_loss`` / ``sac_actor_loss`` / ``sac_alpha_loss`` and the
  contrastive term ``CURLLoss(q = critic encoder(anchor crop), k = target encoder(positive crop))``.
* CURL-DER: C51 n-step double-Q cross-entropy (``c51_project`` + ``c51_loss``) plus
  ``coeff · CURLLoss`` on two random shifts, with the official logit scale 0.1.
"""
from __future__ import annotations

import torch

from shared.losses import c51_loss, c51_project

from .model import DERNetwork, SACNetworks

CURL_DER_LOGIT_SCALE = 0.1  # official curl_rainbow: logits * 0.1
# official curl_rainbow: the contrastive term is down-weighted on these games
CURL_DER_SMALL_COEFF_GAMES = ("pong", "boxing", "private_eye", "freeway")


def curl_sac_contrastive(nets: SACNetworks, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """CURL loss of the critic encoder (queries) against the critic target encoder (keys, no grad)."""
    q = nets.critic.encoder(anchor)
    with torch.no_grad():
        k = nets.critic_target.encoder(positive)
    return nets.curl(q, k)


def curl_der_contrastive(online: DERNetwork, momentum: DERNetwork, anchor: torch.Tensor,
                         positive: torch.Tensor) -> torch.Tensor:
    """Scaled CURL loss: ``(0.1 q) W kᵀ − rowmax`` equals the official ``0.1 (q W kᵀ − rowmax)``."""
    _, q = online(anchor, log=True, with_curl=True)
    with torch.no_grad():
        _, k = momentum(positive, log=True, with_curl=True)
    return online.curl(CURL_DER_LOGIT_SCALE * q, k)


def der_distributional_loss(online: DERNetwork, target: DERNetwork, obs: torch.Tensor, action: torch.Tensor,
                            returns: torch.Tensor, discount: torch.Tensor, next_obs: torch.Tensor,
                            support: torch.Tensor) -> torch.Tensor:
    """Per-sample C51 loss with double-Q action selection (online picks a*, target evaluates it)."""
    log_p = online(obs, log=True)
    batch = torch.arange(obs.shape[0], device=obs.device)
    log_p_a = log_p[batch, action]
    with torch.no_grad():
        next_online = online(next_obs)
        best = (next_online * support).sum(2).argmax(1)
        target.reset_noise()
        next_target = target(next_obs)[batch, best]
        m = c51_project(next_target, returns, discount, support)
    return c51_loss(log_p_a, m)
