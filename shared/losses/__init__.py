"""Contrastive losses shared by every cvsuite app (each one an ``nn.Module``, see its docstring)."""
from ._checks import LossInputError, WhiteningError
from .adco import AdCoBank, AdCoLoss
from .byol import BYOLLoss
from .c51 import c51_loss, c51_project
from .curl import CURLLoss
from .hcl import HCLLoss
from .infonce import InfoNCE
from .instance_track import InstanceToTrackLoss
from .limb_heatmap import LimbHeatmapCE
from .mixture_elbo import MixtureELBO, bernoulli_log_prob, diag_gaussian_kl
from .moco import MoCoQueue
from .momentum import cosine_momentum, make_momentum_copy, momentum_update
from .ntxent import NTXentLoss
from .procrustes import ProcrustesMPJPE, procrustes_align
from .sr_contrastive import BidirectionalContrastiveLoss, ConditionalContrastiveLoss
from .ssim import SSIMLoss
from .sac import sac_actor_loss, sac_alpha_loss, sac_critic_loss, sac_target, squashed_gaussian_log_prob
from .supcon import SupConLoss
from .wmse import WMSELoss, whiten_blocks

__all__ = [
    "AdCoBank", "AdCoLoss", "BYOLLoss", "BidirectionalContrastiveLoss", "ConditionalContrastiveLoss", "CURLLoss", "HCLLoss", "InfoNCE", "InstanceToTrackLoss",
    "LimbHeatmapCE",
    "LossInputError", "MixtureELBO", "MoCoQueue", "NTXentLoss", "ProcrustesMPJPE", "SSIMLoss", "SupConLoss", "WMSELoss",
    "WhiteningError",
    "bernoulli_log_prob", "c51_loss", "c51_project", "diag_gaussian_kl", "sac_actor_loss", "sac_alpha_loss",
    "sac_critic_loss", "sac_target", "squashed_gaussian_log_prob", "cosine_momentum", "make_momentum_copy",
    "momentum_update", "procrustes_align", "whiten_blocks",
]
