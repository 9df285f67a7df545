"""End to end on tiny data: synth -> pretrain -> fine-tune -> eval/probe -> infer (labels, PLY, PNG, --parts)."""
from __future__ import annotations

import json

import numpy as np

TINY = ["points=64", "encoder.k=8", "encoder.width=4", "encoder.global_dim=8", "num_anchors=8", "patch_size=8",
        "num_negatives=4", "train.batch_size=4", "train.progress=false", "train.tensorboard=false"]


def test_end_to_end(tmp_path, run_cli):
    data = tmp_path / "data"
    code, out, err = run_cli(["points", "synth", "--out", data, "--layout", "txt", "--shapes", "15", "--points", "64"])
    assert code == 0, err
    sia = tmp_path / "sia"
    code, _, err = run_cli(["points", "train", "--mode", "siamese", "--data", data, "--out", sia, "--steps", "2", *TINY])
    assert code == 0, err
    enc = tmp_path / "pre"
    code, _, err = run_cli(["points", "train", "--mode", "pretrain", "--data", data, "--out", enc, "--steps", "2",
                            f"siamese_weights={sia / 'siamese.safetensors'}", *TINY])
    assert code == 0, err
    seg = tmp_path / "seg"
    code, _, err = run_cli(["points", "train", "--mode", "finetune", "--data", data, "--out", seg, "--steps", "2",
                            "--init", enc / "encoder.safetensors", "--label-fraction", "0.05", *TINY])
    assert code == 0, err
    from apps.points.model import read_metadata

    # the training cloud size travels with the weights (infer's default --points)
    assert read_metadata(seg / "segmenter.safetensors")["points"] == "64"
    assert read_metadata(enc / "encoder.safetensors")["points"] == "64"
    code, out, err = run_cli(["points", "eval", "--data", data, "--weights", seg / "segmenter.safetensors",
                              "--json", tmp_path / "eval.json"])
    assert code == 0, err
    result = json.loads((tmp_path / "eval.json").read_text())
    assert 0 <= result["class_miou"] <= 1 and result["shapes"] == 3
    code, out, err = run_cli(["points", "probe", "--data", data, "--weights", enc / "encoder.safetensors"])
    assert code == 0 and "accuracy" in out, err

    clouds = tmp_path / "clouds"
    clouds.mkdir()
    pts = np.random.default_rng(0).normal(size=(300, 3))
    np.savetxt(clouds / "blob.xyz", pts)
    import trimesh

    trimesh.creation.box().export(clouds / "box.obj")
    res = tmp_path / "res"
    args = ["points", "infer", clouds, "--out", res, "--weights", seg / "segmenter.safetensors", "--points", "64",
            "--max-chunks", "2", "--render", "matplotlib"]
    code, out, err = run_cli(args)
    assert code == 0, err
    labels = np.loadtxt(res / "blob_labels.txt", dtype=int)
    assert labels.shape == (300,)
    assert len(np.loadtxt(res / "box_labels.txt")) == 64  # mesh: --points samples
    import open3d as o3d

    ply = o3d.io.read_point_cloud(str(res / "blob.ply"))
    assert np.allclose(np.asarray(ply.points), pts, atol=1e-6) and ply.has_colors()
    assert (res / "blob.png").read_bytes()[:4] == b"\x89PNG"
    assert run_cli(args)[0] == 0  # re-running over our own outputs is fine
    (res / "blob_labels.txt").write_text("edited\n")
    code, _, err = run_cli(args)
    assert code == 2 and "--force" in err
    assert run_cli(args + ["--force"])[0] == 0
    code, out, err = run_cli(["points", "infer", clouds / "blob.xyz", "--out", tmp_path / "parts", "--parts", "3",
                              "--weights", enc / "encoder.safetensors", "--points", "64", "--render", "matplotlib"])
    assert code == 0, err
    assert set(np.loadtxt(tmp_path / "parts" / "blob_labels.txt", dtype=int)) <= {0, 1, 2}
