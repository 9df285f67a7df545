"""PSNR/SSIM on Y with border crop: basicsr's numbers, checked against explicit formulas on real photos."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from apps.sr.data import bundled_photo
from apps.sr.evaluate import bicubic_upscale, pairs_from_degradation, psnr_y, ssim_y


def reference_y(img: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr in [16, 235], from RGB uint8 (the convention of published SR tables)."""
    x = img.astype(np.float32) / 255.0
    y = ((x.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0).astype(np.float32)
    return y.astype(np.float64) * 255.0


def reference_psnr(a: np.ndarray, b: np.ndarray, crop: int) -> float:
    sl = slice(crop, -crop) if crop else slice(None)
    mse = np.mean((reference_y(a)[sl, sl] - reference_y(b)[sl, sl]) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def reference_ssim(a: np.ndarray, b: np.ndarray, crop: int) -> float:
    """Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, mean of the valid map."""
    sl = slice(crop, -crop) if crop else slice(None)
    x, y = reference_y(a)[sl, sl], reference_y(b)[sl, sl]
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def filt(img: np.ndarray) -> np.ndarray:
        h, w = img.shape
        out = np.empty((h - 10, w - 10))
        for i in range(h - 10):  # explicit valid correlation, row by row
            rows = np.lib.stride_tricks.sliding_window_view(img[i:i + 11], (11, 11))[0]
            out[i] = np.tensordot(rows, window, axes=([1, 2], [0, 1]))
        return out

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(ssim_map.mean())


@pytest.mark.parametrize("name,kind", [("chelsea", "blind"), ("camera", "spatially-variant"), ("coffee", "bicubic")])
def test_metrics_match_explicit_formulas_on_real_photos(name, kind):
    photo = bundled_photo(name)[:120, :150]
    pair = pairs_from_degradation([(name, photo)], 4, kind, seed=3)[0]
    sr = bicubic_upscale(pair.lr, 4)
    for crop in (0, 4):
        p, s = psnr_y(sr, pair.hr, crop), ssim_y(sr, pair.hr, crop)
        assert p == pytest.approx(reference_psnr(sr, pair.hr, crop), abs=1e-6)
        assert s == pytest.approx(reference_ssim(sr, pair.hr, crop), abs=1e-6)
        assert 10 < p < 45 and 0 < s < 1


def test_identity_and_shape_mismatch():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert psnr_y(a, a, 4) == float("inf") and ssim_y(a, a, 4) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert psnr_y(b, a, 4) == pytest.approx(reference_psnr(b, a, 4), abs=1e-6)
    from shared.errors import CvsuiteError

    with pytest.raises(CvsuiteError, match="shapes differ"):
        psnr_y(a, a[:-1], 4)
