"""`mot eval` preprocesses ground truth exactly as TrackEval's MotChallenge2DBox: same MOTA/IDF1/HOTA
as TrackEval's own pipeline run on the same files, for MOT15-, MOT17- and MOT20-style ground truth."""
from __future__ import annotations

import numpy as np
import pytest

from apps.mot.data import MOTTable, SeqInfo, write_mot_txt, write_seqinfo
from apps.mot.evaluate import evaluate_dirs

from .trackeval_ref import trackeval_pipeline


def _write_seq(gt_root, res_root, name: str, length: int, gt_lines: list[str], res_lines: list[str]) -> None:
    seq = gt_root / name
    write_seqinfo(seq, SeqInfo(name, "img1", 25.0, length, 640, 480, ".jpg"))
    (seq / "gt").mkdir(parents=True, exist_ok=True)
    (seq / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
    res_root.mkdir(parents=True, exist_ok=True)
    (res_root / f"{name}.txt").write_text("\n".join(res_lines) + "\n")


def constructed_sequence(gt_root, res_root, name: str = "MOT17-90", distractor_cls: int = 7) -> None:
    """The issue's 5-frame MOT17 sequence: a pedestrian, a car (3), a mark-0 pedestrian, a static person
    (``distractor_cls``) and an occluder (10); the tracker puts one box on each of the five every frame."""
    objects = [(1, 1, 1, 10), (2, 0 + 1, 3, 110), (3, 0, 1, 210), (4, 1, distractor_cls, 310), (5, 1, 10, 410)]
    gt, res = [], []
    for f in range(1, 6):
        for oid, mark, cls, left in objects:
            gt.append(f"{f},{oid},{left + f},50,40,90,{mark},{cls},1.0")
            res.append(f"{f},{oid + 100},{left + f + 1},51,40,90,0.9,-1,-1,-1")
    _write_seq(gt_root, res_root, name, 5, gt, res)


def _random_sequence(gt_root, res_root, name: str, rng: np.random.Generator, mot15: bool, length: int = 12) -> None:
    """Random objects of every class, mark 0/1, visibility; a tracker that jitters, drops, swaps and adds boxes."""
    n_obj = 9
    start = rng.uniform(0, 500, (n_obj, 2))
    vel = rng.normal(0, 6, (n_obj, 2))
    size = rng.uniform(30, 80, (n_obj, 2))
    classes = rng.choice([1, 1, 1, 2, 3, 6, 7, 8, 9, 10, 12], n_obj)
    marks = (rng.random(n_obj) > 0.2).astype(int)
    gt, res = [], []
    for f in range(1, length + 1):
        for k in range(n_obj):
            if rng.random() < 0.1:
                continue
            left, top = start[k] + vel[k] * f
            w, h = size[k]
            if mot15:
                gt.append(f"{f},{k + 1},{left:.2f},{top:.2f},{w:.2f},{h:.2f},{marks[k]},-1,-1,-1")
            else:
                gt.append(f"{f},{k + 1},{left:.2f},{top:.2f},{w:.2f},{h:.2f},{marks[k]},{classes[k]},"
                          f"{rng.uniform(0, 1):.3f}")
            if rng.random() < 0.85:
                tid = k + 1 if (f < length // 2 or k % 3) else k + 50  # some identity switches
                jl, jt = rng.normal(0, 0.12 * w), rng.normal(0, 0.12 * h)
                res.append(f"{f},{tid},{left + jl:.2f},{top + jt:.2f},{w:.2f},{h:.2f},0.9,-1,-1,-1")
        for j in range(int(rng.integers(0, 3))):
            res.append(f"{f},{200 + 10 * f + j},{rng.uniform(0, 600):.2f},{rng.uniform(0, 400):.2f},40,90,0.5,-1,-1,-1")
    _write_seq(gt_root, res_root, name, length, gt, res)


def _compare(ours: dict, ref: dict) -> None:
    rows = {**ours["sequences"], "COMBINED_SEQ": ours["overall"]}
    for seq, r in ref.items():
        for key in ("MOTA", "IDF1", "HOTA"):
            assert rows[seq][key] == pytest.approx(r[key], abs=1e-9), (seq, key, rows[seq][key], r[key])
        for key in ("FP", "FN", "IDSW"):
            assert rows[seq][key] == r[key], (seq, key)


def test_constructed_mot17_sequence_matches_trackeval(tmp_path):
    gt_root, res_root = tmp_path / "gt", tmp_path / "res" / "trk"
    constructed_sequence(gt_root, res_root)
    ref = trackeval_pipeline(gt_root, res_root, "MOT17", tmp_path / "te_out")
    assert ref["MOT17-90"]["MOTA"] == pytest.approx(-2.0) and ref["MOT17-90"]["FP"] == 15
    assert ref["MOT17-90"]["IDF1"] == pytest.approx(0.4)
    ours = evaluate_dirs(gt_root, res_root)
    assert ours["overall"]["MOTA"] == pytest.approx(-2.0) and ours["overall"]["FP"] == 15
    assert ours["overall"]["IDF1"] == pytest.approx(0.4)
    _compare(ours, ref)


def test_mot20_non_mot_vehicle_is_a_distractor_only_in_mot20(tmp_path):
    """Class 6 boxes are removed for MOT20 (sequence named MOT20-*) and count as FP under MOT17 rules."""
    gt_root, res_root = tmp_path / "gt", tmp_path / "res" / "trk"
    constructed_sequence(gt_root, res_root, name="MOT20-91", distractor_cls=6)
    ref20 = trackeval_pipeline(gt_root, res_root, "MOT20", tmp_path / "te20")
    ref17 = trackeval_pipeline(gt_root, res_root, "MOT17", tmp_path / "te17")
    assert ref20["MOT20-91"]["FP"] == 15 and ref17["MOT20-91"]["FP"] == 20
    _compare(evaluate_dirs(gt_root, res_root), ref20)                       # auto: MOT20 by name
    _compare(evaluate_dirs(gt_root, res_root, benchmark="MOT17"), ref17)


@pytest.mark.parametrize("benchmark", ["MOT15", "MOT17", "MOT20"])
def test_random_sequences_match_trackeval(tmp_path, benchmark):
    rng = np.random.default_rng({"MOT15": 0, "MOT17": 1, "MOT20": 2}[benchmark])
    gt_root, res_root = tmp_path / "gt", tmp_path / "res" / "trk"
    for k in range(3):
        _random_sequence(gt_root, res_root, f"{benchmark}-{k:02d}", rng, mot15=benchmark == "MOT15")
    ref = trackeval_pipeline(gt_root, res_root, benchmark, tmp_path / "te_out")
    ours = evaluate_dirs(gt_root, res_root)  # benchmark detected from names / columns
    _compare(ours, ref)
    assert ours["overall"]["FP"] > 0 and ours["overall"]["IDSW"] > 0  # the case is not trivial


def test_in_memory_tables_with_classes_follow_mot17_rules():
    from apps.mot.evaluate import evaluate_tables

    box = [[0, 0, 10, 20], [50, 0, 10, 20], [100, 0, 10, 20]]
    gt = MOTTable.from_rows([1, 1, 1], [1, 2, 3], box, cls_=[1, 7, 3])
    res = MOTTable.from_rows([1, 1, 1], [1, 2, 3], box)
    m = evaluate_tables({"s": (gt, res, 1)})["overall"]
    assert m["FP"] == 1 and m["FN"] == 0  # static person removed, the car's box is a false positive
    write_mot_txt  # noqa: B018 - the writer is the one the CLI uses for these files
