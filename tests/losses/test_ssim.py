"""SSIMLoss against an explicit per-window loop, scikit-image's SSIM and basicsr's (the SR metric)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared.losses import LossInputError, SSIMLoss


def _explicit_ssim(x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> float:
    """Mean SSIM of two 2-D arrays by a plain loop over every window that fits (weighted statistics)."""
    half = window // 2
    g = np.array([math.exp(-((i - half) ** 2) / (2 * sigma ** 2)) for i in range(window)])
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - window + 1):
        for j in range(x.shape[1] - window + 1):
            a, b = x[i:i + window, j:j + window], y[i:i + window, j:j + window]
            mu_a, mu_b = (w * a).sum(), (w * b).sum()
            var_a, var_b = (w * (a - mu_a) ** 2).sum(), (w * (b - mu_b) ** 2).sum()
            cov = (w * (a - mu_a) * (b - mu_b)).sum()
            values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_ssim_matches_explicit_loop_on_random_images() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, 2, 17, 19))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    got = 1 - SSIMLoss()(torch.from_numpy(x), torch.from_numpy(y)).item()
    want = np.mean([_explicit_ssim(x[b, c], y[b, c]) for b in range(2) for c in range(2)])
    assert abs(got - want) < 1e-10
    # another window / σ / data range
    got = 1 - SSIMLoss(window=7, sigma=1.0, data_range=255.0)(torch.from_numpy(255 * x), torch.from_numpy(255 * y)).item()
    want = np.mean([_explicit_ssim(255 * x[b, c], 255 * y[b, c], 7, 1.0, 255.0) for b in range(2) for c in range(2)])
    assert abs(got - want) < 1e-10


def test_ssim_matches_scikit_image_on_a_real_photo() -> None:
    from skimage import data
    from skimage.metrics import structural_similarity

    ref = data.camera()[100:228, 200:328].astype(np.float64) / 255
    noisy = np.clip(ref + 0.05 * np.random.default_rng(1).standard_normal(ref.shape), 0, 1)
    want = structural_similarity(noisy, ref, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    got = 1 - SSIMLoss()(torch.from_numpy(noisy)[None, None], torch.from_numpy(ref)[None, None]).item()
    assert abs(got - want) < 1e-9
    got32 = 1 - SSIMLoss()(torch.from_numpy(noisy).float()[None, None], torch.from_numpy(ref).float()[None, None]).item()
    assert abs(got32 - want) < 1e-5


def test_ssim_loss_properties_and_gradient() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 1, 14, 13, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 14, 13, dtype=torch.float64)
    loss = SSIMLoss()
    assert abs(loss(y, y).item()) < 1e-12            # identical images: SSIM 1
    assert loss(x, y).item() > 0.5                   # unrelated noise: far from 1
    assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,))
    half = loss(x.detach().half(), y.half())         # half inputs are upcast
    assert half.dtype == torch.float32 and abs(half.item() - loss(x, y).item()) < 1e-2


def test_ssim_loss_refuses_bad_input() -> None:
    loss = SSIMLoss()
    with pytest.raises(LossInputError, match="same shape"):
        loss(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17))
    with pytest.raises(LossInputError, match="at least 11"):
        loss(torch.rand(1, 1, 8, 16), torch.rand(1, 1, 8, 16))
    with pytest.raises(LossInputError, match="floating"):
        loss(torch.zeros(1, 1, 16, 16, dtype=torch.long), torch.zeros(1, 1, 16, 16, dtype=torch.long))
    with pytest.raises(LossInputError, match="odd"):
        SSIMLoss(window=10)
