"""Reference: TrackEval's own MOTChallenge pipeline (dataset loader + preprocessing + metrics) on files on disk."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np


def trackeval_pipeline(gt_root: Path, res_root: Path, benchmark: str, out_dir: Path) -> dict[str, dict[str, float]]:
    """MOTA / IDF1 / HOTA / FP / IDSW per sequence and COMBINED from ``trackeval.Evaluator`` +
    ``MotChallenge2DBox`` reading ``GT_ROOT/SEQ/{seqinfo.ini,gt/gt.txt}`` and ``RES_ROOT/SEQ.txt``."""
    import trackeval

    seqs = sorted(p.name for p in Path(gt_root).iterdir() if (p / "seqinfo.ini").is_file())
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(Path(res_root).parent),
        "TRACKERS_TO_EVAL": [Path(res_root).name], "TRACKER_SUB_FOLDER": "", "OUTPUT_FOLDER": str(out_dir),
        "BENCHMARK": benchmark, "SKIP_SPLIT_FOL": True, "SEQ_INFO": {s: None for s in seqs},
        "PRINT_CONFIG": False,
    })
    evaluator = trackeval.Evaluator({
        "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
        "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None,
    })
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False})]
    with contextlib.redirect_stdout(io.StringIO()):
        results, messages = evaluator.evaluate([dataset], metrics)
    per_seq = results["MotChallenge2DBox"][Path(res_root).name]
    out = {}
    for seq, by_class in per_seq.items():
        r = by_class["pedestrian"]
        out[seq] = {"MOTA": float(r["CLEAR"]["MOTA"]), "IDF1": float(r["Identity"]["IDF1"]),
                    "HOTA": float(np.mean(r["HOTA"]["HOTA"])), "FP": int(r["CLEAR"]["CLR_FP"]),
                    "FN": int(r["CLEAR"]["CLR_FN"]), "IDSW": int(r["CLEAR"]["IDSW"])}
    return out
