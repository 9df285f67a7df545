"""HanCo and FreiHAND readers, and the renderer's projection (a joint lands where it is drawn)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from apps.hand.data import HanCo, FreiHAND, project, read_calib, read_xyz
from apps.hand.synth import SynthConfig, camera_rig, render
from shared.errors import CvsuiteError


def test_hanco_reader_round_trip(tiny_hanco):
    ds = HanCo(tiny_hanco)
    assert ds.sequences == ["0000", "0001"]
    assert ds.cameras["0000"] == list(range(8)) and ds.frames["0001"] == [0, 1, 2, 3]
    assert set(ds.variants) == {"rgb", "rgb_merged", "rgb_homo"}
    assert len(ds.samples()) == 2 * 4 * 8
    calib = ds.calib("0000", 1)
    assert calib.K.shape == (8, 3, 3) and calib.M.shape == (8, 4, 4)
    xyz = ds.xyz("0000", 1)
    assert xyz.shape == (21, 3)
    img, mask = ds.read_image("0000", 2, 1, "rgb_merged"), ds.read_mask("0000", 2, 1)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8 and mask.any() and not mask.all()
    assert ds.meta["is_train"][0] == [True] * 4
    assert "bone_lengths" in ds.shape("0001", 3)
    # keypoints project inside the image, in front of the camera, onto hand pixels
    for cam in range(8):
        view = ds.camera_view("0000", cam, 1)
        assert (view["xyz_cam"][:, 2] > 0.3).all()
        uv = np.round(view["uv"]).astype(int)
        assert ((uv >= 0) & (uv < 48)).all()
        assert ds.read_mask("0000", cam, 1)[uv[:, 1], uv[:, 0]].mean() > 0.9


def test_projection_lands_where_drawn():
    """A sphere rendered at a world point: its silhouette's centre is the point projected with K, M."""
    cfg = SynthConfig(size=96)
    K, M = camera_rig(cfg)
    rng = np.random.default_rng(0)
    for cam in range(8):
        point = rng.uniform(-0.04, 0.04, 3)
        _, mask, depth = render(point[None], np.array([0.006]), K[cam], M[cam], cfg.size, np.ones(3))
        vs, us = np.nonzero(mask)
        uv, cam_xyz = project(point[None], K[cam], M[cam])
        assert abs(us.mean() - uv[0, 0]) < 0.25 and abs(vs.mean() - uv[0, 1]) < 0.25
        ui, vi = np.round(uv[0]).astype(int)
        assert abs(depth[vi, ui] - (cam_xyz[0, 2] - 0.006)) < 1e-3  # front of the sphere
    # a nearer sphere hides a farther one (z-buffer)
    near, far = np.array([0.0, 0, 0]), np.array([0.0, 0, 0])
    centre = -M[0, :3, :3].T @ M[0, :3, 3]
    near = near + 0.1 * centre / np.linalg.norm(centre)
    _, mask, depth = render(np.stack([far, near]), np.array([0.01, 0.01]), K[0], M[0], 96, np.ones(3))
    assert abs(np.min(depth) - (np.linalg.norm(centre) - 0.1 - 0.01)) < 2e-3


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(CvsuiteError, match="calib.json: calib file not found"):
        read_calib(tmp_path / "calib.json")
    with pytest.raises(CvsuiteError, match=r"c1.json: calib has no 'K'"):
        read_calib(_write(tmp_path / "c1.json", {"M": np.eye(4)[None].tolist()}))
    with pytest.raises(CvsuiteError, match=r"c2.json: calib M has shape 1x3x3"):
        read_calib(_write(tmp_path / "c2.json", {"K": np.eye(3)[None].tolist(), "M": np.eye(3)[None].tolist()}))
    with pytest.raises(CvsuiteError, match=r"x.json: xyz has shape 20x3, expected 21 x 3"):
        read_xyz(_write(tmp_path / "x.json", np.zeros((20, 3)).tolist()))
    (tmp_path / "bad.json").write_text('{"K": [1,\n 2')
    with pytest.raises(CvsuiteError, match=r"bad.json:2: malformed JSON"):
        read_calib(tmp_path / "bad.json")


def test_freihand_reader(tmp_path):
    rng = np.random.default_rng(0)
    n = 3
    xyz = rng.normal(0, 0.03, (n, 21, 3)) + [0, 0, 0.6]
    K = np.tile(np.array([[500.0, 0, 112], [0, 500, 112], [0, 0, 1]]), (n, 1, 1))
    for split in ("training", "evaluation"):
        _write(tmp_path / f"{split}_xyz.json", xyz.tolist())
        _write(tmp_path / f"{split}_K.json", K.tolist())
        _write(tmp_path / f"{split}_scale.json", [0.04] * n)
        _write(tmp_path / f"{split}_verts.json", rng.normal(size=(n, 778, 3)).tolist())
    _write(tmp_path / "training_mano.json", rng.normal(size=(n, 1, 61)).tolist())
    tr = FreiHAND(tmp_path, "training")
    assert len(tr) == 3 and tr.mano().shape == (3, 61) and tr.verts().shape == (3, 778, 3)
    view = tr.view(4)  # image 4 of the 4 x N training images uses annotation 1
    assert np.allclose(view["xyz_cam"], xyz[1])
    assert np.allclose(view["uv"], xyz[1, :, :2] / xyz[1, :, 2:] * 500 + 112)
    ev = FreiHAND(tmp_path, "evaluation")
    assert ev.scale().shape == (3,)
    _write(tmp_path / "evaluation_K.json", K[:2].tolist())
    with pytest.raises(CvsuiteError, match="evaluation_K.json: 2 entries, but evaluation_xyz.json has 3"):
        FreiHAND(tmp_path, "evaluation").K()
    _write(tmp_path / "evaluation_xyz.json", np.zeros((3, 21, 2)).tolist())
    with pytest.raises(CvsuiteError, match="evaluation_xyz.json: xyz has shape 3x21x2"):
        FreiHAND(tmp_path, "evaluation").xyz()


def test_mixed_hanco_root_meta_drives_use(tiny_hanco, tmp_path):
    """A root as HanCo ships it: one green-screen sequence (all folders) and one recorded without green
    screen (rgb/ only); meta.json says which frames have a valid fit and which are training frames."""
    import shutil

    import numpy as np

    from apps.hand.train import HanCoImages, PairSampler, background_pool, open_labelled

    root = tmp_path / "hanco"
    shutil.copytree(tiny_hanco, root)
    for variant in ("rgb_merged", "rgb_homo", "mask_hand"):
        shutil.rmtree(root / variant / "0001")
    (root / "rgb_homo").rename(root / "rgb_homogeneous")       # the older folder name is read too
    meta = json.loads((root / "meta.json").read_text())
    meta["has_fit"][0][1] = False                                  # no valid fit: not a label
    meta["is_valid"][1][0] = False
    meta["is_train"][1] = [True, True, False, False]              # frames 2, 3 of 0001: evaluation split
    (root / "meta.json").write_text(json.dumps(meta))
    ds = HanCo(root)
    assert ds.sequences == ["0000", "0001"] and "rgb_homogeneous" in ds.variants
    # a missing variant falls back to rgb/ for the sequence without green screen
    assert ds.image_path("0001", 0, 0, "rgb_merged") == root / "rgb" / "0001" / "cam0" / "00000000.jpg"
    assert ds.image_path("0000", 0, 0, "rgb_homogeneous").parent.parent.parent.name == "rgb_homogeneous"
    assert ds.has_mask("0000") and not ds.has_mask("0001")
    train = open_labelled(root, 32)
    frames = {(s, f) for s, _, f in train.samples}
    assert frames == {("0000", 0), ("0000", 2), ("0000", 3), ("0001", 1)}
    evaluation = open_labelled(root, 32, split="eval")
    assert {(s, f) for s, _, f in evaluation.samples} == {("0001", 2), ("0001", 3)}
    # pretraining uses every image that exists; background swap only where there is a mask
    images = HanCoImages(ds, ds.sequences, 32, with_foreground=True)
    assert len(images.samples) == 2 * 4 * 8
    assert images.has_fg.sum() == 4 * 8 and not images.has_fg[[i for i, s in enumerate(images.samples) if s[0] == "0001"]].any()
    sampler = PairSampler(images, {"same": 1}, 1.0, background_pool(32, 4, 0))
    rng = np.random.default_rng(0)
    plain = images.samples.index(("0001", 3, 2))
    assert np.array_equal(sampler.image(plain, rng), images.images[plain])   # nothing to composite: unchanged


def test_one_view_per_pose_pool(tmp_path, run_cli):
    """``hand synth --cameras 1 --key-every 1``: every image is a new pose, read back by the HanCo reader; the
    same seed gives the same files, and a pool's sequences do not depend on how many are rendered (a pool can
    be rendered in parts or extended without repeating a pose)."""
    from apps.hand.synth import generate
    from apps.hand.train import open_labelled

    code, _, err = run_cli(["hand", "synth", "--out", tmp_path / "a", "--sequences", "3", "--frames", "3", "--size", "32",
                            "--key-every", "1", "--cameras", "1", "--seed", "5"])
    assert code == 0, err
    ds = HanCo(tmp_path / "a")
    assert ds.cameras["0000"] == [0] and len(ds.samples()) == 9
    images = open_labelled(tmp_path / "a", 32, with_foreground=True)
    assert len(images.samples) == 9 and images.has_fg.all()
    angles = np.stack([np.array(ds.shape(s, f)["angles"]).ravel() for s, _, f in ds.samples()])
    gaps = np.abs(angles[:, None] - angles[None]).max(-1) + np.eye(len(angles))
    assert gaps.min() > 0.05  # no two images share a pose (radians, the largest joint-angle difference)
    cfg = SynthConfig(size=32, frames=3, key_every=1, cameras=1)
    generate(tmp_path / "b", 2, 5, cfg)  # the same seed, fewer sequences: the same first two sequences
    generate(tmp_path / "c", 2, 6, cfg)  # another seed: other poses
    for sub in ("rgb/0001/cam0/00000002.jpg", "mask_hand/0000/cam0/00000001.jpg", "xyz/0001/00000000.json"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes()
    assert (tmp_path / "a/xyz/0001/00000000.json").read_bytes() != (tmp_path / "c/xyz/0001/00000000.json").read_bytes()
    code, _, err = run_cli(["hand", "synth", "--out", tmp_path / "d", "--cameras", "9"])
    assert code == 2 and err.startswith("cvsuite: error: --cameras") and not (tmp_path / "d").exists()
