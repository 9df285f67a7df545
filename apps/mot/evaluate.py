"""MOTChallenge evaluation: CLEAR/identity metrics via motmetrics, HOTA/DetA/AssA via TrackEval.

Ground truth rows with ``mark == 0`` or a class other than pedestrian (1; -1 = not given) are not
scored; tracker boxes matched to them (IoU >= 0.5) are dropped first, as the MOTChallenge devkit
does. IoU distances are computed here (``motmetrics.distances.iou_matrix`` calls ``np.asfarray``,
which NumPy 2 removed). TrackEval's HOTA class is called directly on data prepared here, not
through its dataset loaders.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from shared.errors import CvsuiteError

from .data import MOTTable, box_iou, list_sequences, read_mot_txt, read_seqinfo

MOTA_METRICS = {
    "MOTA": "mota", "IDF1": "idf1", "MOTP": "motp", "IDSW": "num_switches", "FP": "num_false_positives",
    "FN": "num_misses", "MT": "mostly_tracked", "ML": "mostly_lost", "Frag": "num_fragmentations",
    "Rcll": "recall", "Prcn": "precision", "GT": "num_unique_objects",
}
COLUMNS = ("MOTA", "IDF1", "HOTA", "DetA", "AssA", "MOTP", "IDSW", "FP", "FN", "MT", "ML", "Frag")
IOU_THRESHOLD = 0.5


def _scored_gt(gt: MOTTable) -> tuple[MOTTable, MOTTable]:
    """Split ground truth into scored rows and ignored rows (mark 0 / non-pedestrian classes)."""
    keep = (gt.mark != 0) & np.isin(gt.cls, (1, -1))
    return gt.select(keep), gt.select(~keep)


def _drop_matched_to_ignored(res: MOTTable, gt: MOTTable, ignored: MOTTable) -> MOTTable:
    """Remove tracker boxes that the devkit would match to ignored ground truth."""
    if len(ignored) == 0 or len(res) == 0:
        return res
    keep = np.ones(len(res), bool)
    gt_rows, ig_rows, res_rows = gt.frame_rows(), ignored.frame_rows(), res.frame_rows()
    for frame, ig in ig_rows.items():
        r = res_rows.get(frame)
        if r is None:
            continue
        g = gt_rows.get(frame, np.zeros(0, np.int64))
        boxes = np.concatenate([gt.boxes[g], ignored.boxes[ig]])
        iou = box_iou(boxes, res.boxes[r])
        iou[iou < IOU_THRESHOLD - 1e-9] = 0
        rows, cols = linear_sum_assignment(-iou)
        for i, j in zip(rows, cols):
            if iou[i, j] > 0 and i >= len(g):
                keep[r[j]] = False
    return res.select(keep)


def _frames(gt: MOTTable, res: MOTTable, num_frames: int | None) -> list[int]:
    last = max(int(gt.frame.max()) if len(gt) else 0, int(res.frame.max()) if len(res) else 0)
    return list(range(1, max(last, num_frames or 0) + 1))


def sequence_accumulator(gt: MOTTable, res: MOTTable, num_frames: int | None = None):
    """A ``motmetrics.MOTAccumulator`` filled frame by frame with distance = 1 - IoU (NaN below 0.5 IoU)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    gt_rows, res_rows = gt.frame_rows(), res.frame_rows()
    empty = np.zeros(0, np.int64)
    for frame in _frames(gt, res, num_frames):
        g, r = gt_rows.get(frame, empty), res_rows.get(frame, empty)
        dist = 1.0 - box_iou(gt.boxes[g], res.boxes[r])
        dist[dist > IOU_THRESHOLD + 1e-12] = np.nan
        acc.update(gt.ids[g].tolist(), res.ids[r].tolist(), dist)
    return acc


def trackeval_data(gt: MOTTable, res: MOTTable, num_frames: int | None = None) -> dict:
    """The per-sequence dict TrackEval's metric classes consume (ids remapped to 0..n-1)."""
    gt_map = {v: i for i, v in enumerate(np.unique(gt.ids).tolist())}
    res_map = {v: i for i, v in enumerate(np.unique(res.ids).tolist())}
    gt_rows, res_rows = gt.frame_rows(), res.frame_rows()
    empty = np.zeros(0, np.int64)
    data: dict = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    frames = _frames(gt, res, num_frames)
    for frame in frames:
        g, r = gt_rows.get(frame, empty), res_rows.get(frame, empty)
        data["gt_ids"].append(np.array([gt_map[int(v)] for v in gt.ids[g]], np.int64))
        data["tracker_ids"].append(np.array([res_map[int(v)] for v in res.ids[r]], np.int64))
        data["similarity_scores"].append(box_iou(gt.boxes[g], res.boxes[r]))
    data.update(num_timesteps=len(frames), num_gt_ids=len(gt_map), num_tracker_ids=len(res_map),
                num_gt_dets=len(gt), num_tracker_dets=len(res))
    return data


def _hota_summary(res: dict) -> dict[str, float]:
    return {"HOTA": float(np.mean(res["HOTA"])), "DetA": float(np.mean(res["DetA"])),
            "AssA": float(np.mean(res["AssA"]))}


def evaluate_tables(pairs: dict[str, tuple[MOTTable, MOTTable, int | None]]) -> dict:
    """Metrics per sequence and overall for ``{name: (gt, res, num_frames)}``.

    Returns ``{"sequences": {name: {metric: value}}, "overall": {...}}`` with MOTA/IDF1/HOTA/DetA/
    AssA/Rcll/Prcn as fractions, MOTP as motmetrics' mean 1-IoU distance of matches, counts as ints.
    """
    import motmetrics as mm
    from trackeval.metrics import HOTA

    accs, names, hota_res = [], [], {}
    hota = HOTA()
    for name, (gt, res, num_frames) in pairs.items():
        scored, ignored = _scored_gt(gt)
        res = _drop_matched_to_ignored(res, scored, ignored)
        accs.append(sequence_accumulator(scored, res, num_frames))
        names.append(name)
        hota_res[name] = hota.eval_sequence(trackeval_data(scored, res, num_frames))
    mh = mm.metrics.create()
    summary = mh.compute_many(accs, names=names, metrics=list(MOTA_METRICS.values()), generate_overall=True)
    out: dict = {"sequences": {}, "overall": {}}
    for row_name in list(names) + ["OVERALL"]:
        row = summary.loc[row_name]
        values: dict[str, float] = {}
        for key, col in MOTA_METRICS.items():
            v = float(row[col])
            values[key] = int(v) if key in ("IDSW", "FP", "FN", "MT", "ML", "Frag", "GT") else v
        hres = hota_res[row_name] if row_name != "OVERALL" else hota.combine_sequences(hota_res)
        values.update(_hota_summary(hres))
        if row_name == "OVERALL":
            out["overall"] = values
        else:
            out["sequences"][row_name] = values
    return out


def evaluate_dirs(gt_root: str | Path, res_root: str | Path) -> dict:
    """Evaluate ``RES_ROOT/SEQ.txt`` against ``GT_ROOT/SEQ/gt/gt.txt`` for every sequence in GT_ROOT."""
    res_root = Path(res_root)
    if not res_root.is_dir():
        raise CvsuiteError(f"{res_root}: result directory not found")
    pairs = {}
    for seq_dir in list_sequences(gt_root):
        num_frames = read_seqinfo(seq_dir).length if (seq_dir / "seqinfo.ini").is_file() else None
        gt = read_mot_txt(seq_dir / "gt" / "gt.txt", "gt", num_frames)
        res_path = res_root / f"{seq_dir.name}.txt"
        if not res_path.is_file():
            raise CvsuiteError(f"{res_path}: missing tracker result for sequence {seq_dir.name}")
        res = read_mot_txt(res_path, "res", num_frames)
        pairs[seq_dir.name] = (gt, res, num_frames)
    return evaluate_tables(pairs)


def format_table(metrics: dict) -> str:
    """A fixed-width text table (percentages for ratios)."""
    head = f"{'sequence':<22}" + "".join(f"{c:>7}" for c in COLUMNS)
    lines = [head]
    rows = list(metrics["sequences"].items()) + [("OVERALL", metrics["overall"])]
    for name, vals in rows:
        cells = []
        for c in COLUMNS:
            v = vals[c]
            if c in ("MOTA", "IDF1", "HOTA", "DetA", "AssA"):
                cells.append(f"{100 * v:7.1f}" if math.isfinite(v) else f"{'nan':>7}")
            elif c == "MOTP":
                cells.append(f"{v:7.3f}" if math.isfinite(v) else f"{'nan':>7}")
            else:
                cells.append(f"{v:7d}")
        lines.append(f"{name:<22}" + "".join(cells))
    return "\n".join(lines)


def write_json(metrics: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")
