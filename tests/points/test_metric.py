"""ShapeNetPart mIoU against an explicit loop; Hungarian-matched mIoU against brute force."""
from __future__ import annotations

import itertools

import numpy as np

from apps.points.data import CATEGORIES
from apps.points.evaluate import matched_miou, shapenetpart_miou


def reference_miou(preds, gts, cats):
    """The protocol written out: per shape, loop over the category's parts, absent in both -> 1."""
    shape_ious, by_cat = [], {}
    for pred, gt, c in zip(preds, gts, cats):
        ious = []
        for part in CATEGORIES[c][2]:
            inter = sum(1 for p, g in zip(pred, gt) if p == part and g == part)
            union = sum(1 for p, g in zip(pred, gt) if p == part or g == part)
            ious.append(1.0 if union == 0 else inter / union)
        shape_ious.append(sum(ious) / len(ious))
        by_cat.setdefault(c, []).append(shape_ious[-1])
    class_means = [sum(v) / len(v) for v in by_cat.values()]
    return sum(shape_ious) / len(shape_ious), sum(class_means) / len(class_means)


def test_metric_matches_explicit_loop_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(5):
        cats = rng.choice([0, 4, 8, 11, 15], size=12).tolist()
        gts, preds = [], []
        for c in cats:
            parts = np.array(CATEGORIES[c][2])
            gt_parts = parts[: rng.integers(1, len(parts) + 1)]  # some parts absent from the gt
            gts.append(rng.choice(gt_parts, size=40))
            preds.append(rng.choice(parts, size=40))
        result = shapenetpart_miou(preds, gts, cats)
        inst, cls = reference_miou(preds, gts, cats)
        assert abs(result["instance_miou"] - inst) < 1e-12 and abs(result["class_miou"] - cls) < 1e-12


def test_absent_in_both_counts_one():
    gt = np.array([12, 12, 13, 13])  # a chair with only back and seat; legs and arms absent from both
    result = shapenetpart_miou([gt.copy()], [gt], [4])
    assert result["instance_miou"] == 1.0
    pred = np.array([12, 13, 13, 13])
    # back 1/2, seat 2/3, legs 1, arms 1
    assert abs(shapenetpart_miou([pred], [gt], [4])["instance_miou"] - (0.5 + 2 / 3 + 2) / 4) < 1e-12


def test_matched_miou_equals_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(10):
        gt = rng.integers(0, 3, 60)
        clusters = rng.integers(0, 4, 60)
        best = 0.0
        ks, gs = np.unique(clusters), np.unique(gt)
        for perm in itertools.permutations(ks, len(gs)):
            total = sum(np.logical_and(clusters == k, gt == g).sum() / np.logical_or(clusters == k, gt == g).sum()
                        for k, g in zip(perm, gs))
            best = max(best, total / len(gs))
        assert abs(matched_miou(clusters, gt) - best) < 1e-12
    assert matched_miou(gt, gt) == 1.0
