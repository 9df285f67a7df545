"""MOTChallenge evaluation: MOTA/IDF1/HOTA... with TrackEval's metric classes on MOTChallenge-preprocessed data.

Before scoring, every sequence is preprocessed exactly as TrackEval's ``MotChallenge2DBox`` does
(the MOTChallenge devkit's rules), per frame:

1. tracker boxes are matched to *all* ground-truth boxes (Hungarian on IoU, pairs below 0.5 IoU
   excluded); tracker boxes matched to a *distractor* class are removed: 2 person on vehicle,
   7 static person, 8 distractor, 12 reflection, and for MOT20 also 6 non-MOT vehicle;
2. only ground truth of class 1 (pedestrian) with mark != 0 is scored. Other classes (cars,
   occluders, ...) are simply not targets: tracker boxes on them stay and count as false positives,
   and so do boxes on mark-0 pedestrians. Visibility is not used (TrackEval scores every visibility).

MOT15 ground truth (10 columns, no classes) skips step 1 and keeps every row with column 7 != 0.
The benchmark is chosen per sequence: ``MOT20`` for sequence names starting with MOT20, ``MOT15``
when the ground truth has no class column, ``MOT17`` (= MOT16 rules) otherwise; ``benchmark=``
forces one. TrackEval's CLEAR, Identity and HOTA classes are called directly on the preprocessed
data (its dataset loader needs its folder layout and seqmaps); the tests check MOTA/IDF1/HOTA
against TrackEval's own full pipeline run on the same files, and the TUD sequences against the
MOTChallenge devkit values shipped with motmetrics. :func:`sequence_accumulator` feeds the same
data to motmetrics (IoU computed here: ``motmetrics.distances.iou_matrix`` calls ``np.asfarray``,
which NumPy 2 removed) for cross-checks.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from shared.errors import CvsuiteError, UsageError

from .data import MOTTable, box_iou, list_sequences, read_mot_txt, read_seqinfo

COLUMNS = ("MOTA", "IDF1", "HOTA", "DetA", "AssA", "MOTP", "IDSW", "FP", "FN", "MT", "ML", "Frag")
IOU_THRESHOLD = 0.5
BENCHMARKS = ("auto", "MOT15", "MOT16", "MOT17", "MOT20")
PEDESTRIAN = 1
DISTRACTOR_CLASSES = (2, 7, 8, 12)        # person on vehicle, static person, distractor, reflection
MOT20_EXTRA_DISTRACTORS = (6,)            # non-MOT vehicle
_EPS = np.finfo(float).eps


def detect_benchmark(name: str, gt: MOTTable, benchmark: str = "auto") -> str:
    """The MOTChallenge rule set of one sequence (see the module docstring)."""
    if benchmark not in BENCHMARKS:
        raise UsageError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    if benchmark != "auto":
        return benchmark
    has_classes = gt.num_columns in (8, 9) or bool(len(gt) and (gt.cls != -1).any())
    if not has_classes:
        return "MOT15"
    return "MOT20" if name.upper().startswith("MOT20") else "MOT17"


def preprocess(gt: MOTTable, res: MOTTable, benchmark: str) -> tuple[MOTTable, MOTTable]:
    """TrackEval's ``MotChallenge2DBox.get_preprocessed_seq_data``: (scored gt rows, kept tracker rows)."""
    if benchmark == "MOT15":
        return gt.select(gt.mark != 0), res
    distractors = DISTRACTOR_CLASSES + (MOT20_EXTRA_DISTRACTORS if benchmark == "MOT20" else ())
    keep_res = np.ones(len(res), bool)
    gt_rows, res_rows = gt.frame_rows(), res.frame_rows()
    for frame, g in gt_rows.items():
        r = res_rows.get(frame)
        if r is None or not len(g):
            continue
        scores = box_iou(gt.boxes[g], res.boxes[r])
        scores[scores < IOU_THRESHOLD - _EPS] = 0
        rows, cols = linear_sum_assignment(-scores)
        matched = scores[rows, cols] > _EPS
        rows, cols = rows[matched], cols[matched]
        keep_res[r[cols[np.isin(gt.cls[g][rows], distractors)]]] = False
    return gt.select((gt.mark != 0) & (gt.cls == PEDESTRIAN)), res.select(keep_res)


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


def _summary(clear: dict, ident: dict, hota: dict, gt_ids: int) -> dict[str, float]:
    """One row of the table from TrackEval's CLEAR / Identity / HOTA results."""
    tp = int(clear["CLR_TP"])
    return {
        "MOTA": float(clear["MOTA"]), "IDF1": float(ident["IDF1"]),
        # motmetrics' convention: mean 1 - IoU of the matches (TrackEval reports the mean IoU)
        "MOTP": float(1.0 - clear["MOTP_sum"] / tp) if tp else float("nan"),
        "IDSW": int(clear["IDSW"]), "FP": int(clear["CLR_FP"]), "FN": int(clear["CLR_FN"]),
        "MT": int(clear["MT"]), "ML": int(clear["ML"]), "Frag": int(clear["Frag"]),
        "Rcll": float(clear["CLR_Re"]), "Prcn": float(clear["CLR_Pr"]), "GT": int(gt_ids),
        **_hota_summary(hota),
    }


def evaluate_tables(pairs: dict[str, tuple[MOTTable, MOTTable, int | None]], benchmark: str = "auto") -> dict:
    """Metrics per sequence and overall for ``{name: (gt, res, num_frames)}``.

    Preprocessing as TrackEval's ``MotChallenge2DBox`` (:func:`preprocess`), then TrackEval's
    CLEAR, Identity and HOTA metric classes, so every number equals TrackEval's own pipeline.
    Returns ``{"sequences": {name: {metric: value}}, "overall": {...}}`` with MOTA/IDF1/HOTA/DetA/
    AssA/Rcll/Prcn as fractions, MOTP as the mean 1-IoU distance of matches (motmetrics' and the
    old devkit's convention), counts as ints.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    clear_m = CLEAR({"THRESHOLD": IOU_THRESHOLD, "PRINT_CONFIG": False})
    ident_m = Identity({"THRESHOLD": IOU_THRESHOLD, "PRINT_CONFIG": False})
    hota_m = HOTA()
    clear, ident, hota, gt_ids = {}, {}, {}, {}
    out: dict = {"sequences": {}, "overall": {}}
    for name, (gt, res, num_frames) in pairs.items():
        scored, kept = preprocess(gt, res, detect_benchmark(name, gt, benchmark))
        data = trackeval_data(scored, kept, num_frames)
        clear[name], ident[name] = clear_m.eval_sequence(data), ident_m.eval_sequence(data)
        hota[name], gt_ids[name] = hota_m.eval_sequence(data), data["num_gt_ids"]
        out["sequences"][name] = _summary(clear[name], ident[name], hota[name], gt_ids[name])
    out["overall"] = _summary(clear_m.combine_sequences(clear), ident_m.combine_sequences(ident),
                              hota_m.combine_sequences(hota), sum(gt_ids.values()))
    return out


def evaluate_dirs(gt_root: str | Path, res_root: str | Path, benchmark: str = "auto") -> dict:
    """Evaluate ``RES_ROOT/SEQ.txt`` against ``GT_ROOT/SEQ/gt/gt.txt`` for every sequence in GT_ROOT.

    Every sequence needs its result file, and every ``RES_ROOT/*.txt`` needs its sequence (a result
    whose name matches no ground truth is an error, not silently skipped).
    """
    res_root = Path(res_root)
    if not res_root.is_dir():
        raise CvsuiteError(f"{res_root}: result directory not found")
    seq_dirs = list_sequences(gt_root)
    names = {p.name for p in seq_dirs}
    for res_file in sorted(res_root.glob("*.txt")):
        if res_file.stem not in names:
            raise CvsuiteError(f"{res_file}: no ground-truth sequence {res_file.stem} under {gt_root} "
                               f"(sequences: {', '.join(sorted(names))})")
    pairs = {}
    for seq_dir in seq_dirs:
        num_frames = read_seqinfo(seq_dir).length if (seq_dir / "seqinfo.ini").is_file() else None
        gt = read_mot_txt(seq_dir / "gt" / "gt.txt", "gt", num_frames)
        res_path = res_root / f"{seq_dir.name}.txt"
        if not res_path.is_file():
            raise CvsuiteError(f"{res_path}: missing tracker result for sequence {seq_dir.name}")
        res = read_mot_txt(res_path, "res", num_frames)
        pairs[seq_dir.name] = (gt, res, num_frames)
    return evaluate_tables(pairs, benchmark)


PERCENT_KEYS = ("MOTA", "IDF1", "HOTA", "DetA", "AssA")
UNITS = {"MOTA IDF1 HOTA DetA AssA": "percent (as the MOTChallenge devkit and TrackEval print them)",
         "MOTP": "mean 1 - IoU of matched boxes (motmetrics' distance; lower is better)",
         "IDSW FP FN MT ML Frag": "counts"}


def as_reported(values: dict) -> dict:
    """A copy of one metrics row with the ratio metrics in percent: the one unit the CLI, JSON, demo
    and README use for the MOT family (internally they stay fractions, as motmetrics/TrackEval return them)."""
    return {k: (100.0 * float(v) if k in PERCENT_KEYS else v) for k, v in values.items()}


def format_table(metrics: dict) -> str:
    """A fixed-width text table (ratio metrics in percent, see :data:`UNITS`)."""
    head = f"{'sequence':<22}" + "".join(f"{c:>7}" for c in COLUMNS)
    lines = [head]
    rows = list(metrics["sequences"].items()) + [("OVERALL", metrics["overall"])]
    for name, vals in rows:
        cells = []
        for c in COLUMNS:
            v = vals[c]
            if c in PERCENT_KEYS:
                cells.append(f"{100 * v:7.1f}" if math.isfinite(v) else f"{'nan':>7}")
            elif c == "MOTP":
                cells.append(f"{v:7.3f}" if math.isfinite(v) else f"{'nan':>7}")
            else:
                cells.append(f"{v:7d}")
        lines.append(f"{name:<22}" + "".join(cells))
    return "\n".join(lines)


def write_json(metrics: dict, path: str | Path) -> None:
    """Metrics as JSON in the reported units (ratios in percent), with the units spelled out."""
    path = Path(path)
    from shared.guard import write_atomic

    report = {"units": UNITS, "sequences": {name: as_reported(v) for name, v in metrics["sequences"].items()},
              "overall": as_reported(metrics["overall"])}
    report.update({k: v for k, v in metrics.items() if k not in report})
    write_atomic(path, json.dumps(report, indent=2, default=float))
