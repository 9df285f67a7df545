"""The positive-pair sampler: partner kinds (same / neighbouring camera / +-1 frame), mixing, background swap."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.hand.data import HanCo
from apps.hand.synth import SynthConfig, camera_rig
from apps.hand.train import (HanCoImages, PairSampler, PretrainPairs, augment, background_pool, neighbour_cameras,
                             parse_positives)
from shared.errors import UsageError


def test_parse_positives():
    assert parse_positives("a") == ({"same": 1.0, "view": 0.0, "time": 0.0}, 0.0)
    assert parse_positives("a+b") == ({"same": 1.0, "view": 0.0, "time": 0.0}, 1.0)
    assert parse_positives("a+b+c") == ({"same": 0.25, "view": 0.75, "time": 0.0}, 1.0)  # contra-hand's mix
    assert parse_positives("a+c+d") == ({"same": 0.25, "view": 0.375, "time": 0.375}, 0.0)
    assert parse_positives("c+d") == ({"same": 0.0, "view": 0.375, "time": 0.375}, 0.0)
    with pytest.raises(UsageError, match="letters a, b, c, d"):
        parse_positives("a+x")


def test_neighbours_share_a_cube_edge():
    _, M = camera_rig(SynthConfig())
    centres = np.stack([-m[:3, :3].T @ m[:3, 3] for m in M])
    dirs = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    for cam, near in neighbour_cameras(M).items():
        assert len(near) == 3 and cam not in near
        assert np.allclose(dirs[near] @ dirs[cam], 1 / 3)  # cube corners joined by an edge


@pytest.fixture(scope="module")
def images(tiny_hanco):
    ds = HanCo(tiny_hanco)
    return HanCoImages(ds, ds.sequences, 32, with_foreground=True)


def test_partner_kinds(images):
    rng = np.random.default_rng(0)
    view = PairSampler(images, {"view": 1}, 0.0)
    time_ = PairSampler(images, {"time": 1}, 0.0)
    same = PairSampler(images, {"same": 1}, 0.0)
    for i in range(0, len(images.samples), 5):
        seq, cam, frame = images.samples[i]
        j, kind = view.partner(i, rng)
        s2, c2, f2 = images.samples[j]
        assert kind == "view" and (s2, f2) == (seq, frame) and c2 in images.neighbours[seq][cam]
        j, kind = time_.partner(i, rng)
        s2, c2, f2 = images.samples[j]
        assert kind == "time" and (s2, c2) == (seq, cam) and abs(f2 - frame) == 1
        assert same.partner(i, rng) == (i, "same")


def test_mixing_follows_weights(images):
    sampler = PairSampler(images, {"same": 1, "view": 3}, 0.0)
    rng = np.random.default_rng(1)
    kinds = [sampler.partner(int(rng.integers(len(images.samples))), rng)[1] for _ in range(800)]
    assert 0.68 < kinds.count("view") / 800 < 0.82 and kinds.count("time") == 0


def test_background_swap_keeps_hand_changes_background(images):
    pool = background_pool(32, 4, seed=0)
    sampler = PairSampler(images, {"same": 1}, 1.0, pool)
    rng = np.random.default_rng(2)
    i = 9
    swapped = sampler.image(i, rng)
    inside, outside = images.alpha[i] > 0.999, images.alpha[i] < 0.001   # soft (eroded, smoothed) mask
    assert inside.any() and outside.any()
    assert (inside <= images.masks[i]).all() and (outside <= ~images.masks[i]).all()
    assert np.abs(swapped[inside].astype(int) - images.foreground[i][inside]).max() <= 1   # hand pixels kept
    assert any(np.abs(swapped[outside].astype(int) - bg[outside]).max() <= 1 for bg in pool)  # pool background
    assert np.abs(swapped[outside].astype(int) - images.images[i][outside]).mean() > 5
    # erosion: the soft mask is never wider than the hand mask read from disk, and it is smooth at the edge
    edge = (images.alpha[i] > 0.001) & (images.alpha[i] < 0.999)
    assert edge.any()
    plain = PairSampler(images, {"same": 1}, 0.0)
    assert np.array_equal(plain.image(i, rng), images.images[i])


def test_pretrain_pairs_are_augmented_views(images):
    np.random.seed(0)
    item = PretrainPairs(PairSampler(images, {"same": 1}, 0.0))[3]
    assert item["view1"].shape == (3, 32, 32) and item["view1"].dtype == torch.float32
    assert not torch.equal(item["view1"], item["view2"])  # two augmentations of one image
    x = augment(np.zeros((16, 16, 3), np.uint8))
    assert x.min() >= 0 and x.max() <= 1


def test_select_sequences():
    from apps.hand.train import select_sequences

    names = [f"{i:04d}" for i in range(6)]
    assert select_sequences(names, "") == names
    assert select_sequences(names, "1-3") == ["0001", "0002", "0003"]
    assert select_sequences(names, "0005, 0000,0005") == ["0005", "0000"]
    with pytest.raises(UsageError, match="no sequence '0009'"):
        select_sequences(names, "0009")


def test_shuffle_bn_keys_see_other_batch_mates():
    """Shuffle-BN on one device: the key of sample i is computed in a batch-norm group that is not the
    group of its query, and outputs come back in the input order."""
    from apps.hand.train import grouped_forward

    class GroupProbe(torch.nn.Module):
        """Returns, per sample, its own id and the sum of the ids in its forward group (a BN-like leak)."""

        def forward(self, x):
            ids = x[:, 0]
            return torch.stack([ids, ids.sum().expand_as(ids)], 1)

    n, groups = 32, 4
    x = torch.arange(n, dtype=torch.float32)[:, None]
    q = grouped_forward(GroupProbe(), x, groups)
    torch.manual_seed(0)
    k = grouped_forward(GroupProbe(), x, groups, torch.randperm(n))
    assert torch.equal(q[:, 0], x[:, 0]) and torch.equal(k[:, 0], x[:, 0])   # order restored
    assert (q[:, 1] != k[:, 1]).float().mean() > 0.9                          # different batch mates
    assert len(set(q[:, 1].tolist())) == groups                               # query: 4 groups of 8


def test_background_pool_from_a_user_folder(tmp_path):
    """--backgrounds DIR: crops come from the user's photos (here two flat colours), not the bundled ones."""
    from apps.hand.train import background_pool
    from shared.data.images import write_image
    from shared.errors import CvsuiteError

    write_image(tmp_path / "bg" / "red.png", np.full((40, 60, 3), (200, 10, 10), np.uint8))
    write_image(tmp_path / "bg" / "sub" / "blue.png", np.full((50, 30, 3), (10, 10, 200), np.uint8))
    pool = background_pool(16, 20, seed=0, folder=tmp_path / "bg")
    assert pool.shape == (20, 16, 16, 3)
    colours = {tuple(int(v) for v in crop.reshape(-1, 3).mean(0).round()) for crop in pool}
    assert colours == {(200, 10, 10), (10, 10, 200)}
    (tmp_path / "empty").mkdir()
    with pytest.raises(CvsuiteError, match="no images in this background folder"):
        background_pool(16, 2, 0, tmp_path / "empty")


def test_augment_sample_reports_the_map_applied_to_3d():
    """``info`` holds the 3x3 map the 3-D keypoints went through (roll, times the mirror when flipped) and the
    framing's zoom (the hand's 2-D extent scales by it about the rotation)."""
    from apps.hand.augment import augment_sample

    rng0 = np.random.default_rng(0)
    img = rng0.integers(0, 255, (48, 48, 3)).astype(np.uint8)
    uv = rng0.uniform(0.35, 0.65, (21, 2))
    xyz = rng0.normal(0, 1, (21, 3))
    dets = set()
    for seed in range(12):
        info: dict = {}
        _, new_uv, new_xyz = augment_sample(img, uv, xyz, np.random.default_rng(seed), img, img, mirror=0.5, info=info)
        assert np.allclose(new_xyz, xyz @ info["linear"].T, atol=1e-5)
        dets.add(round(float(np.linalg.det(info["linear"]))))
        spread = lambda p: np.linalg.norm(p - p.mean(0), axis=1).mean()  # noqa: E731
        if round(float(np.linalg.det(info["linear"]))) == 1 and info["scale"] != 1.0:
            assert spread(new_uv) == pytest.approx(info["scale"] * spread(uv), rel=1e-4)
    assert dets == {1, -1}


def test_augmented_labels_sit_on_the_warped_pixels():
    """Label transform = image warp: bright dots drawn at the keypoints stay under the moved keypoints through
    the framing (zoom, roll, shift) and the mirror, with and without a re-composited foreground."""
    from apps.hand.augment import augment_sample

    size = 64
    grid = np.stack(np.meshgrid(np.arange(3), np.arange(7)), -1).reshape(-1, 2)[:21]
    uv = (20 + grid * np.array([12, 4])) / size          # 21 points 12 / 4 px apart, pixel centres at integers
    img = np.zeros((size, size, 3), np.uint8)
    for u, v in np.round(uv * size).astype(int):
        img[v, u] = 255
    dark = np.zeros_like(img)
    for seed in range(20):
        fg, mask = (img, np.ones((size, size), np.float32)) if seed % 2 else (None, None)
        out, new_uv, _ = augment_sample(img, uv, np.zeros((21, 3)), np.random.default_rng(seed), dark, dark, fg, mask,
                                        mirror=0.5, parts=frozenset({"framing"}))
        p = new_uv * size                                # the dot is spread over <= 2x2 pixels by bilinear sampling
        lo = np.floor(p).astype(int)
        near = np.stack([out[lo[:, 1] + dy, lo[:, 0] + dx, 0] for dy in (0, 1) for dx in (0, 1)], 1).astype(float)
        assert (near.max(1) > 40).all(), seed           # every moved label lands on its dot


def test_augmentation_parts_switch_single_components():
    """``parts``: nothing applied leaves image and labels as they were; switching one appearance part off keeps
    every other part's random draws (the labels and the framing are unchanged)."""
    from apps.hand.augment import AUGMENT_PARTS, augment_sample

    rng0 = np.random.default_rng(1)
    img = rng0.integers(0, 255, (48, 48, 3)).astype(np.uint8)
    bg = rng0.integers(0, 255, (48, 48, 3)).astype(np.uint8)
    uv, xyz = rng0.uniform(0.35, 0.65, (21, 2)), rng0.normal(0, 1, (21, 3))
    same, same_uv, same_xyz = augment_sample(img, uv, xyz, np.random.default_rng(3), bg, bg, mirror=0.0, parts=frozenset())
    assert np.array_equal(same, img) and np.allclose(same_uv, uv) and np.allclose(same_xyz, xyz)
    full = augment_sample(img, uv, xyz, np.random.default_rng(3), bg, bg, mirror=0.0)
    assert not np.array_equal(full[0], img)
    for part in ("colour", "jpeg", "noise"):
        out, new_uv, new_xyz = augment_sample(img, uv, xyz, np.random.default_rng(3), bg, bg, mirror=0.0,
                                              parts=AUGMENT_PARTS - {part})
        assert np.allclose(new_uv, full[1]) and np.allclose(new_xyz, full[2])


def test_heatmap_targets_and_soft_argmax_share_one_grid():
    """The Gaussian heatmap target of a label has the label as its soft-argmax expectation (no half-cell
    offset between the loss's grid and the head's), for labels away from the crop border."""
    from apps.hand.losses import _HEATMAP_CE
    from apps.hand.model import soft_argmax

    uv = torch.from_numpy(np.random.default_rng(0).uniform(0.2, 0.8, (3, 21, 2))).float()
    for side in (16, 24, 32):
        target = _HEATMAP_CE.targets(uv, side, side)
        assert torch.allclose(soft_argmax(target), uv, atol=1e-4)
