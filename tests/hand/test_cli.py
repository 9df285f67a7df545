"""End to end through the CLI on tiny data: pretrain -> train -> infer; synth FreiHAND -> predict -> eval."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from apps.hand.model import absolute_xyz


def test_absolute_xyz_recovers_root():
    rng = np.random.default_rng(0)
    K = np.array([[300.0, 0, 60], [0, 310, 64], [0, 0, 1]])
    rel = rng.normal(0, 0.03, (21, 3))
    rel -= rel[0]
    root = np.array([0.05, -0.02, 0.55])
    cam = rel + root
    uv = cam[:, :2] / cam[:, 2:] * [300, 310] + [60, 64]
    assert np.allclose(absolute_xyz(uv, rel, K), cam, atol=1e-9)


def test_cli_pipeline(tiny_hanco, tmp_path, run_cli):
    common = ["image_size=32", "train.batch_size=8", "train.progress=false", "num_threads=1"]
    code, out, err = run_cli(["hand", "pretrain", "--data", tiny_hanco, "--out", tmp_path / "pre", "--steps", "2",
                              "queue_size=64", *common])
    assert code == 0, err
    code, out, err = run_cli(["hand", "train", "--data", tiny_hanco, "--init", tmp_path / "pre" / "model.safetensors",
                              "--labels", "0.2", "--out", tmp_path / "ft", "--steps", "2", "lifter_steps=5", *common])
    assert code == 0, err
    weights = tmp_path / "ft" / "model.safetensors"
    img = tiny_hanco / "rgb_merged" / "0000" / "cam1" / "00000002.jpg"
    code, out, err = run_cli(["hand", "infer", img, "--out", tmp_path / "inf", "--weights", weights])
    assert code == 0, err
    record = json.loads((tmp_path / "inf" / "00000002.json").read_text())
    assert np.array(record["uv_px"]).shape == (21, 2) and (tmp_path / "inf" / "00000002_skeleton.png").is_file()
    # a re-run may overwrite its own outputs; a foreign file needs --force
    assert run_cli(["hand", "infer", img, "--out", tmp_path / "inf", "--weights", weights])[0] == 0
    (tmp_path / "inf" / "00000002.json").write_text("mine")
    code, _, err = run_cli(["hand", "infer", img, "--out", tmp_path / "inf", "--weights", weights])
    assert code == 2 and "--force" in err
    # the pretrained encoder is not a regressor
    code, _, err = run_cli(["hand", "infer", img, "--out", tmp_path / "inf2", "--weights", tmp_path / "pre" / "model.safetensors"])
    assert code == 1 and "no keypoint head" in err
    # FreiHAND protocol on a synthetic evaluation split
    code, _, err = run_cli(["hand", "synth", "--out", tmp_path / "fh", "--sequences", "1", "--frames", "2",
                            "--size", "32", "--layout", "freihand"])
    assert code == 0, err
    code, _, err = run_cli(["hand", "predict", "--data", tmp_path / "fh", "--out", tmp_path / "pred.json", "--weights", weights])
    assert code == 0, err
    pred = json.loads((tmp_path / "pred.json").read_text())
    assert len(pred) == 2 and len(pred[0]) == 16 and np.array(pred[0][0]).shape == (21, 3)
    code, out, err = run_cli(["hand", "eval", "--gt", tmp_path / "fh", "--pred", tmp_path / "pred.json",
                              "--json", tmp_path / "scores.json", "--txt", tmp_path / "scores.txt"])
    assert code == 0, err
    scores = json.loads((tmp_path / "scores.json").read_text())
    txt = (tmp_path / "scores.txt").read_text().splitlines()
    assert len(txt) == 12 and txt[0].startswith("xyz_mean3d: ") and txt[-1].startswith("f_al_score_15: ")
    for key in ("xyz_mean3d", "xyz_auc3d", "xyz_al_mean3d", "xyz_al_auc3d", "mesh_mean3d", "f_score_5", "f_al_score_15"):
        assert key in scores and f"{key}:" in out
    assert (tmp_path / "scores_pck.png").stat().st_size > 1000
    # continuing a `hand train` result (--init): every tensor is loaded (encoder, head, lifter), none re-drawn
    code, _, err = run_cli(["hand", "train", "--data", tiny_hanco, "--init", weights, "--out", tmp_path / "cont",
                            "--steps", "1", "train.lr=1e-9", "lifter_steps=5", *common])
    assert code == 0, err
    from shared.weights import load_state_dict

    before, after = load_state_dict(weights), load_state_dict(tmp_path / "cont" / "model.safetensors")
    assert before.keys() == after.keys() and any(k.startswith("lifter.") for k in before)
    for key in before:
        if "running_" not in key and "num_batches" not in key:  # batch-norm statistics move in training mode
            assert torch.allclose(before[key], after[key], atol=1e-5), key


@pytest.mark.parametrize("head", ["heatmap", "pooled", "spatial"])
def test_regressor_round_trip(tmp_path, head):
    """Weights + metadata written by training load back into the same architecture and outputs."""
    import torch

    from apps.hand.model import KeypointNet
    from shared.weights import save_safetensors

    torch.manual_seed(0)
    net = KeypointNet(head=head).eval()
    save_safetensors(net.export_state_dict(), tmp_path / "w.safetensors", metadata={**net.arch, "image_size": "64"})
    loaded, meta = KeypointNet.from_file(tmp_path / "w.safetensors")
    x = torch.rand(2, 3, 64, 64)
    assert meta["head"] == head and torch.allclose(net(x)["uv"], loaded(x)["uv"]) and torch.allclose(net(x)["xyz"], loaded(x)["xyz"])
    assert torch.allclose(loaded(x)["xyz"][:, 0], torch.zeros(2, 3))  # root-relative by construction


def test_train_on_freihand_layout(tmp_path, run_cli):
    """`hand train --data FREIHAND_ROOT` fine-tunes on the training split (training/rgb + training_*.json)."""
    import shutil

    assert run_cli(["hand", "synth", "--out", tmp_path / "src", "--sequences", "1", "--frames", "2", "--size", "32",
                    "--layout", "freihand"])[0] == 0
    root = tmp_path / "fh"
    shutil.copytree(tmp_path / "src" / "evaluation" / "rgb", root / "training" / "rgb")
    for kind in ("xyz", "K", "scale", "verts"):
        shutil.copy(tmp_path / "src" / f"evaluation_{kind}.json", root / f"training_{kind}.json")
    code, out, err = run_cli(["hand", "train", "--data", root, "--out", tmp_path / "run", "--steps", "1",
                              "image_size=32", "train.batch_size=4", "train.progress=false", "num_threads=1", "lifter_steps=5"])
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["labelled_images"] == 16

