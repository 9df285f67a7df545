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
