"""MOTChallenge readers/writers: round trips and clear errors for malformed files."""
from __future__ import annotations

import numpy as np
import pytest

from apps.mot.data import (MOTSequence, MOTTable, SeqInfo, box_iou, read_mot_txt, read_seqinfo, write_mot_txt,
                           write_seqinfo)
from shared.errors import CvsuiteError


def _table(n: int = 7, seed: int = 0) -> MOTTable:
    rng = np.random.default_rng(seed)
    boxes = np.round(np.c_[rng.uniform(-5, 100, (n, 2)), rng.uniform(5, 60, (n, 2))], 2)
    return MOTTable.from_rows(rng.integers(1, 20, n), rng.permutation(n) + 1, boxes,  # ids unique per frame
                              np.round(rng.uniform(0, 1, n), 4), np.ones(n), np.round(rng.uniform(0, 1, n), 3),
                              np.ones(n))


def _sorted(t: MOTTable) -> MOTTable:
    return t.select(np.lexsort((t.ids, t.frame)))


def test_gt_round_trip_mot16_format(tmp_path):
    t = _table()
    write_mot_txt(tmp_path / "gt.txt", t, kind="gt")
    lines = (tmp_path / "gt.txt").read_text().splitlines()
    assert all(len(line.split(",")) == 9 for line in lines)
    back, ref = read_mot_txt(tmp_path / "gt.txt", "gt"), _sorted(t)
    assert back.num_columns == 9
    np.testing.assert_array_equal(back.frame, ref.frame)
    np.testing.assert_array_equal(back.ids, ref.ids)
    np.testing.assert_allclose(back.boxes, ref.boxes)
    np.testing.assert_allclose(back.vis, ref.vis)
    np.testing.assert_array_equal(back.cls, ref.cls)


def test_result_round_trip_and_mot15_gt(tmp_path):
    t = _table(seed=3)
    write_mot_txt(tmp_path / "SEQ.txt", t, kind="res")
    back, ref = read_mot_txt(tmp_path / "SEQ.txt", "res"), _sorted(t)
    assert back.num_columns == 10
    np.testing.assert_allclose(back.boxes, ref.boxes)
    np.testing.assert_allclose(back.conf, ref.conf)
    # a MOT15 10-column gt file: conf column kept, every row scored (mark 1, class unknown)
    (tmp_path / "gt15.txt").write_text("1,1,10,20,30,40,1,-1,-1,-1\n2,1,11,21,30,40,1,-1,-1,-1\n")
    gt15 = read_mot_txt(tmp_path / "gt15.txt", "gt")
    assert list(gt15.mark) == [1, 1] and list(gt15.cls) == [-1, -1]


def test_seqinfo_round_trip(tmp_path):
    info = SeqInfo("ABC", "img1", 25.0, 12, 320, 240, ".jpg")
    write_seqinfo(tmp_path, info)
    assert read_seqinfo(tmp_path) == info


@pytest.mark.parametrize("line,needle", [
    ("1,1,10,20,30", "columns"),
    ("1,1,10,20,30,40,1,1,1,1,1", "columns"),
    ("1,1,10,nan,30,40,1,1,1", "NaN"),
    ("1,1,10,20,-30,40,1,1,1", "positive"),
    ("1,1,10,20,30,0,1,1,1", "positive"),
    ("0,1,10,20,30,40,1,1,1", "1-based"),
    ("99,1,10,20,30,40,1,1,1", "out of range"),
    ("1,x,10,20,30,40,1,1,1", "not a number"),
    ("1,1,10,20,30,40,1,nan,1", "NaN"),            # class column (issue 12 row 10)
    ("1,1,10,20,30,40,1,1,nan", "NaN"),            # visibility column
    ("1,1,10,20,1e308,40,1,1,1", "out of range"),  # overflowing box (row 15)
    ("1,1,10,20,30,1e308,1,1,1", "out of range"),
    ("1,1,10,20,30,40,1,14,1", "class"),
    ("1,1,10,20,30,40,1,1.5,1", "class"),
    ("1,1,10,20,30,40,2,1,1", "mark"),
    ("1,1,10,20,30,40,1,1,1.5", "visibility"),
    ("1,2,11,21,30,40,1,1,1", "appears twice in frame 1 (also line 1)"),  # repeated id (row 12)
])
def test_malformed_lines_name_file_and_line(tmp_path, line, needle):
    path = tmp_path / "gt.txt"
    path.write_text("1,2,10,20,30,40,1,1,1\n" + line + "\n")
    with pytest.raises(CvsuiteError) as info:
        read_mot_txt(path, "gt", num_frames=50)
    assert f"{path}:2" in str(info.value) and needle in str(info.value)


def test_inconsistent_column_count(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n2,-1,10,20,30,40,0.9\n")
    with pytest.raises(CvsuiteError, match=r"det.txt:2: 7 columns but line 1 has 10"):
        read_mot_txt(path, "det")


def test_missing_seqinfo(tmp_path):
    with pytest.raises(CvsuiteError, match="missing seqinfo.ini"):
        MOTSequence.open(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=x\n")
    with pytest.raises(CvsuiteError, match="missing key seqLength"):
        MOTSequence.open(tmp_path)


def test_box_iou_against_explicit_loop():
    rng = np.random.default_rng(0)
    a = np.c_[rng.uniform(0, 50, (5, 2)), rng.uniform(1, 30, (5, 2))]
    b = np.c_[rng.uniform(0, 50, (4, 2)), rng.uniform(1, 30, (4, 2))]
    got = box_iou(a, b)
    for i in range(5):
        for j in range(4):
            x1, y1 = max(a[i, 0], b[j, 0]), max(a[i, 1], b[j, 1])
            x2, y2 = min(a[i, 0] + a[i, 2], b[j, 0] + b[j, 2]), min(a[i, 1] + a[i, 3], b[j, 1] + b[j, 3])
            inter = max(0, x2 - x1) * max(0, y2 - y1)
            union = a[i, 2] * a[i, 3] + b[j, 2] * b[j, 3] - inter
            assert got[i, j] == pytest.approx(inter / union)


def test_repeated_id_in_result_names_file_and_line(tmp_path):
    path = tmp_path / "SEQ.txt"
    path.write_text("1,1,10,20,30,40,0.9,-1,-1,-1\n1,2,50,20,30,40,0.9,-1,-1,-1\n"
                    "2,1,11,20,30,40,0.9,-1,-1,-1\n1,2,51,20,30,40,0.9,-1,-1,-1\n")
    with pytest.raises(CvsuiteError, match=r"SEQ.txt:4: id 2 appears twice in frame 1 \(also line 2\)"):
        read_mot_txt(path, "res")
    path.write_text("1,-1,10,20,30,40,0.9\n1,-1,50,20,30,40,0.8\n")
    assert len(read_mot_txt(path, "det")) == 2  # detections carry no ids
