"""Box AP with the official COCO API: ``pycocotools.cocoeval.COCOeval`` (iouType ``bbox``).

AP = mean over IoU 0.50:0.95 and classes, AP50, AP75, APs/APm/APl exactly as pycocotools computes
them (``stats[0:6]``; -1 = "no ground truth of that size", kept as pycocotools writes it).
Detections are written in the COCO results format (``image_id``, ``category_id``, ``bbox`` x, y, w,
h, ``score``, plus ``category_name`` which pycocotools ignores).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.errors import CvsuiteError
from shared.guard import write_atomic

from .data import DetectionSet, load_rgb, read_json_file


@torch.no_grad()
def predict(model: nn.Module, images: list[torch.Tensor], batch_size: int = 8) -> list[dict[str, torch.Tensor]]:
    """torchvision detector outputs (boxes x0y0x1y1, labels 1..K, scores) for float (3, H, W) images."""
    model.eval()
    outputs: list[dict[str, torch.Tensor]] = []
    for start in range(0, len(images), batch_size):
        outputs += [{k: v.cpu() for k, v in o.items()} for o in model(images[start:start + batch_size])]
    return outputs


STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def to_coco_results(outputs: list[dict[str, torch.Tensor]], image_ids: list[int], category_ids: list[int],
                    class_names: list[str] | None = None) -> list[dict]:
    """COCO results-format detections (with ``category_name`` when ``class_names`` is given)."""
    results = []
    for image_id, out in zip(image_ids, outputs):
        for box, label, score in zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist()):
            entry = {"image_id": int(image_id), "category_id": int(category_ids[int(label) - 1]),
                     "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": float(score)}
            if class_names is not None:
                entry["category_name"] = class_names[int(label) - 1]
            results.append(entry)
    return results


def read_results(path: str | Path, gt) -> list[dict]:
    """A COCO results json (list of ``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``),
    validated against the ground truth ``gt``; errors name the file and the entry index."""
    path = Path(path)
    data = read_json_file(path, "a COCO results json")
    if not isinstance(data, list):
        raise CvsuiteError(f"{path}: not a COCO results json (expected a list of detections)")
    image_ids, category_ids = set(gt.getImgIds()), set(gt.getCatIds())
    results = []
    for index, entry in enumerate(data):
        where = f"{path}: detection {index}"
        try:
            image_id, category_id = int(entry["image_id"]), int(entry["category_id"])
            score = float(entry["score"])
            bbox = entry["bbox"]
            if isinstance(bbox, (str, bytes)) or len(bbox) != 4:
                raise ValueError("bbox")
            box = [float(v) for v in bbox]
        except (KeyError, TypeError, ValueError) as exc:
            raise CvsuiteError(f"{where}: needs image_id, category_id, score and bbox [x, y, w, h] "
                               f"({type(exc).__name__}: {exc})") from None
        if not np.isfinite([score, *box]).all() or box[2] < 0 or box[3] < 0:
            raise CvsuiteError(f"{where}: bbox {bbox} / score {score} not finite or negative size")
        if image_id not in image_ids:
            raise CvsuiteError(f"{where}: image_id {image_id} is not in the ground truth")
        if category_id not in category_ids:
            raise CvsuiteError(f"{where}: category_id {category_id} is not in the ground truth")
        results.append({"image_id": image_id, "category_id": category_id, "bbox": box, "score": score})
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
    """COCOeval bbox: AP, AP50, AP75, APs/APm/APl on ``image_ids`` (default: all), as pycocotools'
    ``stats`` (-1 where there is no ground truth of that size)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes refuses an empty list: an empty detection set scored by the same COCOeval
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset.get("images", [])), "annotations": [],
                          "categories": list(gt.dataset.get("categories", []))}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, iouType="bbox")
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics: dict[str, float] = {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats[:6])}
    metrics["detections"] = len(results)
    return metrics


def evaluate_detector(model: nn.Module, dataset: DetectionSet, results_path: str | Path | None = None
                      ) -> dict[str, float]:
    """Run ``model`` on every image of ``dataset`` and score it with COCOeval."""
    if not dataset.records:
        raise CvsuiteError(f"{dataset.source}: no images to evaluate")
    images = [torch.from_numpy(load_rgb(r.path)).permute(2, 0, 1).float() / 255.0 for r in dataset.records]
    image_ids = [r.image_id for r in dataset.records]
    results = to_coco_results(predict(model, images), image_ids, dataset.category_ids, dataset.class_names)
    if results_path is not None:
        write_atomic(results_path, json.dumps(results))
    return coco_box_ap(coco_ground_truth(dataset), results, image_ids)
