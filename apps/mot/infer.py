"""Tracking a sequence or a video: detections (file or torchvision detector) -> tracker -> results.

Frames are only decoded when something needs pixels (appearance embeddings, a detector, or
``--save-video``); motion-only tracking of public detections reads no image at all and never
imports torch.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from shared.errors import CvsuiteError, UsageError

from .data import MOTSequence, MOTTable, VideoSource, read_mot_txt
from .tracker import Tracker, TrackerConfig

if TYPE_CHECKING:  # the motion-only path never imports torch (it costs ~2 s of CPU per call)
    from shared.guard import OutputGuard

    from .model import Embedder

DETECTORS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
             "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn",
             "ssdlite320_mobilenet_v3_large")


class TorchvisionDetector:
    """A torchvision detection model built without downloads and loaded from a local weights file.

    Keeps boxes of ``label`` (COCO person = 1) with score >= ``min_score``; returns ltwh + scores.
    """

    def __init__(self, name: str, weights: str | Path, label: int = 1, min_score: float = 0.1,
                 device: str = "cpu") -> None:
        import torch
        import torchvision.models.detection as tvd

        from shared.weights import load_into, load_state_dict

        if name not in DETECTORS:
            raise UsageError(f"--detector must be one of {', '.join(DETECTORS)}, got {name!r}")
        state = load_state_dict(weights)
        num_classes = 91
        for key, value in state.items():  # follow the file's class count (COCO: 91)
            if key.endswith(("cls_score.weight", "cls_logits.weight")) and value.ndim >= 1:
                num_classes = int(value.shape[0]) if key.endswith("cls_score.weight") else num_classes
                break
        self.model = getattr(tvd, name)(weights=None, weights_backbone=None, num_classes=num_classes)
        load_into(self.model, state, weights, strict=True)
        self.model.eval().to(device)
        self.device, self.label, self.min_score, self.torch = device, label, min_score, torch

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.no_grad():
            x = torch.from_numpy(frame).permute(2, 0, 1).float().div(255).to(self.device)
            out = self.model([x])[0]
        keep = (out["labels"] == self.label) & (out["scores"] >= self.min_score)
        xyxy = out["boxes"][keep].cpu().numpy().astype(np.float64)
        boxes = np.stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], 1)
        return boxes.reshape(-1, 4), out["scores"][keep].cpu().numpy().astype(np.float64)


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per id (golden-ratio hue steps)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(255 * b), int(255 * g), int(255 * r)


def draw_tracks(frame_rgb: np.ndarray, ids: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """BGR copy of the frame with each box and its id drawn."""
    import cv2

    image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    for tid, (l, t, w, h) in zip(ids, boxes):
        colour = id_colour(int(tid))
        p1, p2 = (int(round(l)), int(round(t))), (int(round(l + w)), int(round(t + h)))
        cv2.rectangle(image, p1, p2, colour, 2)
        cv2.putText(image, str(int(tid)), (p1[0] + 2, max(p1[1] + 12, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)
    return image


VIDEO_OUT_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


class VideoOut:
    """Writes annotated frames to an .mp4/.avi file or, for a directory path, numbered .jpg files."""

    def __init__(self, path: str | Path, fps: float, guard: "OutputGuard | None" = None) -> None:
        self.path, self.fps, self.writer, self.count, self.guard = Path(path), fps, None, 0, guard

    @property
    def is_folder(self) -> bool:
        return self.path.suffix.lower() not in VIDEO_OUT_SUFFIXES

    def write(self, image_bgr: np.ndarray) -> None:
        import cv2

        self.count += 1
        if self.is_folder:
            self.path.mkdir(parents=True, exist_ok=True)
            target = self.path / f"{self.count:06d}.jpg"
            if self.guard is not None:
                self.guard.file(target)
            from shared.data.images import write_image

            write_image(target, image_bgr[..., ::-1])  # atomic; never through a link at the frame's name
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
            h, w = image_bgr.shape[:2]
            from contextlib import ExitStack

            from shared.guard import atomic_output

            self._commit = ExitStack()  # the video goes to a fresh temp file, renamed over the output on close
            self._tmp = self._commit.enter_context(atomic_output(self.path))
            self.writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise CvsuiteError(f"{self.path}: cannot open a video writer (codec unavailable); "
                                   f"pass a directory to get .jpg frames instead")
        self.writer.write(image_bgr)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            self._commit.close()


def track(source: MOTSequence | VideoSource, det: MOTTable | None = None,
          detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
          embedder: Embedder | None = None, cfg: TrackerConfig | None = None,
          save_video: str | Path | None = None, guard: "OutputGuard | None" = None) -> MOTTable:
    """Run the online tracker over ``source``; returns the result table (MOTChallenge rows).

    ``guard`` (the command's :class:`shared.guard.OutputGuard`) checks every frame file written
    into a ``save_video`` folder."""
    cfg = cfg or TrackerConfig()
    if det is None and detector is None:
        raise UsageError("tracking needs detections: --det FILE or --detector NAME --detector-weights PATH")
    use_app = cfg.appearance and embedder is not None
    tracker = Tracker(cfg, embed_dim=embedder.dim if use_app else 0)
    need_pixels = use_app or detector is not None or save_video is not None
    video = VideoOut(save_video, getattr(source, "info", source).frame_rate, guard) if save_video else None
    rows = det.frame_rows() if det is not None else {}
    empty = np.zeros(0, np.int64)
    out_f, out_id, out_box, out_conf = [], [], [], []

    def frames():
        if need_pixels or not isinstance(source, MOTSequence):
            yield from source.frames()
        else:  # public detections, motion only: no decoding; the work is bounded by the detections
            # present, not by seqLength: a stretch with no detection and no live track is skipped
            # (updating an empty tracker with no boxes changes nothing but its frame counter)
            with_rows = sorted(int(f) for f in rows)
            f = 1
            while f <= len(source):
                if not len(tracker.tid) and f not in rows:
                    later = bisect.bisect_left(with_rows, f)
                    if later == len(with_rows):
                        return
                    f = with_rows[later]
                    tracker.frame = f - 1
                yield f, None
                f += 1

    try:
        for frame_no, image in frames():
            if detector is not None:
                boxes, scores = detector(image)
            else:
                r = rows.get(frame_no, empty)
                boxes, scores = det.boxes[r], det.conf[r]
            embs = embedder(image, boxes) if use_app and len(boxes) else None
            if use_app and embs is None:
                embs = np.zeros((0, embedder.dim), np.float32)
            res = tracker.update(boxes, scores, embs)
            out_f.append(np.full(len(res.ids), frame_no))
            out_id.append(res.ids)
            out_box.append(res.boxes)
            out_conf.append(res.scores)
            if res.late is not None:  # tentative frames of tracks confirmed now (cfg.backfill)
                out_f.append(frame_no - (tracker.frame - res.late.frames))
                out_id.append(res.late.ids)
                out_box.append(res.late.boxes)
                out_conf.append(res.late.scores)
            if video is not None:  # the video shows tracks as known online (no late rows)
                video.write(draw_tracks(image, res.ids, res.boxes))
    finally:
        if video is not None:
            video.close()
    if not out_f:
        return MOTTable.empty()
    return MOTTable.from_rows(np.concatenate(out_f), np.concatenate(out_id), np.concatenate(out_box),
                              np.concatenate(out_conf))


def load_detections(path: str | Path, num_frames: int | None) -> MOTTable:
    return read_mot_txt(path, "det", num_frames)
