"""View generator and the kNN / probe evaluation, against explicit references."""
from __future__ import annotations

import numpy as np
import torch

from apps.pretrain.augment import AugmentConfig, MultiViewDataset, ViewGenerator, random_affine_theta, resolve, warp
from apps.pretrain.data import read_digits
from apps.pretrain.evaluate import evaluate_features, few_label_indices, knn_predict, linear_probe


def test_view_shapes_and_determinism():
    digits = read_digits("train")
    gen = ViewGenerator(AugmentConfig(preset="digits", size=16), num_views=4, mean=[0.3], std=[0.4])
    dataset = MultiViewDataset(digits, gen)
    torch.manual_seed(0)
    item = dataset[3]
    assert item["views"].shape == (4, 1, 16, 16) and int(item["index"]) == 3
    assert not torch.equal(item["views"][0], item["views"][1])  # views differ
    torch.manual_seed(0)
    torch.testing.assert_close(dataset[3]["views"], item["views"], rtol=0, atol=0)  # same seed, same views
    rgb = ViewGenerator(AugmentConfig(preset="natural", size=12), 2, [0.5] * 3, [0.25] * 3)
    assert rgb(torch.rand(3, 20, 30)).shape == (2, 3, 12, 12)


def test_plain_view_is_normalised_resize():
    image = torch.rand(1, 8, 8)
    gen = ViewGenerator(AugmentConfig(size=8), 2, [0.5], [0.25])
    torch.testing.assert_close(gen.plain(image), (image - 0.5) / 0.25)  # identity warp keeps pixels
    up = ViewGenerator(AugmentConfig(size=16), 2, [0.0], [1.0]).plain(image)
    ref = torch.nn.functional.interpolate(image[None], size=16, mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(up, ref)


def test_digits_never_flip_and_natural_does():
    def determinants(preset: str) -> list[float]:
        cfg = resolve(AugmentConfig(preset=preset))
        torch.manual_seed(1)
        return [float(np.linalg.det(random_affine_theta(cfg)[:, :2])) for _ in range(200)]

    assert min(determinants("digits")) > 0  # no reflections for digits
    natural = determinants("natural")
    assert min(natural) < 0 < max(natural)


def test_crop_warp_matches_explicit_crop():
    image = torch.arange(64.0).view(1, 8, 8)
    # top-left 4x4 quarter: width = height = 0.5, centre (-0.5, -0.5)
    theta = torch.tensor([[0.5, 0.0, -0.5], [0.0, 0.5, -0.5]])
    torch.testing.assert_close(warp(image, theta, 4), image[:, :4, :4])


def _knn_loop(train, labels, test, k, classes, temperature=0.07):
    out = []
    for q in test:
        sims = []
        for j, x in enumerate(train):
            cos = float(np.dot(q, x) / (np.linalg.norm(q) * np.linalg.norm(x)))
            sims.append((cos, j))
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * classes
        for cos, j in sims[:k]:
            votes[labels[j]] += np.exp(cos / temperature)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def test_knn_matches_explicit_loop():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 5)).astype(np.float32)
    labels = rng.integers(0, 4, size=60)
    test = rng.normal(size=(25, 5)).astype(np.float32)
    for k in (1, 5, 20):
        np.testing.assert_array_equal(knn_predict(train, labels, test, k, 4, chunk=7),
                                      _knn_loop(train, labels, test, k, 4))


def test_probes_on_separable_and_random_features():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=5.0, size=(3, 8))
    train_y = np.repeat(np.arange(3), 40)
    test_y = np.repeat(np.arange(3), 10)
    train_x = centres[train_y] + rng.normal(size=(120, 8))
    test_x = centres[test_y] + rng.normal(size=(30, 8))
    result = evaluate_features(train_x, train_y, test_x, test_y, per_class=10, seeds=(0, 1))
    assert result["knn5"] == 1.0 and result["linear"] == 1.0 and result["linear_10label"] == 1.0
    noise = linear_probe(rng.normal(size=(120, 8)), train_y, rng.normal(size=(300, 8)), np.repeat(np.arange(3), 100))
    assert noise < 0.5  # random features carry no label information


def test_few_label_indices():
    labels = np.repeat(np.arange(4), 25)
    a = few_label_indices(labels, 10, seed=0)
    assert len(a) == 40 and np.bincount(labels[a]).tolist() == [10] * 4
    np.testing.assert_array_equal(a, few_label_indices(labels, 10, seed=0))
    assert not np.array_equal(a, few_label_indices(labels, 10, seed=1))


def test_warp_equals_torch_affine_grid():
    torch.manual_seed(3)
    cfg = resolve(AugmentConfig(preset="natural", rotate_deg=20.0, shear_deg=10.0))
    image = torch.rand(3, 11, 9)
    for _ in range(5):
        theta = random_affine_theta(cfg)
        grid = torch.nn.functional.affine_grid(torch.from_numpy(theta)[None], [1, 3, 7, 7], align_corners=False)
        ref = torch.nn.functional.grid_sample(image[None], grid, padding_mode="border", align_corners=False)[0]
        torch.testing.assert_close(warp(image, theta, 7), ref)


def test_resize_equals_identity_warp():
    from apps.pretrain.augment import resize

    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for side, size in ((8, 16), (20, 12), (9, 9)):
        image = torch.rand(3, side, side)
        torch.testing.assert_close(resize(image, size), warp(image, identity, size))
