"""Box AP is pycocotools' COCOeval, called on our results exactly as one would by hand."""
from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from apps.scrl.data import read_coco
from apps.scrl.evaluate import coco_box_ap, coco_ground_truth


def _perturbed_results(gt: COCO, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt.dataset["annotations"]:
        x, y, w, h = ann["bbox"]
        if rng.random() < 0.2:
            continue  # a miss
        jitter = rng.normal(0, 2.0, 4)
        cat = ann["category_id"] if rng.random() < 0.85 else 1 + (ann["category_id"] % 4)
        results.append({"image_id": ann["image_id"], "category_id": cat, "score": float(rng.random()),
                        "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]})
    results.append({"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [0.0, 0.0, 10.0, 10.0]})  # false positive
    return results


def test_matches_direct_cocoeval(tiny_coco):
    gt = coco_ground_truth(read_coco(tiny_coco))
    results = _perturbed_results(gt, 0)
    ours = coco_box_ap(gt, results)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = COCO(str(tiny_coco))
        evaluator = COCOeval(reference, reference.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert (ours["AP"], ours["AP50"], ours["AP75"]) == tuple(float(s) for s in evaluator.stats[:3])
    assert 0.1 < ours["AP"] < 0.95


def test_perfect_and_empty(tiny_coco):
    gt = coco_ground_truth(read_coco(tiny_coco))
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt.dataset["annotations"]]
    assert coco_box_ap(gt, perfect)["AP"] == 1.0
    assert coco_box_ap(gt, [])["AP"] == 0.0
