"""The torchvision detector path: built without downloads, weights from a local file, ltwh person boxes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.mot.infer import TorchvisionDetector
from shared.errors import CvsuiteError, UsageError
from shared.weights import save_safetensors


def test_local_weights_detector_returns_person_boxes(tmp_path):
    import torchvision.models.detection as tvd

    torch.manual_seed(0)
    model = tvd.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=2)
    with torch.no_grad():  # make the box head call every proposal "person" (label 1) with high score
        model.roi_heads.box_predictor.cls_score.weight.zero_()
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-8.0, 8.0]))
    weights = tmp_path / "det.safetensors"
    save_safetensors(model.state_dict(), weights)
    detector = TorchvisionDetector("fasterrcnn_mobilenet_v3_large_320_fpn", weights, min_score=0.5)
    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes, scores = detector(frame)
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) == len(scores) > 0
    assert (scores >= 0.5).all()
    left, top, width, height = boxes.T
    assert (width > 0).all() and (height > 0).all()
    assert (left >= 0).all() and (top >= 0).all() and (left + width <= 320.01).all() and (top + height <= 240.01).all()


def test_detector_bad_name_and_mismatched_weights(tmp_path):
    save_safetensors({"foo": torch.zeros(3)}, tmp_path / "w.safetensors")
    with pytest.raises(UsageError, match="--detector must be one of"):
        TorchvisionDetector("yolo", tmp_path / "w.safetensors")
    with pytest.raises(CvsuiteError, match="w.safetensors"):
        TorchvisionDetector("fasterrcnn_mobilenet_v3_large_320_fpn", tmp_path / "w.safetensors")
