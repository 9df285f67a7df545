"""The ShapeNetPart metric, segmenter evaluation, unsupervised-part scoring and the linear probe.

ShapeNetPart protocol: for a shape of category c, IoU is computed for each part of c only (a part
absent from both prediction and ground truth counts 1); the shape's mIoU is their mean. Instance
mIoU = mean over shapes; class mIoU = mean over categories of the mean shape mIoU of that category.
Predictions are restricted to c's parts (the segmenter masks the other logits).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .data import CATEGORIES, Shape, category_parts, shape_features


def shape_iou(pred: np.ndarray, gt: np.ndarray, parts: tuple[int, ...] | list[int]) -> float:
    """mIoU of one shape over ``parts`` (absent in both -> 1)."""
    ious = []
    for part in parts:
        p, g = pred == part, gt == part
        union = np.logical_or(p, g).sum()
        ious.append(1.0 if union == 0 else np.logical_and(p, g).sum() / union)
    return float(np.mean(ious))


def shapenetpart_miou(preds: list[np.ndarray], gts: list[np.ndarray], categories: list[int]) -> dict:
    """Instance mIoU, class mIoU and per-category mIoU (category name -> value, shapes counted)."""
    if not preds:
        raise ValueError("no shapes to score")
    per_shape = np.array([shape_iou(p, g, category_parts(c)) for p, g, c in zip(preds, gts, categories)])
    cats = np.asarray(categories)
    per_cat = {CATEGORIES[c][0]: float(per_shape[cats == c].mean()) for c in sorted(set(categories))}
    return {"instance_miou": float(per_shape.mean()), "class_miou": float(np.mean(list(per_cat.values()))),
            "per_category": per_cat, "shapes": int(len(per_shape)),
            "shapes_per_category": {CATEGORIES[c][0]: int((cats == c).sum()) for c in sorted(set(categories))}}


@torch.no_grad()
def predict_shapes(net: torch.nn.Module, shapes: list[Shape], batch_size: int = 16) -> list[np.ndarray]:
    """Part predictions for every point of every shape (shapes of equal size are batched)."""
    net.eval()
    preds: list[np.ndarray | None] = [None] * len(shapes)
    by_size: dict[int, list[int]] = {}
    for i, s in enumerate(shapes):
        by_size.setdefault(len(s.points), []).append(i)
    for members in by_size.values():
        for start in range(0, len(members), batch_size):
            block = members[start:start + batch_size]
            x = torch.from_numpy(np.stack([shape_features(shapes[i].points, shapes[i].normals) for i in block]))
            cat = torch.tensor([shapes[i].category for i in block])
            labels = net(x, cat).argmax(1).numpy()
            for i, row in zip(block, labels):
                preds[i] = row
    return preds  # type: ignore[return-value]


def evaluate_segmenter(net: torch.nn.Module, shapes: list[Shape]) -> dict:
    preds = predict_shapes(net, shapes)
    return shapenetpart_miou(preds, [s.parts for s in shapes], [s.category for s in shapes])


def matched_miou(clusters: np.ndarray, gt: np.ndarray) -> float:
    """Unsupervised parts vs ground truth: Hungarian matching of clusters to gt parts maximising
    total IoU; mIoU over the gt parts (an unmatched gt part scores 0)."""
    from scipy.optimize import linear_sum_assignment

    ks, gs = np.unique(clusters), np.unique(gt)
    iou = np.zeros((len(ks), len(gs)))
    for a, k in enumerate(ks):
        for b, g in enumerate(gs):
            inter = np.logical_and(clusters == k, gt == g).sum()
            iou[a, b] = inter / np.logical_or(clusters == k, gt == g).sum()
    rows, cols = linear_sum_assignment(-iou)
    return float(iou[rows, cols].sum() / len(gs))


@torch.no_grad()
def global_features(encoder: torch.nn.Module, points: list[np.ndarray], normals: list[np.ndarray],
                    batch_size: int = 32) -> np.ndarray:
    """Max-pooled encoder features (frozen, eval mode) of each cloud."""
    encoder.eval()
    feats = []
    for start in range(0, len(points), batch_size):
        x = torch.from_numpy(np.stack([shape_features(p, n) for p, n in
                                       zip(points[start:start + batch_size], normals[start:start + batch_size])]))
        feats.append(encoder(x)[1].numpy())
    return np.concatenate(feats)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int = 0) -> float:
    """Accuracy of a logistic-regression probe on standardised frozen features (ModelNet40 protocol
    uses a linear SVM; a linear logistic probe is the same family and gives probabilities)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


def format_table(result: dict) -> str:
    lines = [f"instance mIoU {100 * result['instance_miou']:.2f}   class mIoU {100 * result['class_miou']:.2f}   "
             f"({result['shapes']} shapes)"]
    for name, value in result["per_category"].items():
        lines.append(f"  {name:<12} {100 * value:6.2f}  ({result['shapes_per_category'][name]} shapes)")
    return "\n".join(lines)


def write_json(result: dict, path: str | Path) -> None:
    from shared.guard import write_atomic

    write_atomic(path, json.dumps(result, indent=2) + "\n")
