"""Detail-aware patch sampling (data.detail_min / data.detail_tries): the detail measure against an explicit
formula, detail rising on a half-flat / half-textured photo, and the draw sequence unchanged when the option is off."""
from __future__ import annotations

import random

import numpy as np
import pytest

from apps.sr.data import SRTrainDataset, augment, luma_laplacian, quantize
from apps.sr.degradations import degrade
from apps.sr.train import SRConfig
from shared.errors import UsageError


def half_flat_photo(seed: int = 0) -> np.ndarray:
    """Left half a flat grey, right half random texture (uint8 RGB, 96 × 192)."""
    rng = np.random.default_rng(seed)
    flat = np.full((96, 96, 3), 120, np.uint8)
    texture = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    return np.concatenate([flat, texture], axis=1)


def explicit_luma_laplacian(img: np.ndarray) -> np.ndarray:
    """|4-neighbour Laplacian| of the BT.601 luma, written out (interior pixels only)."""
    rgb = img.astype(np.float64)
    grey = np.round(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1])
    return np.abs(lap)


def hr_detail(sample: dict) -> float:
    hr = (sample["hr"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    return float(luma_laplacian(hr).mean())


def test_luma_laplacian_matches_explicit_formula_and_is_zero_on_flat() -> None:
    img = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    np.testing.assert_allclose(luma_laplacian(img)[1:-1, 1:-1], explicit_luma_laplacian(img), atol=1e-3)
    assert luma_laplacian(np.full((16, 16, 3), 77, np.uint8)).max() == 0


@pytest.mark.parametrize("paired", [False, True])
def test_detail_option_raises_sampled_patch_detail(paired: bool) -> None:
    photo = half_flat_photo()
    lr = [photo[::4, ::4].copy()] if paired else None

    def mean_detail(**options: float) -> float:
        ds = SRTrainDataset([photo], 4, 32, length=40, lr_images=lr, **options)  # type: ignore[arg-type]
        random.seed(0)
        np.random.seed(0)
        return float(np.mean([hr_detail(ds[i]) for i in range(40)]))

    off, on = mean_detail(), mean_detail(detail_min=4.0, detail_tries=4)
    assert on > 1.3 * off  # about half of the plain crops are (mostly) flat; nearly none with the option


class PreOptionDataset(SRTrainDataset):
    """The crop code as it was before the option (one randint pair per patch), as the reference."""

    def _degraded(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        hr = self.hr[idx]
        size = self.patch + 2 * self.margin
        y = random.randint(0, hr.shape[0] - size)
        x = random.randint(0, hr.shape[1] - size)
        crop = augment([hr[y:y + size, x:x + size]], self.channel_shuffle)[0]
        kind = self.kinds[int(np.random.choice(len(self.kinds), p=self.kind_probs))]
        lr, _ = degrade(crop.astype(np.float32) / 255.0, self.scale, kind, cfg=self.degradation)
        m, ml = self.margin, self.margin // self.scale
        return crop[m:m + self.patch, m:m + self.patch], quantize(lr[ml:-ml, ml:-ml])


def test_option_off_keeps_the_draw_sequence_exactly() -> None:
    photos = [half_flat_photo(0), half_flat_photo(1)]
    samples = []
    for cls, options in ((PreOptionDataset, {}), (SRTrainDataset, {}),
                         (SRTrainDataset, {"detail_min": 0.0, "detail_tries": 8})):
        ds = cls(photos, 4, 32, length=12, channel_shuffle=True, **options)
        random.seed(5)
        np.random.seed(5)
        samples.append([ds[i] for i in range(12)] + [random.random(), float(np.random.random())])
    reference = samples[0]
    for other in samples[1:]:
        for a, b in zip(reference[:-2], other[:-2]):
            assert np.array_equal(a["hr"].numpy(), b["hr"].numpy()) and np.array_equal(a["lr"].numpy(), b["lr"].numpy())
        assert reference[-2:] == other[-2:]  # the RNG states after the draws agree too


def test_defaults_off_and_bad_values_refused() -> None:
    cfg = SRConfig()
    assert cfg.data.detail_min == 0.0 and cfg.data.detail_tries == 1
    with pytest.raises(UsageError):
        SRTrainDataset([half_flat_photo()], 4, 32, detail_min=-1.0)
    with pytest.raises(UsageError):
        SRTrainDataset([half_flat_photo()], 4, 32, detail_min=4.0, detail_tries=0)
