"""Bad input for ``cvsuite mot``: outputs pointed at inputs (issue 12 rows 1-4), NaN in class /
visibility (10), a result without a sequence (11), a repeated id in a frame (12), overflowing boxes
(15), a frame of the wrong size (16), appearance tracking of a sequence without images."""
from __future__ import annotations

import shutil
from pathlib import Path

from .harness import BadCase, text_file

REPO = Path(__file__).resolve().parents[2]
TINY = dict(width=96, height=80, length=4, objects=3, fp_rate=0.3)


def _seq(root: Path) -> Path:
    """A tiny MOTChallenge sequence (seqinfo.ini, img1/, gt/gt.txt, det/det.txt) under ``root``."""
    from apps.mot.synth import SynthConfig, write_sequence

    return write_sequence(root, seed=5, index=0, cfg=SynthConfig(**TINY))


def _gt_res(t: Path) -> tuple[Path, Path, Path]:
    """GT root with one sequence and a results root holding that sequence's (perfect) result."""
    seq = _seq(t / "in" / "gt")
    res = t / "in" / "res"
    res.mkdir(parents=True)
    rows = [",".join(line.split(",")[:6]) + ",1,-1,-1,-1" for line in (seq / "gt" / "gt.txt").read_text().splitlines()]
    text_file(res / f"{seq.name}.txt", rows)
    return seq.parent, res, seq


def _edit_line(path: Path, index: int, column: int, value: str) -> None:
    lines = path.read_text().splitlines()
    parts = lines[index].split(",")
    parts[column] = value
    lines[index] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")


def _shipped_weights(t: Path) -> Path:
    dst = t / "in" / "emb.safetensors"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "weights" / "mot_embed_full.safetensors", dst)
    return dst


# ---- rows 1-4: outputs onto inputs ----------------------------------------------------------------
def save_video_onto_frames(t: Path) -> list:
    seq = _seq(t / "in")
    return ["mot", "track", "--seq", seq, "--out", t / "out" / "r.txt", "--no-appearance", "--save-video", seq / "img1"]


def save_video_onto_input_video(t: Path) -> list:
    import cv2

    seq = _seq(t / "work")
    video = t / "in" / "clip.avi"
    video.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (TINY["width"], TINY["height"]))
    for f in range(1, TINY["length"] + 1):
        writer.write(cv2.imread(str(seq / "img1" / f"{f:06d}.jpg")))
    writer.release()
    det = t / "in" / "clip_det.txt"
    shutil.copy(seq / "det" / "det.txt", det)
    return ["mot", "track", "--seq", video, "--det", det, "--out", t / "out" / "r.txt", "--no-appearance",
            "--save-video", video]


def out_onto_weights(t: Path) -> list:
    seq = _seq(t / "in")
    weights = _shipped_weights(t)
    return ["mot", "track", "--seq", seq, "--weights", weights, "--out", weights]


def json_onto_gt(t: Path) -> list:
    gt, res, seq = _gt_res(t)
    return ["mot", "eval", "--gt", gt, "--res", res, "--json", seq / "gt" / "gt.txt"]


def json_onto_result(t: Path) -> list:
    gt, res, seq = _gt_res(t)
    return ["mot", "eval", "--gt", gt, "--res", res, "--json", res / f"{seq.name}.txt"]


# ---- rows 10-12, 15, 16 ---------------------------------------------------------------------------
def nan_class_eval(t: Path) -> list:
    gt, res, seq = _gt_res(t)
    _edit_line(seq / "gt" / "gt.txt", 1, 7, "nan")
    return ["mot", "eval", "--gt", gt, "--res", res]


def nan_visibility_train(t: Path) -> list:
    seq = _seq(t / "in" / "data")
    _edit_line(seq / "gt" / "gt.txt", 2, 8, "nan")
    return ["mot", "train", "--data", seq.parent, "--out", t / "out" / "run", "--steps", "1",
            "train.batch_size=4", "train.log_every=1"]


def result_without_sequence(t: Path) -> list:
    gt, res, seq = _gt_res(t)
    shutil.copy(res / f"{seq.name}.txt", res / "MOT17-99.txt")
    return ["mot", "eval", "--gt", gt, "--res", res]


def repeated_id_in_frame(t: Path) -> list:
    gt, res, seq = _gt_res(t)
    path = res / f"{seq.name}.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[0]]) + "\n")  # the first row again: its id twice in frame 1
    return ["mot", "eval", "--gt", gt, "--res", res]


def huge_box_det(t: Path) -> list:
    seq = _seq(t / "in")
    _edit_line(seq / "det" / "det.txt", 0, 4, "1e308")
    return ["mot", "track", "--seq", seq, "--out", t / "out" / "r.txt", "--no-appearance"]


def huge_box_gt(t: Path) -> list:
    gt, res, seq = _gt_res(t)
    _edit_line(seq / "gt" / "gt.txt", 0, 5, "1e308")
    return ["mot", "eval", "--gt", gt, "--res", res]


def _tiny_frame(seq: Path) -> None:
    import cv2
    import numpy as np

    cv2.imwrite(str(seq / "img1" / "000002.jpg"), np.zeros((1, 1, 3), np.uint8))


def tiny_frame_track(t: Path) -> list:
    seq = _seq(t / "in")
    _tiny_frame(seq)
    return ["mot", "track", "--seq", seq, "--out", t / "out" / "r.txt", "--weights", _shipped_weights(t)]


def tiny_frame_train(t: Path) -> list:
    seq = _seq(t / "in" / "data")
    _tiny_frame(seq)
    return ["mot", "train", "--data", seq.parent, "--out", t / "out" / "run", "--steps", "1",
            "train.batch_size=4", "train.log_every=1"]


def appearance_without_images(t: Path) -> list:
    seq = _seq(t / "in")
    shutil.rmtree(seq / "img1")
    return ["mot", "track", "--seq", seq, "--out", t / "out" / "r.txt", "--weights", _shipped_weights(t)]


CASES = [
    BadCase("mot-track-save-video-onto-img1", save_video_onto_frames, exit_code=2, match="input folder"),
    BadCase("mot-track-save-video-onto-input-video", save_video_onto_input_video, exit_code=2, match="clip.avi"),
    BadCase("mot-track-out-onto-weights", out_onto_weights, exit_code=2, match="emb.safetensors"),
    BadCase("mot-eval-json-onto-gt", json_onto_gt, exit_code=2, match="gt.txt"),
    BadCase("mot-eval-json-onto-result", json_onto_result, exit_code=2, match="SYN0005-00.txt"),
    BadCase("mot-eval-nan-class", nan_class_eval, exit_code=1, match="gt.txt:2"),
    BadCase("mot-train-nan-visibility", nan_visibility_train, exit_code=1, match="gt.txt:3"),
    BadCase("mot-eval-result-without-sequence", result_without_sequence, exit_code=1, match="MOT17-99.txt"),
    BadCase("mot-eval-repeated-id", repeated_id_in_frame, exit_code=1, match="appears twice"),
    BadCase("mot-track-huge-box-det", huge_box_det, exit_code=1, match="det.txt:1"),
    BadCase("mot-eval-huge-box-gt", huge_box_gt, exit_code=1, match="gt.txt:1"),
    BadCase("mot-track-1x1-frame", tiny_frame_track, exit_code=1, match="000002.jpg"),
    BadCase("mot-train-1x1-frame", tiny_frame_train, exit_code=1, match="000002.jpg"),
    BadCase("mot-track-appearance-without-images", appearance_without_images, exit_code=1, match="--no-appearance"),
]
