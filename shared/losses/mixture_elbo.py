"""ELBO of a VAE with a categorical mixture prior, marginalised over the discrete variable y.

The model is ``p(y) p(z|y) p(x|z, y)`` with inference network ``q(y|x) q(z|x, y)``. Summing
over the ``K`` active components instead of sampling ``y`` gives, per sample,

    ELBO = Σ_k q(k|x) log p(x | z_k, k)  −  KL[q(y|x) ‖ p(y)]  −  Σ_k q(k|x) KL[q(z|x,k) ‖ p(z|k)]

with one reparameterised ``z_k ~ q(z|x,k)`` per component (CURL, Rao et al. 2019; also the
GMVAE family). The supervised variant, where ``y`` is known, indexes the true component:
``log p(x|z_y, y) + log q(y|x) − KL[q(z|x,y) ‖ p(z|y)]``.

Example::

    elbo = MixtureELBO()
    terms = elbo(qy_logits, log_px, kl_z)          # qy_logits (B,K); log_px, kl_z (K,B)
    loss = -terms["ll"].mean()
    sup = elbo.supervised(qy_logits, log_px, kl_z, y)  # y (B,) component indices
    kl = diag_gaussian_kl(mu_q, var_q, mu_p, var_p)    # (…, D) -> (…)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import LossInputError, check_float, full_precision


def diag_gaussian_kl(mu_q: torch.Tensor, var_q: torch.Tensor, mu_p: torch.Tensor,
                     var_p: torch.Tensor) -> torch.Tensor:
    """``KL[N(mu_q, var_q) ‖ N(mu_p, var_p)]`` of diagonal Gaussians, summed over the last dim."""
    return 0.5 * (torch.log(var_p) - torch.log(var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1.0).sum(-1)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log Bernoulli(x; sigmoid(logits))`` summed over the last dim (x in [0, 1])."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


class MixtureELBO(nn.Module):
    """Per-sample ELBO terms marginalised over ``K`` mixture components, uniform ``p(y)``.

    ``forward(qy_logits, log_px, kl_z)`` returns ``{"ll", "log_px", "kl_y", "kl_z", "qy"}`` (each
    ``(B,)`` except ``qy`` ``(B, K)``); ``ll`` is the ELBO (a lower bound on ``log p(x)``, nats).
    ``log_px[k, b] = log p(x_b | z_{k,b}, k)`` and ``kl_z[k, b] = KL[q(z|x_b,k) ‖ p(z|k)]``.
    """

    @staticmethod
    def _check(qy_logits: torch.Tensor, log_px: torch.Tensor, kl_z: torch.Tensor) -> None:
        for name, t in (("qy_logits", qy_logits), ("log_px", log_px), ("kl_z", kl_z)):
            check_float(name, "MixtureELBO", t)
            if t.dim() != 2:
                raise LossInputError(f"MixtureELBO: {name} must be 2-D, got shape {tuple(t.shape)}")
        batch, k = qy_logits.shape
        if log_px.shape != (k, batch) or kl_z.shape != (k, batch):
            raise LossInputError(f"MixtureELBO: log_px and kl_z must be (K, B) = ({k}, {batch}), got "
                                 f"{tuple(log_px.shape)} and {tuple(kl_z.shape)}")

    @full_precision
    def forward(self, qy_logits: torch.Tensor, log_px: torch.Tensor, kl_z: torch.Tensor) -> dict[str, torch.Tensor]:
        self._check(qy_logits, log_px, kl_z)
        log_qy = torch.log_softmax(qy_logits.float(), dim=1)
        qy = log_qy.exp()
        k = qy.shape[1]
        kl_y = (qy * (log_qy + math.log(k))).sum(1)  # KL[q(y|x) ‖ uniform over K]
        exp_log_px = (qy * log_px.float().t()).sum(1)
        exp_kl_z = (qy * kl_z.float().t()).sum(1)
        return {"ll": exp_log_px - kl_y - exp_kl_z, "log_px": exp_log_px, "kl_y": kl_y, "kl_z": exp_kl_z, "qy": qy}

    @full_precision
    def supervised(self, qy_logits: torch.Tensor, log_px: torch.Tensor, kl_z: torch.Tensor,
                   y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Terms with known components ``y`` (B,): ``kl_y`` is ``−log q(y|x)``."""
        self._check(qy_logits, log_px, kl_z)
        if y.dim() != 1 or y.shape[0] != qy_logits.shape[0] or y.dtype not in (torch.int64, torch.int32):
            raise LossInputError(f"MixtureELBO.supervised: y must be ({qy_logits.shape[0]},) integer indices")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= qy_logits.shape[1]):
            raise LossInputError(f"MixtureELBO.supervised: y must index the {qy_logits.shape[1]} components")
        y = y.long()
        cols = torch.arange(len(y), device=y.device)
        kl_y = F.cross_entropy(qy_logits.float(), y, reduction="none")
        lp = log_px.float()[y, cols]
        kz = kl_z.float()[y, cols]
        return {"ll": lp - kl_y - kz, "log_px": lp, "kl_y": kl_y, "kl_z": kz}
