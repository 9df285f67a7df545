"""Embedding training paths (full, partial, unlabelled, instance-to-instance) on tiny data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.mot.data import MOTSequence, list_sequences
from apps.mot.model import Embedder
from apps.mot.train import (MOTTrainConfig, _combine_partial, build_cropset, match_to_gt, parse_labels,
                            pseudo_labels, train)
from shared.errors import UsageError
from shared.weights import load_state_dict


def _cfg(root, out, labels="full", objective="i2t", steps=2) -> MOTTrainConfig:
    cfg = MOTTrainConfig(data=str(root), labels=labels, objective=objective, width=8, dim=16)
    cfg.train.out_dir, cfg.train.max_steps, cfg.train.batch_size = str(out), steps, 16
    cfg.train.progress = cfg.train.tensorboard = False
    cfg.train.ckpt_every = 1
    return cfg


def test_parse_labels():
    assert parse_labels("full") == ("full", 1.0) and parse_labels("none") == ("none", 0.0)
    assert parse_labels("partial:0.1") == ("partial", 0.1)
    assert parse_labels("partial-ids:0.5") == ("partial-ids", 0.5)
    for bad in ("partial:0", "partial:x", "half"):
        with pytest.raises(UsageError):
            parse_labels(bad)


def test_pseudo_labels_are_mostly_pure(tiny_root):
    """Confident motion-only associations agree with the ground truth they are meant to replace."""
    seqs = [MOTSequence.open(s) for s in list_sequences(tiny_root)]
    pseudo = np.concatenate([pseudo_labels(s) + 1000 * k for k, s in enumerate(seqs)])
    truth = np.concatenate([match_to_gt(s) for s in seqs])
    use = (pseudo >= 0) & (truth >= 0) & (pseudo % 1000 != 999)
    assert use.sum() > 20
    agree = sum(np.bincount(truth[use & (pseudo == p)]).max() for p in np.unique(pseudo[use]))
    assert agree / use.sum() > 0.9


def test_combine_partial_votes_gt_ids_onto_pseudo_tracks():
    gt = np.array([5, 5, 6, 6, -1, 7])
    frames = np.array([1, 2, 1, 2, 2, 3])
    pseudo = np.array([0, 0, 1, 1, 2, -1])
    labels, renamed = _combine_partial(gt, frames, pseudo, 0.34, np.random.default_rng(0))
    assert (labels >= 0).sum() <= 3
    lab_frames = set(frames[labels >= 0])
    assert len(lab_frames) == 1
    # pseudo track 0 and 1 take the gt id of their labelled member when one exists
    for p, g in ((0, 5), (1, 6)):
        members = pseudo == p
        if np.isin(frames[members], list(lab_frames)).any():
            assert (renamed[members] == g).all()
        else:
            assert (renamed[members] > 7).all()


@pytest.mark.parametrize("labels,objective", [("full", "i2t"), ("partial:0.25", "i2t"), ("partial-ids:0.5", "i2t"),
                                              ("none", "i2t"), ("full", "i2i")])
def test_training_paths(tiny_root, tmp_path, labels, objective):
    summary = train(_cfg(tiny_root, tmp_path / "run", labels, objective))
    assert summary["step"] == 2 and np.isfinite(summary["metrics"]["loss"])
    if labels == "none":
        assert summary["labelled"] == 0 and summary["pseudo"] > 0
    elif labels.startswith("partial"):
        assert 0 < summary["labelled"] < summary["detections"] and summary["pseudo"] > 0
    else:
        assert summary["labelled"] == summary["detections"]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)["model"]
    if objective == "i2t":  # the track bank is checkpointed and was filled by the EMA hook
        assert state["bank_seen"].any() and state["bank"].shape[0] == summary["tracks"]
    embedder = Embedder.from_file(tmp_path / "run" / "model.safetensors")
    seq = MOTSequence.open(list_sequences(tiny_root)[0])
    emb = embedder(seq.read_frame(1), seq.det().boxes[:3])
    assert emb.shape == (3, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert set(load_state_dict(tmp_path / "run" / "model.safetensors")) == set(embedder.net.state_dict())


def test_bank_resume_matches_uninterrupted(tiny_root, tmp_path):
    straight = train(_cfg(tiny_root, tmp_path / "a", steps=3))
    train(_cfg(tiny_root, tmp_path / "b", steps=2))
    cfg = _cfg(tiny_root, tmp_path / "b", steps=3)
    cfg.train.resume = True
    resumed = train(cfg)
    assert resumed["metrics"]["loss"] == pytest.approx(straight["metrics"]["loss"], rel=1e-5)
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=False)["model"]["bank"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)["model"]["bank"]
    torch.testing.assert_close(a, b)


def test_cropset_needs_gt_for_labels(tmp_path, tiny_root):
    import shutil

    from shared.errors import CvsuiteError

    shutil.copytree(list_sequences(tiny_root)[0], tmp_path / "S")
    (tmp_path / "S" / "gt" / "gt.txt").unlink()
    with pytest.raises(CvsuiteError, match="needs ground truth"):
        build_cropset(tmp_path, "full")
    assert (build_cropset(tmp_path, "none").labels == -1).all()


def test_train_cli(run_cli, tiny_root, tmp_path):
    code, out, err = run_cli(["mot", "train", "--data", tiny_root, "--labels", "partial:0.5", "--out", tmp_path / "r",
                              "--steps", "2", "width=8", "dim=16", "train.batch_size=8", "train.progress=false",
                              "train.tensorboard=false"])
    assert code == 0, err
    assert (tmp_path / "r" / "model.safetensors").is_file()
    code, _, err = run_cli(["mot", "train", "--data", tiny_root, "--labels", "some", "--out", tmp_path / "x"])
    assert code == 2 and "--labels" in err and len(err.strip().splitlines()) == 1


def test_i2i_baseline_is_label_aware():
    """Detections of the same track anywhere in the batch are positives of each other (multi-positive),
    checked against a written-out loop; NT-Xent (label-blind) would treat them as negatives."""
    from apps.mot.model import EmbeddingNet
    from apps.mot.train import InstanceToInstanceTask

    torch.manual_seed(0)
    net = EmbeddingNet(width=8, dim=16)
    task = InstanceToInstanceTask(net, temperature=0.1)
    crops = torch.randn(4, 3, 64, 32)
    crops2 = torch.randn(4, 3, 64, 32)
    labels = torch.tensor([5, 5, 7, -1])
    pseudo = torch.tensor([-1, -1, -1, 9])
    loss = task({"crop": crops, "crop2": crops2, "label": labels, "pseudo": pseudo})["loss"]
    with torch.no_grad():
        z = torch.nn.functional.normalize(net(torch.cat([crops, crops2])), dim=1)
    track = torch.tensor([5, 5, 7, 9, 5, 5, 7, 9])
    total, anchors = 0.0, 0
    for a in range(8):
        others = [j for j in range(8) if j != a]
        log_denom = torch.logsumexp(torch.stack([z[a] @ z[j] / 0.1 for j in others]), 0)
        pos = [j for j in others if track[j] == track[a]]
        total += -sum(z[a] @ z[p] / 0.1 - log_denom for p in pos) / len(pos)
        anchors += 1
    assert loss.item() == pytest.approx((total / anchors).item(), rel=1e-5)
