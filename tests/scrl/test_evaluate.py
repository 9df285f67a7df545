"""Box AP is pycocotools' COCOeval, called on our results exactly as one would by hand."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
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


def test_size_ranges_without_ground_truth_stay_minus_one(tiny_coco):
    """pycocotools writes -1 for 'no ground truth of that size'; it must not become a 0.0 (= total failure)."""
    gt = coco_ground_truth(read_coco(tiny_coco))
    areas = [a["area"] for a in gt.dataset["annotations"]]
    assert max(areas) < 96 ** 2  # the 64 px scenes have no large objects
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt.dataset["annotations"]]
    for results in (perfect, []):
        metrics = coco_box_ap(gt, results)
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = COCOeval(gt, gt.loadRes(results) if results else _empty_dt(gt), "bbox")
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        assert [metrics[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")] == [float(s) for s in evaluator.stats[:6]]
        assert metrics["APl"] == -1.0
    assert coco_box_ap(gt, [])["AP"] == 0.0


def _empty_dt(gt: COCO) -> COCO:
    dt = COCO()
    dt.dataset = {"images": gt.dataset["images"], "annotations": [], "categories": gt.dataset["categories"]}
    dt.createIndex()
    return dt


def test_eval_scores_a_results_file_and_saves_what_it_scored(tiny_coco, tiny_val, tmp_path, run_cli):
    import json

    from apps.scrl.model import BackboneConfig, DetectorConfig, build_detector, build_resnet, detector_meta
    from shared.weights import save_safetensors

    gt = coco_ground_truth(read_coco(tiny_coco))
    results = _perturbed_results(gt, 1)
    (tmp_path / "res.json").write_text(json.dumps(results))
    code, out, err = run_cli(["scrl", "eval", "--results", tmp_path / "res.json", "--data", tiny_coco,
                              "--json", tmp_path / "m.json"])
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    expected = coco_box_ap(gt, results)
    assert metrics["AP"] == expected["AP"] and metrics["APl"] == -1.0 and "APl -" in out
    # a results entry that does not fit the ground truth: one line naming the entry
    (tmp_path / "bad.json").write_text(json.dumps(results[:2] + [{**results[0], "image_id": 999}]))
    code, _, err = run_cli(["scrl", "eval", "--results", tmp_path / "bad.json", "--data", tiny_coco])
    assert code == 1 and "detection 2" in err and "999" in err and len(err.strip().splitlines()) == 1
    # --weights: the detections scored are saved and give the same AP when scored again with --results
    torch.manual_seed(0)
    backbone_cfg = BackboneConfig(width=8)
    det_cfg = DetectorConfig(min_size=64, max_size=64, fpn_channels=16, representation=32, score_thresh=0.0)
    model = build_detector(build_resnet(backbone_cfg), 4, det_cfg)
    data = read_coco(tiny_val)
    save_safetensors(model.state_dict(), tmp_path / "det.safetensors",
                     metadata=detector_meta(backbone_cfg, det_cfg, data.class_names, data.category_ids))
    code, out, err = run_cli(["scrl", "eval", "--weights", tmp_path / "det.safetensors", "--data", tiny_val,
                              "--detections", tmp_path / "dets.json", "--json", tmp_path / "m1.json"])
    assert code == 0, err
    saved = json.loads((tmp_path / "dets.json").read_text())
    assert saved and {"image_id", "category_id", "bbox", "score", "category_name"} <= set(saved[0])
    code, _, err = run_cli(["scrl", "eval", "--results", tmp_path / "dets.json", "--data", tiny_val,
                            "--json", tmp_path / "m2.json"])
    assert code == 0, err
    assert json.loads((tmp_path / "m1.json").read_text()) == json.loads((tmp_path / "m2.json").read_text())
