"""The objective of each pretraining method, composed from ``shared.losses`` (no loss is defined here).

Two-view methods are symmetrised: each view is once the query and once the key.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shared.config import bounded
from shared.config import check_non_negative, check_positive
from shared.engine.distributed import get_world_size
from shared.errors import UsageError
from shared.losses import BYOLLoss, HCLLoss, InfoNCE, NTXentLoss, WMSELoss

METHODS = ("simclr", "moco", "wmse", "adco", "hcl", "byol")


def _unit_interval(section: str, cfg: object, *names: str) -> None:
    """UsageError unless every named field is in [0, 1] (EMA momenta)."""
    for name in names:
        value = getattr(cfg, name)
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"config key '{section}{name}' must be in [0, 1], got {value!r}")


@dataclass
class SimCLRConfig:
    temperature: float = bounded(0.5, gt=0.0, le=100.0)

    def __post_init__(self) -> None:
        check_positive("simclr.", self, "temperature")


@dataclass
class MoCoConfig:
    temperature: float = bounded(0.2, gt=0.0, le=100.0)
    queue_size: int = bounded(1024, ge=1, le=1_000_000)
    momentum: float = bounded(0.99, ge=0.0, le=1.0)  # key-encoder EMA

    def __post_init__(self) -> None:
        check_positive("moco.", self, "temperature", "queue_size")
        _unit_interval("moco.", self, "momentum")


@dataclass
class WMSEConfig:
    num_views: int = bounded(4, ge=2, le=64)
    w_size: int = bounded(128, ge=2, le=65536)
    w_iter: int = bounded(1, ge=1, le=100)
    eps: float = bounded(0.0, ge=0.0, le=1.0)
    loss_type: str = "norm_mse"  # norm_mse | mse

    def __post_init__(self) -> None:
        if self.num_views < 2 or self.w_size < 2 or self.w_iter < 1:
            raise UsageError(f"wmse needs num_views >= 2, w_size >= 2, w_iter >= 1; got {self.num_views}, "
                             f"{self.w_size}, {self.w_iter}")
        if not 0.0 <= self.eps < 1.0:
            raise UsageError(f"config key 'wmse.eps' must be in [0, 1), got {self.eps!r}")
        if self.loss_type not in ("norm_mse", "mse"):
            raise UsageError(f"config key 'wmse.loss_type' must be norm_mse or mse, got {self.loss_type!r}")


@dataclass
class HCLConfig:
    temperature: float = bounded(0.5, gt=0.0, le=100.0)
    tau_plus: float = bounded(0.1, ge=0.0, lt=1.0)
    beta: float = bounded(1.0, ge=0.0, le=100.0)

    def __post_init__(self) -> None:
        check_positive("hcl.", self, "temperature")
        check_non_negative("hcl.", self, "beta")
        if not 0.0 <= self.tau_plus < 1.0:
            raise UsageError(f"config key 'hcl.tau_plus' must be in [0, 1), got {self.tau_plus!r}")


@dataclass
class AdCoConfig:
    temperature: float = bounded(0.12, gt=0.0, le=100.0)  # encoder loss
    bank_size: int = bounded(1024, ge=1, le=1_000_000)
    bank_temperature: float = bounded(0.02, gt=0.0, le=100.0)  # tau_m of the bank's ascent step
    bank_lr: float = bounded(3.0, gt=0.0, le=10_000.0)
    bank_momentum: float = bounded(0.9, ge=0.0, le=1.0)
    bank_weight_decay: float = bounded(1e-4, ge=0.0, le=1.0)
    momentum: float = bounded(0.99, ge=0.0, le=1.0)  # key-encoder EMA

    def __post_init__(self) -> None:
        check_positive("adco.", self, "temperature", "bank_size", "bank_temperature", "bank_lr")
        check_non_negative("adco.", self, "bank_weight_decay")
        _unit_interval("adco.", self, "momentum", "bank_momentum")


@dataclass
class BYOLConfig:
    base_momentum: float = bounded(0.99, ge=0.0, le=1.0)  # target EMA, cosine-scheduled to 1

    def __post_init__(self) -> None:
        _unit_interval("byol.", self, "base_momentum")


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
