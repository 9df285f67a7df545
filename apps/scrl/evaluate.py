"""Box AP with the official COCO API: ``pycocotools.cocoeval.COCOeval`` (iouType ``bbox``).

AP = mean over IoU 0.50:0.95 and classes, AP50, AP75 exactly as pycocotools computes them
(``stats[0:3]``). Detections are written in the COCO results format (``image_id``,
``category_id``, ``bbox`` x, y, w, h, ``score``).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import torch
from torch import nn

from shared.errors import CvsuiteError
from shared.guard import write_atomic

from .data import DetectionSet, load_rgb


@torch.no_grad()
def predict(model: nn.Module, images: list[torch.Tensor], batch_size: int = 8) -> list[dict[str, torch.Tensor]]:
    """torchvision detector outputs (boxes x0y0x1y1, labels 1..K, scores) for float (3, H, W) images."""
    model.eval()
    outputs: list[dict[str, torch.Tensor]] = []
    for start in range(0, len(images), batch_size):
        outputs += [{k: v.cpu() for k, v in o.items()} for o in model(images[start:start + batch_size])]
    return outputs


def to_coco_results(outputs: list[dict[str, torch.Tensor]], image_ids: list[int], category_ids: list[int]) -> list[dict]:
    """COCO results-format detections."""
    results = []
    for image_id, out in zip(image_ids, outputs):
        for box, label, score in zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist()):
            results.append({"image_id": int(image_id), "category_id": int(category_ids[int(label) - 1]),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": float(score)})
    return results


def coco_ground_truth(dataset: DetectionSet):
    """pycocotools ``COCO`` object of the set (the json file itself for COCO input)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        if dataset.coco_json is not None:
            return COCO(str(dataset.coco_json))
        gt = COCO()
        gt.dataset = dataset.to_coco()
        gt.createIndex()
    return gt


def coco_box_ap(gt, results: list[dict], image_ids: list[int] | None = None) -> dict[str, float]:
    """COCOeval bbox: AP, AP50, AP75 (and APs/APm/APl) on ``image_ids`` (default: all)."""
    from pycocotools.cocoeval import COCOeval

    if not results:  # loadRes refuses an empty list; no detections = AP 0 by definition
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "APs": 0.0, "APm": 0.0, "APl": 0.0, "detections": 0}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iouType="bbox")
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [max(float(s), 0.0) for s in evaluator.stats]  # -1 = no ground truth of that size
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2], "APs": stats[3], "APm": stats[4],
            "APl": stats[5], "detections": len(results)}


def evaluate_detector(model: nn.Module, dataset: DetectionSet, results_path: str | Path | None = None
                      ) -> dict[str, float]:
    """Run ``model`` on every image of ``dataset`` and score it with COCOeval."""
    images = [torch.from_numpy(load_rgb(r.path)).permute(2, 0, 1).float() / 255.0 for r in dataset.records]
    image_ids = [r.image_id for r in dataset.records]
    results = to_coco_results(predict(model, images), image_ids, dataset.category_ids)
    if results_path is not None:
        write_atomic(results_path, json.dumps(results))
    if not dataset.records:
        raise CvsuiteError(f"{dataset.source}: no images to evaluate")
    return coco_box_ap(coco_ground_truth(dataset), results, image_ids)
