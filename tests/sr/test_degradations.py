"""Degradations: determinism, parameter ranges, and spatial variation that is really there."""
from __future__ import annotations

import random

import numpy as np
import pytest

from apps.sr.data import bundled_photo
from apps.sr.degradations import KINDS, DegradationConfig, degrade, kernel_covariance, mod_crop, random_kernel, seeded


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mod_crop(bundled_photo("astronaut")[100:228, 150:278], 4).astype(np.float32) / 255.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [2, 4])
def test_same_seed_same_output_and_global_rng_untouched(photo, kind, scale):
    np.random.seed(123)
    random.seed(123)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()
    lr1, meta1 = degrade(photo, scale, kind, seed=7)
    lr2, meta2 = degrade(photo, scale, kind, seed=7)
    assert lr1.shape == (photo.shape[0] // scale, photo.shape[1] // scale, 3)
    assert lr1.dtype == np.float32 and 0 <= lr1.min() and lr1.max() <= 1
    np.testing.assert_array_equal(lr1, lr2)
    assert meta1["info"] == meta2["info"]
    assert np.array_equal(np.random.get_state()[1], before_np) and random.getstate() == before_py
    if kind != "bicubic":
        lr3, _ = degrade(photo, scale, kind, seed=8)
        assert not np.array_equal(lr1, lr3)


def test_parameter_ranges_over_many_draws(photo):
    small = photo[:32, :32]
    cfg = DegradationConfig()
    seen_kernels, seen_noise = set(), set()
    for seed in range(60):
        lr, meta = degrade(small, 4, "blind", seed=seed, cfg=cfg)
        info = meta["info"]
        seen_kernels.add(info["kernel"])
        seen_noise.add(info["noise"])
        assert info["resize"] in cfg.resize_modes
        assert cfg.jpeg_quality[0] <= info["jpeg_quality"] <= cfg.jpeg_quality[1]
        if info["noise"] == "gaussian":
            assert cfg.noise_sigma[0] <= info["noise_level"] <= cfg.noise_sigma[1]
        else:
            assert cfg.poisson_scale[0] <= info["noise_level"] <= cfg.poisson_scale[1]
    assert {"iso", "aniso", "sinc"} <= seen_kernels and seen_noise == {"gaussian", "poisson"}
    for seed in range(30):
        _, meta = degrade(small, 4, "spatially-variant", seed=seed, cfg=cfg)
        level = meta["maps"]["noise_level"]
        assert cfg.noise_sigma[0] - 1e-4 <= level.min() and level.max() <= cfg.noise_sigma[1] + 1e-4
        assert 2 <= len(meta["info"]["kernels"]) <= 4 and "sinc" not in meta["info"]["kernels"]


def test_gaussian_kernels_width_matches_sigma():
    """Kernel maps are exact second moments: a basicsr iso Gaussian of σ has σ_major ≈ σ."""
    cfg = DegradationConfig(kernel_list=["iso"], kernel_prob=[1.0], sinc_prob=0.0, blur_sigma=(1.0, 2.5))
    for seed in range(10):
        with seeded(seed):
            kernel, kind = random_kernel(cfg)
        assert kind == "iso" and kernel.shape == (21, 21) and abs(kernel.sum() - 1) < 1e-5
        cov = kernel_covariance(kernel)
        assert abs(cov[0, 1]) < 1e-6 and abs(cov[0, 0] - cov[1, 1]) < 1e-6
        assert 0.9 <= np.sqrt(cov[0, 0]) <= 2.5 + 1e-6


def _block_means(a: np.ndarray, b: int) -> np.ndarray:
    h, w = a.shape[0] // b * b, a.shape[1] // b * b
    return a[:h, :w].reshape(h // b, b, w // b, b).mean(axis=(1, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spatially_variant_noise_follows_its_map(seed):
    flat = np.full((256, 256, 3), 0.5, np.float32)
    cfg = DegradationConfig(jpeg_prob=0.0, gray_noise_prob=0.0, noise_sigma=(2.0, 30.0))
    lr, meta = degrade(flat, 4, "spatially-variant", seed=seed, cfg=cfg)
    level = meta["maps"]["noise_level"]
    block = 8
    measured = np.sqrt(_block_means((lr - 0.5).var(axis=2) * 3 / 2, block)) * 255  # per-pixel channel spread
    expected = _block_means(level, block)
    assert expected.max() - expected.min() > 2.0, "the drawn noise map should vary across the image"
    assert np.corrcoef(measured.ravel(), expected.ravel())[0, 1] > 0.8
    assert 0.8 < np.median(measured / expected) < 1.2


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_spatially_variant_blur_follows_its_map(seed):
    rng = np.random.default_rng(seed)
    texture = np.repeat(rng.uniform(0, 1, (256, 256, 1)).astype(np.float32), 3, axis=2)
    cfg = DegradationConfig(noise_prob=0.0, jpeg_prob=0.0, kernel_list=["iso"], kernel_prob=[1.0],
                            sv_kernels=(3, 3), resize_modes=["area"], blur_sigma=(0.5, 3.0))
    lr, meta = degrade(texture, 2, "spatially-variant", seed=seed, cfg=cfg)
    width = _block_means(meta["maps"]["sigma_major"], 8)
    grey = lr[..., 0]
    detail = _block_means((grey - np.roll(grey, 1, axis=1)) ** 2, 8)  # local high-frequency energy
    assert width.max() - width.min() > 0.3
    assert np.corrcoef(width.ravel(), np.log(detail.ravel()))[0, 1] < -0.6
    # regions differ: sharpest vs blurriest quarter of the blocks
    order = np.argsort(width.ravel())
    q = len(order) // 4
    assert detail.ravel()[order[:q]].mean() > 1.5 * detail.ravel()[order[-q:]].mean()


def test_blind_maps_are_constant_and_bicubic_has_none(photo):
    _, meta = degrade(photo, 4, "blind", seed=1)
    for value in meta["maps"].values():
        assert np.ptp(value) == 0
    _, meta = degrade(photo, 4, "bicubic", seed=1)
    assert meta["maps"] == {}
