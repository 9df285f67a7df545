"""CRL-SR training objective: L1 + bidirectional + conditional contrastive terms (see README).

The contrastive losses live in :mod:`shared.losses.sr_contrastive`; this module only builds the
small embedding networks they compare and composes the weighted sum.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.losses.sr_contrastive import BidirectionalContrastiveLoss, ConditionalContrastiveLoss

from .model import ResBlock, conv3


def grid_pool(feats: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, C, h, w) → (B·grid², C): one vector per patch cell (the contrastive 'patches')."""
    pooled = F.adaptive_avg_pool2d(feats, grid)
    return pooled.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])


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
    """``L = L1(y, x_HR) + λ_bi·L_bi + λ_cond·L_cond`` (``contrastive=False``: ``L1`` only).

    During the contrastive warm-up (``warmup=True``) the L1 term is dropped; ``contrast_scale``
    multiplies both contrastive weights (a schedule).
    """

    def __init__(self, scale: int, width: int, invariant: int, contrastive: bool = True, embed_dim: int = 64,
                 temperature: float = 0.1, bidirectional_weight: float = 0.05, conditional_weight: float = 0.02,
                 grid: int = 2, gather_distributed: bool = True) -> None:
        super().__init__()
        self.contrastive, self.grid = contrastive, grid
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
        if not self.contrastive:
            terms["loss"] = l1
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
        terms["loss"] = contrast if warmup else l1 + contrast
        return terms
