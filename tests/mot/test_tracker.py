"""The online tracker: batched Kalman filter vs an explicit one, ids kept on scripted crossings."""
from __future__ import annotations

import numpy as np
import pytest

from apps.mot.tracker import Tracker, TrackerConfig, ltwh_to_xyah

W, H = 20.0, 50.0


def _run(tracker: Tracker, dets_per_frame, embs_per_frame=None) -> dict[int, list[int]]:
    """Feed frames; return gt index -> list of output ids over time (det order = gt order)."""
    seen: dict[int, list[int]] = {}
    for t, (boxes, gt_idx) in enumerate(dets_per_frame):
        embs = None if embs_per_frame is None else embs_per_frame[t]
        res = tracker.update(boxes, np.full(len(boxes), 0.9), embs)
        for tid, d in zip(res.ids, res.det_index):
            seen.setdefault(int(gt_idx[d]), []).append(int(tid))
    return seen


def _crossing(frames: int = 40, speed: float = 4.0, gap: range | None = None, bounce: bool = False):
    """Two objects walking towards each other on the same row; optional undetected gap and bounce."""
    out = []
    turn = gap.start if gap is not None else frames
    for t in range(frames):
        if bounce and t >= turn:
            xa = 40 + speed * turn - speed * (t - turn)
        else:
            xa = 40 + speed * t
        xb = 200 - (xa - 40)
        if gap is not None and t in gap:
            out.append((np.zeros((0, 4)), np.zeros(0, int)))
            continue
        jitter = 0.5 * np.sin([t, t + 1.3])
        out.append((np.array([[xa + jitter[0], 60, W, H], [xb + jitter[1], 62, W, H]]), np.array([0, 1])))
    return out


def test_batched_kalman_matches_explicit_filter():
    rng = np.random.default_rng(0)
    tracker = Tracker(TrackerConfig(appearance=False))
    boxes0 = np.array([[10.0, 20, 30, 60], [100, 50, 20, 40]])
    tracker._add(boxes0, None, first_frame=True)
    # explicit per-track constant-velocity filter (same noise model) as the reference
    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    Hm = np.eye(4, 8)
    means, covs = [], []
    for z in ltwh_to_xyah(boxes0):
        h = z[3]
        std = np.array([2 * h / 20, 2 * h / 20, 1e-2, 2 * h / 20, 10 * h / 160, 10 * h / 160, 1e-5, 10 * h / 160])
        means.append(np.r_[z, np.zeros(4)])
        covs.append(np.diag(std ** 2))
    for _ in range(5):
        tracker._predict()
        for k in range(2):
            h = means[k][3]
            q = np.array([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160]) ** 2
            means[k] = F @ means[k]
            covs[k] = F @ covs[k] @ F.T + np.diag(q)
        boxes = boxes0 + rng.normal(0, 2, boxes0.shape) + [[5, 1, 0, 0]]
        tracker._kalman_update(np.array([0, 1]), boxes)
        for k, z in enumerate(ltwh_to_xyah(boxes)):
            h = means[k][3]
            R = np.diag(np.array([h / 20, h / 20, 1e-1, h / 20]) ** 2)
            S = Hm @ covs[k] @ Hm.T + R
            K = covs[k] @ Hm.T @ np.linalg.inv(S)
            means[k] = means[k] + K @ (z - Hm @ means[k])
            covs[k] = covs[k] - K @ S @ K.T
        boxes0 = boxes
    np.testing.assert_allclose(tracker.mean, np.stack(means), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tracker.cov, np.stack(covs), rtol=1e-9, atol=1e-9)


def test_motion_keeps_ids_through_a_crossing():
    seen = _run(Tracker(TrackerConfig(appearance=False)), _crossing())
    assert len(set(seen[0])) == 1 and len(set(seen[1])) == 1 and seen[0][0] != seen[1][0]
    assert len(seen[0]) == 40  # confirmed on the first frame, reported every frame


def test_lost_track_is_recovered_after_a_short_occlusion():
    frames = _crossing(gap=range(18, 23))
    seen = _run(Tracker(TrackerConfig(appearance=False)), frames)
    assert len(set(seen[0])) == 1 and len(set(seen[1])) == 1 and seen[0][0] != seen[1][0]


def test_appearance_keeps_ids_when_motion_is_fooled():
    """Both objects vanish, turn around while unseen and reappear: only appearance can tell."""
    frames = _crossing(frames=34, speed=3.0, gap=range(16, 22), bounce=True)
    rng = np.random.default_rng(1)
    protos = np.eye(8)[:2]
    embs = []
    for boxes, gt_idx in frames:
        e = protos[gt_idx] + rng.normal(0, 0.05, (len(gt_idx), 8))
        embs.append((e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32))
    with_app = _run(Tracker(TrackerConfig(), embed_dim=8), frames, embs)
    assert len(set(with_app[0])) == 1 and len(set(with_app[1])) == 1 and with_app[0][0] != with_app[1][0]
    motion = _run(Tracker(TrackerConfig(appearance=False)), frames)
    assert len(set(motion[0])) > 1 or len(set(motion[1])) > 1  # the ablation does swap here


def test_birth_confirmation_and_death():
    cfg = TrackerConfig(appearance=False, n_init=2, max_lost=3)
    tracker = Tracker(cfg)
    assert len(tracker.update(np.zeros((0, 4)), np.zeros(0)).ids) == 0
    box = np.array([[10.0, 10, 20, 40]])
    assert len(tracker.update(box, [0.9]).ids) == 0          # tentative: not reported
    assert list(tracker.update(box, [0.9]).ids) == [1]       # confirmed on the second hit
    for _ in range(3):
        tracker.update(np.zeros((0, 4)), np.zeros(0))
    assert len(tracker.tid) == 1                              # lost, kept for re-id
    tracker.update(np.zeros((0, 4)), np.zeros(0))
    assert len(tracker.tid) == 0                              # dropped after max_lost
    assert len(tracker.update(box, [0.3]).ids) == 0           # a weak detection starts nothing


def test_n_init_one_confirms_at_birth():
    tracker = Tracker(TrackerConfig(appearance=False, n_init=1))
    tracker.update(np.zeros((0, 4)), np.zeros(0))
    box = np.array([[10.0, 10, 20, 40]])
    first = tracker.update(box, [0.9])
    assert list(first.ids) == [1] and list(first.det_index) == [0]   # reported on its first frame
    assert list(tracker.update(box + [[2, 0, 0, 0]], [0.9]).ids) == [1]


def test_low_score_detections_extend_tracks():
    tracker = Tracker(TrackerConfig(appearance=False))
    box = np.array([[10.0, 10, 20, 40]])
    first = tracker.update(box, [0.9]).ids
    for k in range(1, 5):
        res = tracker.update(box + [[k, 0, 0, 0]], [0.3])  # occluded: low confidence
        assert list(res.ids) == list(first)
    assert pytest.approx(res.boxes[0, 0], abs=1.0) == 14


def test_backfill_reports_tentative_frames_once_confirmed():
    """n_init=3: frames 1-2 of a track come back as late rows on frame 3, under its new id."""
    boxes = [np.array([[10.0 + 2 * k, 10, 20, 40]]) for k in range(5)]
    tracker = Tracker(TrackerConfig(appearance=False, n_init=3))
    tracker.update(np.zeros((0, 4)), np.zeros(0))              # frame 1: nothing (births there confirm at once)
    assert len(tracker.update(boxes[0], [0.9]).ids) == 0       # frame 2: tentative, hit 1
    second = tracker.update(boxes[1], [0.8])                   # frame 3: tentative, hit 2
    assert len(second.ids) == 0 and second.late is None
    third = tracker.update(boxes[2], [0.9])                    # frame 4: confirmed
    assert list(third.ids) == [1]
    assert list(third.late.frames) == [2, 3] and list(third.late.ids) == [1, 1]
    np.testing.assert_allclose(third.late.boxes, np.concatenate(boxes[:2]))
    np.testing.assert_allclose(third.late.scores, [0.9, 0.8])
    assert tracker.update(boxes[3], [0.9]).late is None        # reported once only
    assert not tracker.pending


def test_backfill_forgets_tracks_that_die_tentative_and_can_be_disabled():
    far = np.array([[300.0, 10, 20, 40]])
    box = np.array([[10.0, 10, 20, 40]])
    tracker = Tracker(TrackerConfig(appearance=False, n_init=2))
    tracker.update(np.zeros((0, 4)), np.zeros(0))
    tracker.update(far, [0.9])                                 # tentative ...
    tracker.update(np.zeros((0, 4)), np.zeros(0))              # ... unmatched: removed
    assert not tracker.pending and len(tracker.tid) == 0
    tracker.update(box, [0.9])
    res = tracker.update(box, [0.9])
    assert list(res.ids) == [1] and list(res.late.frames) == [4] and list(res.late.ids) == [1]

    off = Tracker(TrackerConfig(appearance=False, n_init=2, backfill=False))
    off.update(np.zeros((0, 4)), np.zeros(0))
    off.update(box, [0.9])
    res = off.update(box, [0.9])
    assert list(res.ids) == [1] and res.late is None and not off.pending


def test_gap_fill_reports_interpolated_boxes_for_missed_frames():
    """A confirmed track missing 3 frames and found again gets those frames as late rows, boxes
    linear between its last reported box and the new one; longer gaps or gap_fill=0 add nothing."""
    def walk(cfg: TrackerConfig, missing: range):
        tracker = Tracker(cfg)
        reported, late = {}, []
        for f in range(1, 16):
            box = np.array([[10.0 + 3 * f, 10, 20, 40]])
            res = tracker.update(box if f not in missing else np.zeros((0, 4)), [0.9] if f not in missing else [])
            for tid, b in zip(res.ids, res.boxes):
                reported[f] = (int(tid), b)
            if res.late is not None:
                late.append(res.late)
        return reported, late

    reported, late = walk(TrackerConfig(appearance=False, gap_fill=3), range(6, 9))
    assert len(late) == 1 and list(late[0].frames) == [6, 7, 8] and set(late[0].ids) == {reported[9][0]}
    before, after = reported[5][1], reported[9][1]
    for k, box in enumerate(late[0].boxes, start=1):
        np.testing.assert_allclose(box, before + k / 4 * (after - before))
    assert walk(TrackerConfig(appearance=False, gap_fill=2), range(6, 9))[1] == []   # gap longer than allowed
    assert walk(TrackerConfig(appearance=False, gap_fill=0), range(6, 9))[1] == []   # off


def test_bench_gap_interpolation_matches_tracker_gap_fill():
    """The benchmark's offline interpolation for the peers fills exactly what gap_fill fills online."""
    from apps.mot.data import MOTTable
    from evaluation.bench_mot import interpolate_gaps

    tracker = Tracker(TrackerConfig(appearance=False, gap_fill=3))
    f_, i_, b_, late = [], [], [], []
    for f in range(1, 16):
        missing = f in range(6, 9)
        res = tracker.update(np.zeros((0, 4)) if missing else np.array([[10.0 + 3 * f, 10, 20, 40]]),
                             [] if missing else [0.9])
        f_ += [f] * len(res.ids)
        i_ += res.ids.tolist()
        b_ += res.boxes.tolist()
        if res.late is not None:
            late.append(res.late)
    online = MOTTable.from_rows(f_, i_, b_)
    filled = interpolate_gaps(online, 3)
    new = np.isin(filled.frame, [6, 7, 8])
    np.testing.assert_array_equal(filled.frame[new], late[0].frames)
    np.testing.assert_allclose(filled.boxes[new], late[0].boxes)
    assert len(interpolate_gaps(online, 2)) == len(online)


def test_benchmark_json_writes_mot_scores_in_percent() -> None:
    """The suite's unit for MOTA/IDF1/HOTA/AssA is percent (README, Units); counts and speeds are untouched."""
    from evaluation.bench_mot import in_percent

    report = {"test": {"SORT": {"IDF1": 0.5, "HOTA": 0.25, "MOTA": -0.1, "AssA": 1.0, "IDSW": 3, "fps": 10.0,
                                "seeds": {"0": {"IDF1": 0.4, "FN": 7}}, "IDF1_std": 0.01}},
              "tuned": {"SORT": {"high_thresh": 0.6}}}
    out = in_percent(report)
    row = out["test"]["SORT"]
    assert (row["IDF1"], row["HOTA"], row["MOTA"], row["AssA"]) == (50.0, 25.0, -10.0, 100.0)
    assert row["IDF1_std"] == 1.0 and row["seeds"]["0"] == {"IDF1": 40.0, "FN": 7}
    assert (row["IDSW"], row["fps"]) == (3, 10.0) and out["tuned"] == report["tuned"]
    assert report["test"]["SORT"]["IDF1"] == 0.5  # the input report is not modified
