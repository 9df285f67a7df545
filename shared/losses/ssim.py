"""Structural-similarity loss ``1 − SSIM`` (Wang et al. 2004), differentiable, for image restoration.

Example::

    loss_fn = SSIMLoss()                        # 11×11 Gaussian window, σ 1.5, images in [0, 1]
    loss = F.l1_loss(sr, hr) + 0.2 * loss_fn(sr_y, hr_y)   # sr_y, hr_y: (B, 1, H, W) luma

Per channel and local window (Gaussian weights ``w``, σ ``sigma``, ``window`` taps, truncated and
normalised to sum 1)::

    μ_x = w * x,  σ_x² = w * x² − μ_x²,  σ_xy = w * (x y) − μ_x μ_y
    SSIM = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)),
    C1 = (0.01 L)², C2 = (0.03 L)²,  L = ``data_range``

evaluated only where the window lies inside the image ("valid"), averaged over positions, channels
and batch; the loss is ``1 − mean SSIM``. These are the conventions of the common SSIM tables
(basicsr's ``calculate_ssim``, scikit-image's ``structural_similarity(gaussian_weights=True,
use_sample_covariance=False)``), so the loss is exactly one minus the metric users report.
Why a loss: an L1 network facing an ambiguous input (fine texture as weak as the noise) settles on
a flat local mean; SSIM's contrast/structure terms penalise the lost local variance and correlation
directly, which L1 does not.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import LossInputError, check_float


def gaussian_window(window: int, sigma: float) -> torch.Tensor:
    """1-D Gaussian taps (``window`` of them, centred, summing to 1), float64."""
    half = (window - 1) / 2
    taps = torch.tensor([math.exp(-((i - half) ** 2) / (2 * sigma * sigma)) for i in range(window)],
                        dtype=torch.float64)
    return taps / taps.sum()


class SSIMLoss(nn.Module):
    """``1 − mean SSIM`` of two (B, C, H, W) image batches (see the module docstring)."""

    def __init__(self, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise LossInputError(f"SSIMLoss: window must be a positive odd number, got {window}")
        if not sigma > 0 or not data_range > 0:
            raise LossInputError(f"SSIMLoss: sigma and data_range must be > 0, got {sigma}, {data_range}")
        self.window = window
        self.c1, self.c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        self.register_buffer("taps", gaussian_window(window, sigma), persistent=False)  # float64, cast per call

    def _blur(self, t: torch.Tensor) -> torch.Tensor:
        """Separable valid Gaussian filtering of every channel of ``t`` (N, C, H, W)."""
        c = t.shape[1]
        taps = self.taps.to(t.dtype)
        t = F.conv2d(t, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        return F.conv2d(t, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)

    def ssim_map(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """SSIM per channel and valid window position: (B, C, H − window + 1, W − window + 1)."""
        for name, t in (("x", x), ("y", y)):
            check_float(name, "SSIMLoss", t)
            if t.dim() != 4:
                raise LossInputError(f"SSIMLoss: {name} must have shape (B, C, H, W), got {tuple(t.shape)}")
        if x.shape != y.shape:
            raise LossInputError(f"SSIMLoss: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        if min(x.shape[-2:]) < self.window:
            raise LossInputError(f"SSIMLoss: images must be at least {self.window} px on each side, got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            if x.dtype in (torch.float16, torch.bfloat16):  # half inputs are upcast; float64 stays float64
                x, y = x.float(), y.float()
            y = y.to(x.dtype)
            b, c = x.shape[:2]
            stats = self._blur(torch.cat([x, y, x * x, y * y, x * y], dim=1))
            mu_x, mu_y, xx, yy, xy = stats.split(c, dim=1)
            var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
            num = (2 * mu_x * mu_y + self.c1) * (2 * cov + self.c2)
            den = (mu_x ** 2 + mu_y ** 2 + self.c1) * (var_x + var_y + self.c2)
            return num / den

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.ssim_map(x, y).mean()
