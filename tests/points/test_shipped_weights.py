"""The shipped points weights load through the manifest and do their job on a fresh synthetic shape."""
from __future__ import annotations

import numpy as np

from apps.points.cli import SHIPPED_ENCODER, SHIPPED_SEGMENTER
from apps.points.data import CATEGORY_INDEX, LoadedCloud, category_parts
from apps.points.evaluate import shape_iou
from apps.points.infer import segment
from apps.points.model import load_model
from apps.points.synth import make_shape
from shared.weights import shipped_weight


def test_shipped_segmenter_labels_a_new_table():
    net, kind, meta = load_model(shipped_weight(SHIPPED_SEGMENTER), want="segmenter")
    assert kind == "segmenter"
    pts, nrm, parts = make_shape("Table", np.random.default_rng(99), 512)
    result = segment(net, LoadedCloud(pts, nrm, False), [CATEGORY_INDEX["Table"]], 512, 1)
    labels, category = result.labels, result.category
    assert category == CATEGORY_INDEX["Table"] and set(labels.tolist()) <= set(category_parts(category))
    assert shape_iou(labels, parts, category_parts(category)) > 0.6


def test_shipped_encoder_gives_per_point_features():
    import torch

    encoder, kind, _ = load_model(shipped_weight(SHIPPED_ENCODER), want="encoder")
    point_feats, glob = encoder(torch.randn(1, 6, 128))
    assert kind == "encoder" and point_feats.shape[2] == 128 and torch.isfinite(point_feats).all()


def test_shipped_segmenter_warns_when_another_up_axis_reads_better(tmp_path, run_cli):
    """A z-up copy of a y-up synthetic shape, given without --up: the category head reads it better
    z-up, so one warning names --up z; the y-up original and an explicit --up get no such line."""
    pts, nrm, _ = make_shape("Mug", np.random.default_rng(5), 1024)
    to_z = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # y axis -> z axis
    src = tmp_path / "in"
    src.mkdir()
    np.savetxt(src / "mug_y.xyzn", np.concatenate([pts, nrm], 1))
    np.savetxt(src / "mug_z.xyzn", np.concatenate([pts @ to_z.T, nrm @ to_z.T], 1))
    common = ["--out", tmp_path / "out", "--points", "1024", "--render", "matplotlib"]
    code, _, err = run_cli(["points", "infer", src / "mug_z.xyzn", *common])
    assert code == 0, err
    warning = [line for line in err.splitlines() if "is the file" in line]
    assert len(warning) == 1 and "--up z" in warning[0] and "like Mug" in warning[0]
    import json

    record = json.loads((tmp_path / "out" / "mug_z.json").read_text())
    assert record["category_by_up_axis"]["z"]["category"] == "Mug"
    assert record["category_by_up_axis"]["z"]["probability"] > record["probability"]
    code, _, err = run_cli(["points", "infer", src / "mug_y.xyzn", *common])
    assert code == 0 and "is the file" not in err, err
    code, _, err = run_cli(["points", "infer", src / "mug_z.xyzn", "--up", "y", *common, "--force"])
    assert code == 0 and "is the file" not in err, err
