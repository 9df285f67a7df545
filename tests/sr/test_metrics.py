"""PSNR/SSIM on Y with border crop must equal basicsr's on real photos."""
from __future__ import annotations

import numpy as np
import pytest

import shared  # noqa: F401  (before basicsr)
from basicsr.metrics import calculate_psnr, calculate_ssim

from apps.sr.data import bundled_photo
from apps.sr.evaluate import bicubic_upscale, pairs_from_degradation, psnr_y, ssim_y


@pytest.mark.parametrize("name,kind", [("chelsea", "blind"), ("camera", "spatially-variant"), ("coffee", "bicubic")])
def test_equal_to_basicsr_on_real_photos(name, kind):
    photo = bundled_photo(name)[:200, :240]
    pair = pairs_from_degradation([(name, photo)], 4, kind, seed=3)[0]
    sr = bicubic_upscale(pair.lr, 4)
    for crop in (0, 4):
        ours_p, ours_s = psnr_y(sr, pair.hr, crop), ssim_y(sr, pair.hr, crop)
        # basicsr expects BGR for its Y conversion
        ref_p = calculate_psnr(sr[..., ::-1], pair.hr[..., ::-1], crop, test_y_channel=True)
        ref_s = calculate_ssim(sr[..., ::-1], pair.hr[..., ::-1], crop, test_y_channel=True)
        assert ours_p == pytest.approx(ref_p, abs=1e-9)
        assert ours_s == pytest.approx(ref_s, abs=1e-9)
        assert 10 < ours_p < 45 and 0 < ours_s < 1


def test_psnr_formula_and_identity():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert psnr_y(a, a, 4) == float("inf") and ssim_y(a, a, 4) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    y = lambda im: im[4:-4, 4:-4].astype(np.float64) @ [65.481, 128.553, 24.966] / 255 + 16  # noqa: E731
    mse = np.mean((y(a) - y(b)) ** 2)
    assert psnr_y(b, a, 4) == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-4)
