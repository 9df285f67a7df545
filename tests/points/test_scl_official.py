"""SCL as the official code: the Siamese patch net, the absolute threshold band (and its empty-band
guard), the dilated positive, and the paper-scale configs running 2 steps on stand-in data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from apps.points.scl import (SiamesePatchNet, dilated_patches, extract_patches, official_band, random_rotation,
                             sample_band_negatives, siamese_similarity)
from apps.points.synth import write_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "points" / "configs"


def test_official_band_schedule_and_its_empty_epochs():
    clock = 256
    at = lambda epoch: official_band((epoch + 0.5) / clock, clock)  # noqa: E731
    assert at(0) == (0.3, 1.0) and at(7) == (0.3, 1.0)
    assert at(8) == pytest.approx((0.32, 0.98)) and at(17) == pytest.approx((0.5, 0.8))
    assert at(28) == (0.5, 0.75) and at(255) == (0.5, 0.75)
    empty = [e for e in range(clock) if at(e)[0] >= at(e)[1]]
    assert empty == [25, 26, 27]  # the official schedule crosses over before its final band


def _explicit_band(sim: torch.Tensor, lo: float, hi: float) -> list[list[set[int]]]:
    b, m, _ = sim.shape
    return [[{j for j in range(m) if j != i and lo < sim[bb, i, j].item() < hi} for i in range(m)] for bb in range(b)]


def test_band_negatives_lie_strictly_inside_and_never_the_anchor():
    gen = torch.Generator().manual_seed(0)
    f = torch.nn.functional.normalize(torch.randn(2, 30, 4, generator=gen), dim=2)
    sim = f @ f.transpose(1, 2)
    neg, empty = sample_band_negatives(sim, (0.2, 0.7), 64, gen)
    allowed = _explicit_band(sim, 0.2, 0.7)
    for b in range(2):
        for i in range(30):
            if allowed[b][i]:
                assert not empty[b, i] and set(neg[b, i].tolist()) <= allowed[b][i]
            else:
                assert empty[b, i]
    assert not empty.all()


def test_empty_band_guard_takes_the_nearest_other_anchors():
    gen = torch.Generator().manual_seed(1)
    f = torch.nn.functional.normalize(torch.randn(1, 12, 3, generator=gen), dim=2)
    sim = f @ f.transpose(1, 2)
    neg, empty = sample_band_negatives(sim, (0.7, 0.6), 3, gen)  # w_l > w_u: the official epochs 25-27
    assert empty.all()
    for i in range(12):
        gap = [(max(0.6 - sim[0, i, j].item(), 0) + max(sim[0, i, j].item() - 0.7, 0), j) for j in range(12) if j != i]
        nearest = {j for _, j in sorted(gap)[:3]}
        assert set(neg[0, i].tolist()) <= nearest and i not in neg[0, i].tolist()


def test_dilated_patch_is_every_second_of_the_double_neighbourhood():
    xyz = torch.rand(2, 200, 3, generator=torch.Generator().manual_seed(2))
    anchors, patches = extract_patches(xyz, 5, 16)
    dil = dilated_patches(xyz, anchors, 16)
    assert dil.shape == patches.shape
    for b in range(2):
        for m in range(5):
            d = ((xyz[b] - xyz[b, anchors[b, m]]) ** 2).sum(1)
            order = torch.argsort(d)[:32]
            assert torch.equal(dil[b, m], order[::2])
            assert dil[b, m, 0] == anchors[b, m]  # the anchor's own point is its nearest


def test_rotation_is_proper_and_about_one_axis():
    for seed in range(5):
        rot = random_rotation(torch.Generator().manual_seed(seed))
        assert torch.allclose(rot @ rot.T, torch.eye(3), atol=1e-6) and abs(torch.det(rot).item() - 1) < 1e-6
        assert (rot == 1).any() or torch.allclose(rot, torch.eye(3))


def test_siamese_net_learns_rotated_copies_from_other_patches(tiny_sets):
    """A few dozen steps on the tiny set: the pair classifier separates (patch, rotated copy) from
    (patch, another anchor's patch) on held-out clouds, and the similarity matrix is a cosine matrix."""
    from apps.points.data import read_shapenetpart, shape_features
    from apps.points.train import PointsConfig, SiameseTask

    torch.manual_seed(0)
    cfg = PointsConfig(mode="siamese", num_anchors=8, patch_size=12)
    cfg.encoder.k = 8
    task = SiameseTask(cfg)
    opt = torch.optim.Adam(task.parameters(), lr=0.01)
    train = read_shapenetpart(tiny_sets["h5"], "train")
    x = torch.from_numpy(np.stack([shape_features(s.points, s.normals) for s in train]))
    for _ in range(40):
        out = task({"x": x})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    task.eval()
    test = read_shapenetpart(tiny_sets["h5"], "test")
    xt = torch.from_numpy(np.stack([shape_features(s.points, s.normals) for s in test]))
    with torch.no_grad():
        accs = [task({"x": xt})["pair_acc"].item() for _ in range(5)]
    assert np.mean(accs) > 0.7
    _, patches = extract_patches(xt[:, :3].transpose(1, 2).contiguous(), 8, 12)
    sim = siamese_similarity(task.net, xt, patches)
    assert torch.allclose(torch.diagonal(sim, dim1=1, dim2=2), torch.ones(len(test), 8), atol=1e-5)
    assert isinstance(task.net, SiamesePatchNet)


@pytest.mark.parametrize("name", ["paper_shapenetpart_siamese", "paper_shapenetpart_scl", "paper_shapenetpart_finetune"])
def test_paper_scale_configs_run_two_steps_on_stand_in_data(tmp_path, run_cli, name):
    data = tmp_path / "shapenet_part_seg_hdf5_data"
    write_dataset(data / "hdf5_data", "h5", 8, 0, 2048)          # the real layout, as unzipped
    args = ["points", "train", "--config", CONFIGS / f"{name}.yaml", "--data", data, "--steps", "2",
            "train.batch_size=2", "train.progress=false", "train.tensorboard=false", "train.ckpt_every=1000"]
    if name == "paper_shapenetpart_scl":
        code, _, err = run_cli(["points", "train", "--config", CONFIGS / "paper_shapenetpart_siamese.yaml",
                                "--data", data, "--steps", "1", "--out", tmp_path / "sia", "train.batch_size=2",
                                "train.progress=false", "train.tensorboard=false"])
        assert code == 0, err
        args.append(f"siamese_weights={tmp_path / 'sia' / 'siamese.safetensors'}")
    code, out, err = run_cli([*args, "--out", tmp_path / "run"])
    assert code == 0, err
    assert '"step": 2' in out
    if name == "paper_shapenetpart_finetune":  # the reference head's segmenter loads and labels a cloud
        from apps.points.data import LoadedCloud
        from apps.points.infer import segment
        from apps.points.model import ReferenceSegNet, load_model

        net, kind, meta = load_model(tmp_path / "run" / "segmenter.safetensors", want="segmenter")
        assert isinstance(net, ReferenceSegNet) and kind == "segmenter"
        pts = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
        result = segment(net, LoadedCloud(pts, np.tile([0, 1, 0], (300, 1)).astype(np.float32), False), [4], 2048, 1)
        assert result.labels.shape == (300,) and result.probability_source == "classifier"


def test_reference_head_layer_sizes():
    from apps.points.model import EncoderConfig, ReferenceSegNet

    net = ReferenceSegNet(EncoderConfig(k=20, width=64, global_dim=1024))
    assert net.head[0][0].in_channels == 1280 and net.label_conv[0].in_channels == 16
    assert [m[0].out_channels for m in net.head if isinstance(m, torch.nn.Sequential)] == [256, 256, 128]
    assert net.head[-1].out_channels == 50 and sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net.head) == 2
    assert [len(net.edge1), len(net.edge2)] == [2, 2]
    feats, glob = net.encode(torch.randn(2, 6, 64))
    assert feats.shape == (2, 1024 + 192, 64) and glob.shape == (2, 1024)
