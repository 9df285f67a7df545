"""CRL-SR training objective: L1 + bidirectional + conditional contrastive terms (+ optional SSIM term; README).

The contrastive losses live in :mod:`shared.losses.sr_contrastive` and the SSIM loss in
:mod:`shared.losses.ssim`; this module only builds the small embedding networks they compare, the
luma the SSIM term is computed on, and composes the weighted sum.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.losses.sr_contrastive import BidirectionalContrastiveLoss, ConditionalContrastiveLoss
from shared.losses.ssim import SSIMLoss

from .model import ResBlock, conv3


def grid_pool(feats: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, C, h, w) → (B·grid², C): one vector per patch cell (the contrastive 'patches')."""
    pooled = F.adaptive_avg_pool2d(feats, grid)
    return pooled.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])


# BT.601 luma of an RGB image in [0, 1], on [16, 235] / 255: the Y the benchmark's PSNR/SSIM are computed on
BT601_Y = (65.481 / 255, 128.553 / 255, 24.966 / 255)


def luma(img: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] → (B, 1, H, W) BT.601 Y in [0, 1] (basicsr's ``rgb2ycbcr(y_only=True)`` / 255)."""
    r, g, b = img.unbind(1)
    return (16 / 255 + BT601_Y[0] * r + BT601_Y[1] * g + BT601_Y[2] * b).unsqueeze(1)


def mlp(cin: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))


class HREncoder(nn.Module):
    """Features of an HR-resolution image on the LR grid (pixel-unshuffle + convs); training only."""

    def __init__(self, scale: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.PixelUnshuffle(scale), conv3(3 * scale * scale, width), nn.ReLU(inplace=True),
                                 ResBlock(width), conv3(width, width))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img - 0.5)


class CRLObjective(nn.Module):
    """``L = L1(y, x_HR) + λ_ssim·(1 − SSIM(Y(y), Y(x_HR))) + λ_bi·L_bi + λ_cond·L_cond``
    (``contrastive=False``: no contrastive terms; ``ssim_weight=0``, the default: no SSIM term).

    During the contrastive warm-up (``warmup=True``) the reconstruction terms are dropped;
    ``contrast_scale`` multiplies both contrastive weights (a schedule).
    """

    def __init__(self, scale: int, width: int, invariant: int, contrastive: bool = True, embed_dim: int = 64,
                 temperature: float = 0.1, bidirectional_weight: float = 0.05, conditional_weight: float = 0.02,
                 grid: int = 2, gather_distributed: bool = True, ssim_weight: float = 0.0) -> None:
        super().__init__()
        self.contrastive, self.grid = contrastive, grid
        self.w_ssim = ssim_weight
        if ssim_weight > 0:  # built only when used: the default objective is unchanged
            self.ssim = SSIMLoss()
        self.w_bi, self.w_cond = bidirectional_weight, conditional_weight
        if contrastive:
            self.hr_encoder = HREncoder(scale, width)
            self.proj_inv = mlp(invariant, embed_dim)
            self.proj_var = mlp(width - invariant, embed_dim)
            self.proj_hr = mlp(width, embed_dim)
            self.proj_out = mlp(width, embed_dim)
            # under DDP the negatives come from every rank (with gradients); no-op in one process
            self.bidirectional = BidirectionalContrastiveLoss(temperature, gather_distributed)
            self.conditional = ConditionalContrastiveLoss(embed_dim, invariant, temperature, gather_distributed)

    def forward(self, out: dict[str, torch.Tensor], hr: torch.Tensor, warmup: bool = False,
                contrast_scale: float = 1.0) -> dict[str, torch.Tensor]:
        l1 = F.l1_loss(out["sr"], hr)
        terms = {"l1": l1}
        recon = l1
        if self.w_ssim > 0:
            l_ssim = self.ssim(luma(out["sr"]), luma(hr))
            terms["ssim"] = l_ssim.detach()
            recon = l1 + self.w_ssim * l_ssim
        if not self.contrastive:
            terms["loss"] = recon
            return terms
        g = self.grid
        hr_feats = self.hr_encoder(hr)
        inv = grid_pool(out["invariant"], g)
        l_bi = self.bidirectional(self.proj_inv(inv), self.proj_hr(grid_pool(hr_feats, g)),
                                  self.proj_var(grid_pool(out["variant"], g)))

        def embed(img_feats: torch.Tensor) -> torch.Tensor:
            return self.proj_out(grid_pool(img_feats, g))

        negatives = torch.stack([embed(self.hr_encoder(out["coarse"].detach())),
                                 embed(self.hr_encoder(out["base"]))], dim=1)
        l_cond = self.conditional(embed(self.hr_encoder(out["sr"])), embed(hr_feats), negatives, inv)
        contrast = contrast_scale * (self.w_bi * l_bi + self.w_cond * l_cond)
        terms.update(bidirectional=l_bi.detach(), conditional=l_cond.detach())
        terms["loss"] = contrast if warmup else recon + contrast
        return terms
