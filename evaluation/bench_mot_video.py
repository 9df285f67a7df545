"""MOT on a real street video with the offline HOG detector: speed per stage and a picture to look at.

There is no ground truth for ``vtest.avi`` (OpenCV's sample pedestrian video, 768x576, 795 frames,
10 fps; ``tools/fetch_vtest.sh`` fetches it from Debian's ``opencv-doc``), so this reports speed and
track statistics, and writes frames with the tracks drawn for a person to check:

* decode only (``cv2.VideoCapture``), HOG detection (``--hog-upscale``), the tracker alone on the
  cached detections (motion only, and with the shipped appearance embedding), and the whole
  ``cvsuite mot track`` command with an H.264 video, each as frames/s (median of ``--repeats``
  for the stages that take < 1 min);
* tracks: count, median length in frames, boxes per frame.

    tools/fetch_vtest.sh runs/data
    python -m evaluation.bench_mot_video --video runs/data/vtest.avi --out evaluation/results
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import shared  # noqa: F401  (compat)
from apps.mot.cli import SHIPPED_FULL
from apps.mot.data import VideoSource
from apps.mot.infer import HogDetector, draw_tracks
from apps.mot.model import Embedder
from apps.mot.tracker import Tracker, TrackerConfig
from shared.data.images import write_image
from shared.weights import shipped_weight


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_tracker(frames: list[np.ndarray], dets: list[tuple[np.ndarray, np.ndarray]], embedder: Embedder | None):
    cfg = TrackerConfig(appearance=embedder is not None)
    tracker = Tracker(cfg, embed_dim=embedder.dim if embedder is not None else 0)
    per_frame = []
    for image, (boxes, scores) in zip(frames, dets):
        embs = embedder(image, boxes) if embedder is not None and len(boxes) else None
        if embedder is not None and embs is None:
            embs = np.zeros((0, embedder.dim), np.float32)
        res = tracker.update(boxes, scores, embs)
        per_frame.append((res.ids.copy(), res.boxes.copy()))
    return per_frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="runs/data/vtest.avi")
    parser.add_argument("--frames", type=int, default=0, help="first N frames only (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hog-upscale", type=float, default=1.5)
    parser.add_argument("--out", default="evaluation/results", help="JSON report + picture")
    parser.add_argument("--work", default="runs/mot_video", help="tracks and the H.264 video of the full command")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    video = Path(args.video)
    if not video.is_file():
        print(f"bench_mot_video: {video} not found; run tools/fetch_vtest.sh first", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = VideoSource(video)

    def decode() -> list[np.ndarray]:
        frames = []
        for index, image in source.frames():
            frames.append(image)
            if args.frames and index >= args.frames:
                break
        return frames

    t_decode, frames = timed(decode, args.repeats)
    n = len(frames)
    hog = HogDetector(upscale=args.hog_upscale)
    t_hog, dets = timed(lambda: [hog(f) for f in frames], 1)
    t_motion, motion = timed(lambda: run_tracker(frames, dets, None), args.repeats)
    embedder = Embedder.from_file(shipped_weight(SHIPPED_FULL))
    t_app, tracks = timed(lambda: run_tracker(frames, dets, embedder), 1)

    # the whole command, as a user runs it (decode + HOG + appearance + H.264 video)
    from shared.cli import main as cvsuite

    t_command, code = None, None
    if not args.frames:  # the command reads the whole video
        work = Path(args.work)
        start = time.perf_counter()
        code = cvsuite(["mot", "track", "--seq", str(video), "--detector", "hog", "--hog-upscale",
                        str(args.hog_upscale), "--out", str(work / "vtest.txt"), "--save-video",
                        str(work / "vtest_tracks.mp4"), "--force"])
        t_command = time.perf_counter() - start

    lengths: dict[int, int] = {}
    for ids, _ in tracks:
        for tid in ids.tolist():
            lengths[tid] = lengths.get(tid, 0) + 1
    boxes_per_frame = [len(d[0]) for d in dets]
    report = {
        "video": video.name, "frames": n, "size": [source.width, source.height], "threads": torch.get_num_threads(),
        "hog_upscale": args.hog_upscale,
        "fps": {"decode": n / t_decode, "hog_detector": n / t_hog, "tracker_motion_only": n / t_motion,
                "tracker_with_appearance": n / t_app,
                "mot_track_command_with_h264_video": (n / t_command) if code == 0 else None},
        "detections_per_frame_mean": float(np.mean(boxes_per_frame)),
        "tracks_with_appearance": len(lengths), "median_track_length_frames": float(np.median(list(lengths.values()))),
        "tracks_motion_only": len({t for ids, _ in motion for t in ids.tolist()}),
    }
    picks = [n // 4, n // 2, (3 * n) // 4]
    panels = [draw_tracks(frames[i], *tracks[i], frame_no=i + 1) for i in picks]
    write_image(out / "mot_vtest_frames.jpg", np.concatenate(panels[:2], axis=1))
    (out / "bench_mot_video.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
