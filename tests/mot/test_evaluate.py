"""MOTChallenge metrics: the TUD reference values shipped with motmetrics, and the eval CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from apps.mot.data import MOTTable, read_mot_txt
from apps.mot.evaluate import evaluate_tables, sequence_accumulator, trackeval_data

REFERENCE = {  # MOTChallenge devkit values (see motmetrics' own tests)
    "TUD-Campus": {"MOTA": 0.526, "IDF1": 0.558, "MOTP": 0.277},
    "TUD-Stadtmitte": {"MOTA": 0.564, "IDF1": 0.645, "MOTP": 0.346},
    "OVERALL": {"MOTA": 0.555, "IDF1": 0.624},
}


def _tud_dir() -> Path:
    import motmetrics

    return Path(motmetrics.__file__).parent / "data"


def _tud_pairs():
    d = _tud_dir()
    return {s: (read_mot_txt(d / s / "gt.txt", "gt"), read_mot_txt(d / s / "test.txt", "res"), None)
            for s in ("TUD-Campus", "TUD-Stadtmitte")}


def test_tud_reference_values():
    metrics = evaluate_tables(_tud_pairs())
    rows = {**metrics["sequences"], "OVERALL": metrics["overall"]}
    for name, ref in REFERENCE.items():
        for key, value in ref.items():
            assert rows[name][key] == pytest.approx(value, abs=5e-4), (name, key)


def test_trackeval_clear_agrees_with_motmetrics_on_prepared_data():
    """The data handed to TrackEval is right: its own CLEAR MOTA equals motmetrics' MOTA."""
    from trackeval.metrics import CLEAR

    for name, (gt, res, _) in _tud_pairs().items():
        clear = CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}).eval_sequence(trackeval_data(gt, res))
        import motmetrics as mm

        acc = sequence_accumulator(gt, res)
        mota = mm.metrics.create().compute(acc, metrics=["mota"])["mota"].iloc[0]
        assert clear["MOTA"] == pytest.approx(mota, abs=1e-9)


def test_perfect_and_swapped_tracks():
    frames = np.repeat(np.arange(1, 11), 2)
    ids = np.tile([1, 2], 10)
    boxes = np.stack([np.where(ids == 1, 10.0, 200.0), np.full(20, 50.0), np.full(20, 40.0), np.full(20, 80.0)], 1)
    boxes[:, 0] += frames
    gt = MOTTable.from_rows(frames, ids, boxes, cls_=np.ones(20), vis=np.ones(20))
    perfect = evaluate_tables({"s": (gt, MOTTable.from_rows(frames, ids + 5, boxes), 10)})["overall"]
    assert perfect["MOTA"] == 1.0 and perfect["IDF1"] == 1.0 and perfect["HOTA"] == pytest.approx(1.0)
    swapped_ids = np.where(frames > 5, 3 - ids, ids)  # identities swap half way
    swapped = evaluate_tables({"s": (gt, MOTTable.from_rows(frames, swapped_ids, boxes), 10)})["overall"]
    assert swapped["IDSW"] == 2 and swapped["IDF1"] == pytest.approx(0.5) and swapped["AssA"] < 0.6


def test_ignored_gt_rows_do_not_count(tmp_path):
    gt = MOTTable.from_rows([1, 1], [1, 2], [[0, 0, 10, 20], [50, 0, 10, 20]], cls_=[1, 7], mark=[1, 1])
    res = MOTTable.from_rows([1, 1], [1, 2], [[0, 0, 10, 20], [50, 0, 10, 20]])
    m = evaluate_tables({"s": (gt, res, 1)})["overall"]
    assert m["FP"] == 0 and m["FN"] == 0 and m["MOTA"] == 1.0


def test_eval_cli_on_tud(run_cli, tmp_path):
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        (tmp_path / "gt" / seq / "gt").mkdir(parents=True)
        shutil.copy(_tud_dir() / seq / "gt.txt", tmp_path / "gt" / seq / "gt" / "gt.txt")
        (tmp_path / "res").mkdir(exist_ok=True)
        shutil.copy(_tud_dir() / seq / "test.txt", tmp_path / "res" / f"{seq}.txt")
    code, out, err = run_cli(["mot", "eval", "--gt", tmp_path / "gt", "--res", tmp_path / "res",
                              "--json", tmp_path / "m.json"])
    assert code == 0, err
    assert "TUD-Campus" in out and "52.6" in out and "55.8" in out
    data = json.loads((tmp_path / "m.json").read_text())
    # one unit for the MOT family everywhere: percent in the table, the JSON and the README
    assert data["sequences"]["TUD-Stadtmitte"]["IDF1"] == pytest.approx(64.5, abs=0.05)
    assert data["overall"]["MOTA"] == pytest.approx(55.5, abs=0.05) and "percent" in data["units"]["MOTA IDF1 HOTA DetA AssA"]
    assert data["sequences"]["TUD-Campus"]["MOTP"] == pytest.approx(0.277, abs=5e-4)  # a distance, not a ratio
    (tmp_path / "res" / "TUD-Campus.txt").unlink()
    code, _, err = run_cli(["mot", "eval", "--gt", tmp_path / "gt", "--res", tmp_path / "res"])
    assert code == 1 and "missing tracker result" in err and len(err.strip().splitlines()) == 1
