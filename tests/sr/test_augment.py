"""Training augmentation: flips/transposes and the optional RGB permutation hit HR and LR alike."""
from __future__ import annotations

import random

import numpy as np

from apps.sr.data import SRTrainDataset, augment


def _one_channel_image(h: int, w: int, channel: int, seed: int = 0) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., channel] = np.random.default_rng(seed).integers(30, 220, (h, w), dtype=np.uint8)
    return img


def test_channel_shuffle_permutes_all_arrays_alike_and_covers_every_order() -> None:
    random.seed(0)
    base = np.arange(3, dtype=np.uint8)[None, None].repeat(4, 0).repeat(4, 1)  # pixel = (0, 1, 2)
    seen = set()
    for _ in range(200):
        a, b = augment([base, base.copy()], channel_shuffle=True)
        assert np.array_equal(a, b)
        seen.add(tuple(a[0, 0]))
    assert seen == {(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)}
    for _ in range(20):  # off: channel order is never touched
        assert tuple(augment([base], channel_shuffle=False)[0][0, 0]) == (0, 1, 2)


def test_channel_shuffle_keeps_degraded_lr_consistent_with_hr() -> None:
    """The permutation is applied to HR before degrading, so LR's non-empty channel is HR's."""
    hr = _one_channel_image(96, 96, channel=0)
    ds = SRTrainDataset([hr], scale=4, patch_size=32, kinds=["bicubic"], kind_probs=[1.0], length=4,
                        channel_shuffle=True)
    random.seed(1)
    np.random.seed(1)
    channels = set()
    for i in range(30):
        item = ds[i]
        hr_c = int(item["hr"].flatten(1).abs().sum(1).argmax())
        lr_sums = item["lr"].flatten(1).abs().sum(1)
        assert int(lr_sums.argmax()) == hr_c and float(lr_sums.sum() - lr_sums[hr_c]) == 0.0
        channels.add(hr_c)
    assert channels == {0, 1, 2}


def test_paired_patches_get_the_same_permutation() -> None:
    hr = _one_channel_image(64, 64, channel=2)
    lr = _one_channel_image(16, 16, channel=2, seed=1)
    ds = SRTrainDataset([hr], scale=4, patch_size=32, length=4, lr_images=[lr], channel_shuffle=True)
    random.seed(2)
    for i in range(20):
        item = ds[i]
        assert int(item["hr"].flatten(1).sum(1).argmax()) == int(item["lr"].flatten(1).sum(1).argmax())
