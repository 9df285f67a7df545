"""Online multi-object tracker: Kalman motion + IoU + appearance cosine, ByteTrack-style two stages.

All track state lives in parallel NumPy arrays (structure of arrays), so the Kalman predict and
update run once per frame for all tracks, not once per track: association of 50 detections per
frame costs well under a millisecond on one core.

Per frame:
1. Predict every track (constant-velocity Kalman filter on ``cx, cy, aspect, height``).
2. Stage 1: high-score detections vs tracked + lost tracks. Cost ``min(1 - IoU, cosine distance)``
   where the cosine distance to the track's EMA prototype only counts when it is small and the
   detection is near the track (IoU gate for tracked tracks, a centre-distance gate for lost
   ones: this is the re-identification path after occlusions). ``--no-appearance`` uses 1 - IoU.
3. Stage 2: tracked tracks left over vs low-score detections, IoU only (ByteTrack): occluded
   objects' weak detections keep their tracks alive.
4. Stage 3: tentative tracks vs the remaining high-score detections (IoU).
5. Unmatched tracked -> lost (kept ``max_lost`` frames for re-id), unmatched tentative -> removed,
   remaining confident detections -> new tentative tracks, confirmed after ``n_init`` hits.
6. Late rows (``FrameResult.late``) for result files: a newly confirmed track's tentative frames
   (``backfill``) and the missed frames of a lost track found again within ``gap_fill`` frames
   (linear interpolation). They never change the association.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

TENTATIVE, TRACKED, LOST = 0, 1, 2
_W_POS, _W_VEL = 1.0 / 20, 1.0 / 160
_DIAG = np.arange(8)
_Q_SCALE = np.array([_W_POS, _W_POS, 0, _W_POS, _W_VEL, _W_VEL, 0, _W_VEL]) ** 2   # times h^2
_Q_FLOOR = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0]) ** 2


@dataclass
class TrackerConfig:
    """Thresholds of the association cascade."""

    high_thresh: float = 0.5        # detections at or above: stage 1 / new tracks
    low_thresh: float = 0.1         # detections between low and high: stage 2 only
    new_track_thresh: float = 0.6   # a leftover detection starts a track only at or above this
    match_thresh: float = 0.8       # stage 1 accepts cost < this
    low_match_thresh: float = 0.5   # stage 2 (IoU only)
    tentative_match_thresh: float = 0.7
    appearance: bool = True
    appearance_thresh: float = 0.25  # cosine distance above which appearance is ignored
    proximity_thresh: float = 0.5    # appearance of a tracked track only counts if 1 - IoU below this
    reid_gate: float = 1.5           # lost tracks: centre distance < gate * box height
    ema: float = 0.9                 # prototype EMA momentum
    n_init: int = 2                  # hits before a track is confirmed (1: at birth)
    max_lost: int = 30
    confident_iou: float = 0.5       # pseudo labels: stage-1 matches with IoU at least this
    backfill: bool = True            # on confirmation, also report the track's tentative frames (FrameResult.late)
    gap_fill: int = 10               # a lost track found again after <= this many missed frames gets them
                                     # reported late, boxes interpolated linearly (0: off)


@dataclass
class FrameResult:
    """Tracks reported for one frame.

    ``det_index[k]`` is the input detection that updated output ``k`` and ``confident[k]`` says
    whether that association is confident (stage 1, confirmed track, high IoU and score): those
    are the pseudo labels for training on unlabelled video.
    """

    ids: np.ndarray
    boxes: np.ndarray      # (M, 4) left, top, width, height
    scores: np.ndarray
    det_index: np.ndarray
    confident: np.ndarray
    late: "LateRows | None" = None


@dataclass
class LateRows:
    """Rows for earlier frames, reported late: the tentative frames of tracks confirmed this frame
    (``TrackerConfig.backfill``). Writers of result files insert them at their ``frames``."""

    frames: np.ndarray     # (K,) frame numbers (1-based, as counted by update calls)
    ids: np.ndarray
    boxes: np.ndarray      # (K, 4) ltwh: the detections that started / extended the tentative track
    scores: np.ndarray


def ltwh_to_xyah(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b, dtype=np.float64)
    out[:, 0] = b[:, 0] + b[:, 2] / 2
    out[:, 1] = b[:, 1] + b[:, 3] / 2
    out[:, 2] = b[:, 2] / b[:, 3]
    out[:, 3] = b[:, 3]
    return out


def xyah_to_ltwh(m: np.ndarray) -> np.ndarray:
    out = np.empty((m.shape[0], 4))
    w = m[:, 2] * m[:, 3]
    out[:, 0] = m[:, 0] - w / 2
    out[:, 1] = m[:, 1] - m[:, 3] / 2
    out[:, 2] = w
    out[:, 3] = m[:, 3]
    return out


def iou_ltwh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between ``(N, 4)`` and ``(M, 4)`` ltwh boxes."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0, None], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1, None], b[None, :, 1])
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


def _without(items: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``items`` minus the entries at ``positions`` (a cheaper np.delete for small arrays)."""
    keep = np.ones(len(items), bool)
    keep[positions] = False
    return items[keep]


def assign(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment keeping only pairs with cost < thresh (Hungarian, scipy)."""
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    capped = np.minimum(cost, thresh + 1.0)  # pairs above thresh are never worth taking
    rows, cols = linear_sum_assignment(capped)
    keep = cost[rows, cols] < thresh
    return rows[keep], cols[keep]


def _merge_late(a: LateRows | None, b: LateRows) -> LateRows:
    if a is None:
        return b
    return LateRows(np.concatenate([a.frames, b.frames]), np.concatenate([a.ids, b.ids]),
                    np.concatenate([a.boxes, b.boxes]), np.concatenate([a.scores, b.scores]))


class Tracker:
    """Online tracker; call :meth:`update` once per frame in order."""

    def __init__(self, cfg: TrackerConfig | None = None, embed_dim: int = 0):
        self.cfg = cfg or TrackerConfig()
        self.embed_dim = embed_dim
        self.frame = 0
        self.next_id = 1
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.tid = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int8)
        self.hits = np.zeros(0, np.int64)
        self.tsu = np.zeros(0, np.int64)          # frames since last update
        self.proto = np.zeros((0, embed_dim), np.float32)
        self.has_proto = np.zeros(0, bool)
        self.uid = np.zeros(0, np.int64)          # internal key of a track (stable across row removals)
        self.last_box = np.zeros((0, 4))          # ltwh reported at the track's last update
        self.next_uid = 0
        self.pending: dict[int, list[tuple[int, np.ndarray, float]]] = {}  # uid -> tentative frames

    # ---------------------------------------------------------------- Kalman filter (batched)
    def _predict(self) -> None:
        if not len(self.tid):
            return
        m = self.mean
        m[self.state != TRACKED, 7] = 0.0
        q = np.multiply.outer(m[:, 3] ** 2, _Q_SCALE) + _Q_FLOOR  # process noise variances
        m[:, :4] += m[:, 4:]
        # F P F^T with F = [[I, I], [0, I]], blockwise and in place (cheaper than two matmuls)
        P = self.cov
        P[:, :4, :] += P[:, 4:, :]      # rows:    [A+C, B+D; C, D]
        P[:, :, :4] += P[:, :, 4:]      # columns: [A+B+C+D, B+D; C+D, D]
        P[:, _DIAG, _DIAG] += q
        self.tsu += 1

    def _kalman_update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        if not len(rows):
            return
        z = ltwh_to_xyah(boxes)
        m, P = self.mean[rows], self.cov[rows]
        h = m[:, 3]
        r = np.stack([_W_POS * h, _W_POS * h, np.full_like(h, 1e-1), _W_POS * h], 1) ** 2
        S = P[:, :4, :4].copy()
        idx = np.arange(4)
        S[:, idx, idx] += r
        PHt = P[:, :, :4]                                   # (n, 8, 4)
        K = np.linalg.solve(S, PHt.transpose(0, 2, 1)).transpose(0, 2, 1)  # S symmetric
        innov = z - m[:, :4]
        self.mean[rows] = m + np.matmul(K, innov[:, :, None])[:, :, 0]
        self.cov[rows] = P - np.matmul(K, PHt.transpose(0, 2, 1))  # K S K^T = K (P H^T)^T

    def _initiate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = ltwh_to_xyah(boxes)
        n = len(z)
        mean = np.zeros((n, 8))
        mean[:, :4] = z
        h = z[:, 3]
        std = np.stack([2 * _W_POS * h, 2 * _W_POS * h, np.full_like(h, 1e-2), 2 * _W_POS * h,
                        10 * _W_VEL * h, 10 * _W_VEL * h, np.full_like(h, 1e-5), 10 * _W_VEL * h], 1)
        cov = np.zeros((n, 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = std * std
        return mean, cov

    # ---------------------------------------------------------------- association
    def _appearance_cost(self, tracks: np.ndarray, embs: np.ndarray, iou_d: np.ndarray,
                         track_boxes: np.ndarray, det_boxes: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        emb_d = 1.0 - self.proto[tracks] @ embs.T
        emb_d[~self.has_proto[tracks]] = 1.0
        emb_d[emb_d > cfg.appearance_thresh] = 1.0
        lost = self.state[tracks] == LOST
        gate = iou_d > cfg.proximity_thresh
        if lost.any():
            tb, db = track_boxes[lost], det_boxes
            dx = (tb[:, 0, None] + tb[:, 2, None] / 2) - (db[None, :, 0] + db[None, :, 2] / 2)
            dy = (tb[:, 1, None] + tb[:, 3, None] / 2) - (db[None, :, 1] + db[None, :, 3] / 2)
            height = np.maximum(tb[:, 3, None], db[None, :, 3])
            gate[lost] = np.hypot(dx, dy) > cfg.reid_gate * height
        emb_d[gate] = 1.0
        return np.minimum(iou_d, emb_d)

    def update(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None = None) -> FrameResult:
        """Advance one frame with detections ``boxes`` (N, 4 ltwh), ``scores`` (N,), optional
        L2-normalised ``embeddings`` (N, D)."""
        cfg = self.cfg
        self.frame += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        use_app = cfg.appearance and embeddings is not None and self.embed_dim > 0
        if use_app:
            embeddings = np.asarray(embeddings, np.float32)
        self._predict()
        track_boxes = xyah_to_ltwh(self.mean) if len(self.tid) else np.zeros((0, 4))
        high = np.flatnonzero(scores >= cfg.high_thresh)
        low = np.flatnonzero((scores >= cfg.low_thresh) & (scores < cfg.high_thresh))
        matched_tracks: list[np.ndarray] = []
        matched_dets: list[np.ndarray] = []
        confident_det = np.zeros(len(scores), bool)

        # stage 1: high dets vs tracked + lost
        pool = np.flatnonzero(self.state != TENTATIVE)
        det_left = high
        if len(pool) and len(high):
            iou = iou_ltwh(track_boxes[pool], boxes[high])
            iou_d = 1.0 - iou
            cost = iou_d
            if use_app:
                cost = self._appearance_cost(pool, embeddings[high], iou_d, track_boxes[pool], boxes[high])
            r, c = assign(cost, cfg.match_thresh)
            matched_tracks.append(pool[r])
            matched_dets.append(high[c])
            conf_mask = (iou[r, c] >= cfg.confident_iou) & (self.hits[pool[r]] >= cfg.n_init)
            confident_det[high[c][conf_mask]] = True
            det_left = _without(high, c)
            pool = _without(pool, r)
        # stage 2: remaining tracked (not lost) vs low dets, IoU only
        tracked_left = pool[self.state[pool] == TRACKED]
        if len(tracked_left) and len(low):
            iou_d = 1.0 - iou_ltwh(track_boxes[tracked_left], boxes[low])
            r, c = assign(iou_d, cfg.low_match_thresh)
            matched_tracks.append(tracked_left[r])
            matched_dets.append(low[c])
            tracked_left = _without(tracked_left, r)
        # stage 3: tentative tracks vs leftover high dets
        tentative = np.flatnonzero(self.state == TENTATIVE)
        if len(tentative) and len(det_left):
            iou_d = 1.0 - iou_ltwh(track_boxes[tentative], boxes[det_left])
            r, c = assign(iou_d, cfg.tentative_match_thresh)
            matched_tracks.append(tentative[r])
            matched_dets.append(det_left[c])
            tentative = _without(tentative, r)
            det_left = _without(det_left, c)

        mt = np.concatenate(matched_tracks) if matched_tracks else np.zeros(0, np.int64)
        md = np.concatenate(matched_dets) if matched_dets else np.zeros(0, np.int64)
        self._kalman_update(mt, boxes[md])
        missed = np.where(self.state[mt] == LOST, self.tsu[mt] - 1, 0)  # frames without a detection
        self.tsu[mt] = 0
        self.hits[mt] += 1
        self.state[tracked_left] = LOST
        self.state[mt[self.state[mt] == LOST]] = TRACKED
        promote = mt[(self.state[mt] == TENTATIVE) & (self.hits[mt] >= cfg.n_init)]
        self.state[promote] = TRACKED
        new_ids = np.arange(self.next_id, self.next_id + len(promote))
        self.tid[promote] = new_ids
        self.next_id += len(promote)
        late = None
        if cfg.backfill and self.pending:
            tentative_mt = self.state[mt] == TENTATIVE
            for row, det in zip(mt[tentative_mt], md[tentative_mt]):  # still tentative: remember this frame
                self.pending[int(self.uid[row])].append((self.frame, boxes[det], float(scores[det])))
            late = self._late_rows(promote)
        if use_app and len(mt):
            strong = scores[md] >= cfg.high_thresh
            t_s, d_s = mt[strong], md[strong]
            e = embeddings[d_s]
            old = self.proto[t_s]
            momentum = np.where(self.has_proto[t_s], np.float32(cfg.ema), np.float32(0.0))[:, None]
            blended = momentum * old + (1 - momentum) * e
            norm = np.sqrt(np.einsum("ij,ij->i", blended, blended))[:, None]
            self.proto[t_s] = blended / np.maximum(norm, 1e-12)
            self.has_proto[t_s] = True

        # output before births/deaths (indices still valid)
        reported = self.state[mt] == TRACKED
        out_rows = mt[reported]
        out_dets = md[reported]
        out_boxes = xyah_to_ltwh(self.mean[out_rows]) if len(out_rows) else np.zeros((0, 4))
        if cfg.gap_fill > 0:
            fill = (missed[reported] >= 1) & (missed[reported] <= cfg.gap_fill)
            if fill.any():
                late = _merge_late(late, self._gap_rows(out_rows[fill], out_boxes[fill], missed[reported][fill],
                                                        scores[out_dets][fill]))
        self.last_box[out_rows] = out_boxes
        result = FrameResult(
            ids=self.tid[out_rows].copy(),
            boxes=out_boxes,
            scores=scores[out_dets],
            det_index=out_dets,
            confident=confident_det[out_dets],
            late=late,
        )

        # deaths: unmatched tentative tracks, lost tracks past max_lost
        dead = np.zeros(len(self.tid), bool)
        dead[tentative] = True
        dead |= (self.state == LOST) & (self.tsu > cfg.max_lost)
        if dead.any():
            if self.pending:
                for key in self.uid[dead & (self.state == TENTATIVE)].tolist():
                    self.pending.pop(key, None)
            self._keep(~dead)
        # births
        births = det_left[scores[det_left] >= cfg.new_track_thresh]
        if len(births):
            confirmed = self.frame == 1 or cfg.n_init <= 1
            self._add(boxes[births], embeddings[births] if use_app else None, first_frame=confirmed)
            if confirmed:  # tracks born on the first frame (ByteTrack) or with n_init=1 are reported at once
                n = len(births)
                result = FrameResult(
                    ids=np.concatenate([result.ids, self.tid[-n:]]),
                    boxes=np.concatenate([result.boxes, boxes[births]]),
                    scores=np.concatenate([result.scores, scores[births]]),
                    det_index=np.concatenate([result.det_index, births]),
                    confident=np.concatenate([result.confident, np.zeros(n, bool)]),
                    late=result.late,
                )
            elif cfg.backfill:
                for row, det in zip(range(len(self.tid) - len(births), len(self.tid)), births):
                    self.pending[int(self.uid[row])] = [(self.frame, boxes[det], float(scores[det]))]
        return result

    def _gap_rows(self, rows: np.ndarray, new_boxes: np.ndarray, missed: np.ndarray, scores: np.ndarray) -> LateRows:
        """Rows for the ``missed`` frames before now of re-found tracks ``rows``: boxes linearly
        interpolated between the last reported box and ``new_boxes``."""
        frames, ids, boxes, out_scores = [], [], [], []
        for row, new, k, sc in zip(rows.tolist(), new_boxes, missed.tolist(), scores.tolist()):
            old = self.last_box[row]
            w = np.arange(1, k + 1)[:, None] / (k + 1)
            frames.append(np.arange(self.frame - k, self.frame))
            ids.append(np.full(k, self.tid[row]))
            boxes.append(old + w * (new - old))
            out_scores.append(np.full(k, sc))
        return LateRows(np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes), np.concatenate(out_scores))

    def _late_rows(self, promoted: np.ndarray) -> LateRows | None:
        """The remembered tentative frames of the tracks ``promoted`` this frame, under their new ids."""
        frames, ids, boxes, scores = [], [], [], []
        for row in promoted.tolist():
            for frame, box, sc in self.pending.pop(int(self.uid[row]), []):
                frames.append(frame)
                ids.append(self.tid[row])
                boxes.append(box)
                scores.append(sc)
        if not frames:
            return None
        return LateRows(np.asarray(frames, np.int64), np.asarray(ids, np.int64),
                        np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64))

    def _keep(self, mask: np.ndarray) -> None:
        for name in ("mean", "cov", "tid", "state", "hits", "tsu", "proto", "has_proto", "uid", "last_box"):
            setattr(self, name, getattr(self, name)[mask])

    def _add(self, boxes: np.ndarray, embs: np.ndarray | None, first_frame: bool) -> None:
        """New tracks; ``first_frame`` ones are confirmed at once (id assigned, state TRACKED)."""
        n = len(boxes)
        mean, cov = self._initiate(boxes)
        tid = np.zeros(n, np.int64)
        state = np.full(n, TENTATIVE, np.int8)
        if first_frame:
            tid = np.arange(self.next_id, self.next_id + n)
            self.next_id += n
            state[:] = TRACKED
        proto = np.zeros((n, self.embed_dim), np.float32)
        has = np.zeros(n, bool)
        if embs is not None:
            proto[:] = embs
            has[:] = True
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.tid = np.concatenate([self.tid, tid])
        self.state = np.concatenate([self.state, state])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.tsu = np.concatenate([self.tsu, np.zeros(n, np.int64)])
        self.proto = np.concatenate([self.proto, proto])
        self.has_proto = np.concatenate([self.has_proto, has])
        self.uid = np.concatenate([self.uid, np.arange(self.next_uid, self.next_uid + n)])
        self.last_box = np.concatenate([self.last_box, np.asarray(boxes, np.float64).reshape(n, 4)])
        self.next_uid += n
