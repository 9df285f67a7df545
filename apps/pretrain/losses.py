"""The objective of each pretraining method, composed from ``shared.losses`` (no loss is defined here).

Two-view methods are symmetrised: each view is once the query and once the key.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shared.engine.distributed import get_world_size
from shared.losses import BYOLLoss, HCLLoss, InfoNCE, NTXentLoss, WMSELoss

METHODS = ("simclr", "moco", "wmse", "adco", "hcl", "byol")


@dataclass
class SimCLRConfig:
    temperature: float = 0.5


@dataclass
class MoCoConfig:
    temperature: float = 0.2
    queue_size: int = 1024
    momentum: float = 0.99  # key-encoder EMA


@dataclass
class WMSEConfig:
    num_views: int = 4
    w_size: int = 128
    w_iter: int = 1
    eps: float = 0.0
    loss_type: str = "norm_mse"  # norm_mse | mse


@dataclass
class HCLConfig:
    temperature: float = 0.5
    tau_plus: float = 0.1
    beta: float = 1.0


@dataclass
class AdCoConfig:
    temperature: float = 0.12  # encoder loss
    bank_size: int = 1024
    bank_temperature: float = 0.02  # tau_m of the bank's ascent step
    bank_lr: float = 3.0
    bank_momentum: float = 0.9
    bank_weight_decay: float = 1e-4
    momentum: float = 0.99  # key-encoder EMA


@dataclass
class BYOLConfig:
    base_momentum: float = 0.99  # target EMA, cosine-scheduled to 1


def simclr_loss(cfg: SimCLRConfig) -> nn.Module:
    return NTXentLoss(temperature=cfg.temperature, gather_distributed=get_world_size() > 1)


def hcl_loss(cfg: HCLConfig) -> nn.Module:
    return HCLLoss(temperature=cfg.temperature, tau_plus=cfg.tau_plus, beta=cfg.beta,
                   gather_distributed=get_world_size() > 1)


def wmse_loss(cfg: WMSEConfig) -> nn.Module:
    return WMSELoss(num_views=cfg.num_views, w_size=cfg.w_size, w_iter=cfg.w_iter, eps=cfg.eps,
                    loss_type=cfg.loss_type, gather_distributed=get_world_size() > 1)


def moco_loss(cfg: MoCoConfig) -> nn.Module:
    return InfoNCE(temperature=cfg.temperature)


def byol_loss() -> nn.Module:
    return BYOLLoss()


def symmetric_queue_loss(loss_fn: nn.Module, q: tuple[torch.Tensor, torch.Tensor],
                         k: tuple[torch.Tensor, torch.Tensor], negatives: torch.Tensor) -> torch.Tensor:
    """Mean of ``loss(q0, k1, negatives)`` and ``loss(q1, k0, negatives)`` (MoCo with a shared queue)."""
    return 0.5 * (loss_fn(q[0], k[1], negatives) + loss_fn(q[1], k[0], negatives))


def adco_parts(cfg: AdCoConfig, dim: int) -> tuple[nn.Module, nn.Module]:
    """The AdCo encoder loss and its adversarial negative bank (``(loss, bank)``)."""
    from shared.losses import AdCoBank, AdCoLoss

    bank = AdCoBank(dim, cfg.bank_size, temperature=cfg.bank_temperature, lr=cfg.bank_lr,
                    momentum=cfg.bank_momentum, weight_decay=cfg.bank_weight_decay)
    return AdCoLoss(temperature=cfg.temperature), bank
