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

from shared.data.video import VIDEO_OUT_SUFFIXES

from .data import VIDEO_SUFFIXES, FrameFolder, MOTSequence, MOTTable, VideoSource, read_mot_txt
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


class HogDetector:
    """OpenCV's offline pedestrian detector (HOG features + the default linear SVM, Dalal & Triggs).

    Weak next to a CNN detector but needs no weights file, so a street video can be tracked out of
    the box (``--detector hog``). Frames are upscaled by ``upscale`` first (the SVM window is
    64x128 px, so people shorter than ~130 px are missed at 1x). OpenCV's boxes include the
    window's margin around the person; they are tightened by 15 % of the width and 5 % of the
    height per side (the margin of the 64x128 training window). The SVM margin ``m`` becomes a
    confidence ``1 / (1 + exp(-m))``: windows down to ``hit_threshold`` (default -0.5, confidence
    0.38) are kept so the tracker's low-score stage sees the weak ones.
    """

    def __init__(self, upscale: float = 1.5, hit_threshold: float = -0.5, stride: int = 8) -> None:
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise CvsuiteError("this OpenCV build has no HOGDescriptor (install opencv-contrib-python-headless, "
                               "as cvsuite's requirements do)")
        self.cv2, self.upscale, self.hit_threshold, self.stride = cv2, float(upscale), float(hit_threshold), stride
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self.cv2
        grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
        if self.upscale != 1.0:
            grey = cv2.resize(grey, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        rects, margins = self.hog.detectMultiScale(grey, hitThreshold=self.hit_threshold,
                                                   winStride=(self.stride, self.stride), padding=(8, 8),
                                                   scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = np.asarray(rects, np.float64).reshape(-1, 4) / self.upscale
        boxes[:, 0] += 0.15 * boxes[:, 2]
        boxes[:, 1] += 0.05 * boxes[:, 3]
        boxes[:, 2] *= 0.7
        boxes[:, 3] *= 0.9
        scores = 1.0 / (1.0 + np.exp(-np.asarray(margins, np.float64).reshape(-1)))
        return boxes, scores


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable RGB colour per id: golden-ratio hue steps, so consecutive ids get far-apart hues,
    alternating between two brightness levels so ids whose hues land close still differ."""
    import colorsys

    hue = (track_id * 0.618034) % 1.0
    value = 1.0 if track_id % 2 else 0.75
    r, g, b = colorsys.hsv_to_rgb(hue, 0.9, value)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_tracks(frame_rgb: np.ndarray, ids: np.ndarray, boxes: np.ndarray, frame_no: int | None = None) -> np.ndarray:
    """RGB copy of the frame with each box, its id on a filled label and the frame number drawn.

    Line width and font size follow the image size (legible on 320 px and 4K frames alike)."""
    import cv2

    image = np.ascontiguousarray(frame_rgb).copy()
    height, width = image.shape[:2]
    scale = max(height, width) / 1000.0
    thickness = max(1, int(round(2 * scale)))
    font_scale = max(0.4, 0.6 * scale)
    font_thick = max(1, int(round(1.5 * scale)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for tid, (l, t, w, h) in zip(ids, boxes):
        colour = id_colour(int(tid))
        p1, p2 = (int(round(l)), int(round(t))), (int(round(l + w)), int(round(t + h)))
        cv2.rectangle(image, p1, p2, colour, thickness, cv2.LINE_AA)
        text = str(int(tid))
        (tw, th), base = cv2.getTextSize(text, font, font_scale, font_thick)
        x0 = min(max(p1[0], 0), max(width - tw - 4, 0))
        y0 = p1[1] - th - base - 2 if p1[1] - th - base - 2 >= 0 else p1[1]  # above the box, else inside
        cv2.rectangle(image, (x0, y0), (x0 + tw + 4, y0 + th + base + 2), colour, -1)
        text_colour = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        cv2.putText(image, text, (x0 + 2, y0 + th + 1), font, font_scale, text_colour, font_thick, cv2.LINE_AA)
    if frame_no is not None:
        text = f"frame {frame_no}"
        (tw, th), base = cv2.getTextSize(text, font, font_scale, font_thick)
        cv2.rectangle(image, (0, 0), (tw + 8, th + base + 6), (0, 0, 0), -1)
        cv2.putText(image, text, (4, th + 3), font, font_scale, (255, 255, 255), font_thick, cv2.LINE_AA)
    return image


class VideoOut:
    """Annotated frames to an H.264 ``.mp4`` / MJPG ``.avi`` (:class:`shared.data.video.VideoWriter`) or,
    for a path without a video suffix, numbered ``.jpg`` files in that folder."""

    def __init__(self, path: str | Path, fps: float, guard: "OutputGuard | None" = None) -> None:
        self.path, self.fps, self.writer, self.count, self.guard = Path(path), fps, None, 0, guard
        suffix = self.path.suffix.lower()
        if suffix in VIDEO_SUFFIXES and suffix not in VIDEO_OUT_SUFFIXES:
            raise UsageError(f"--save-video {self.path}: write .mp4 (H.264) or .avi, or give a folder for .jpg frames")

    @property
    def is_folder(self) -> bool:
        return self.path.suffix.lower() not in VIDEO_OUT_SUFFIXES

    def write(self, image_rgb: np.ndarray) -> None:
        from shared.data.images import write_image
        from shared.data.video import VideoWriter

        self.count += 1
        if self.is_folder:
            self.path.mkdir(parents=True, exist_ok=True)
            target = self.path / f"{self.count:06d}.jpg"
            if self.guard is not None:
                self.guard.file(target)
            write_image(target, image_rgb)
            return
        if self.writer is None:
            self.writer = VideoWriter(self.path, self.fps)
        self.writer.write(image_rgb)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def track(source: MOTSequence | FrameFolder | VideoSource, det: MOTTable | None = None,
          detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
          embedder: Embedder | None = None, cfg: TrackerConfig | None = None,
          save_video: str | Path | None = None, guard: "OutputGuard | None" = None,
          progress: bool = False) -> MOTTable:
    """Run the online tracker over ``source``; returns the result table (MOTChallenge rows).

    ``guard`` (the command's :class:`shared.guard.OutputGuard`) checks every frame file written
    into a ``save_video`` folder. ``progress`` shows a tqdm bar (frames/s) on a terminal."""
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

    total = len(source) if isinstance(source, (MOTSequence, FrameFolder)) else (source.length_hint or None)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc=f"track {source.name}", disable=None, leave=False)
    try:
        for frame_no, image in frames():
            if bar is not None:
                bar.update(1)
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
                video.write(draw_tracks(image, res.ids, res.boxes, frame_no))
    finally:
        if bar is not None:
            bar.close()
        if video is not None:
            video.close()
    if not out_f:
        return MOTTable.empty()
    return MOTTable.from_rows(np.concatenate(out_f), np.concatenate(out_id), np.concatenate(out_box),
                              np.concatenate(out_conf))


def load_detections(path: str | Path, num_frames: int | None) -> MOTTable:
    return read_mot_txt(path, "det", num_frames)
