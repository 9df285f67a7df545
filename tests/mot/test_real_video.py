"""Tracking people's own footage: HOG detector on real frames, folders of frames, H.264 output, warnings.

``tests/mot/data/vtest_0002{00,01,02}.jpg`` are frames 200-202 of OpenCV's sample pedestrian video
``vtest.avi`` (Debian package ``opencv-doc``, OpenCV sample data, BSD/Apache licence), JPEG q85.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from apps.mot.data import FrameFolder, MOTSequence, list_sequences, open_source, read_mot_txt
from apps.mot.infer import HogDetector, draw_tracks, id_colour
from shared.data.images import read_image
from shared.data.video import VideoWriter, probe_codec

REAL_FRAMES = sorted((Path(__file__).parent / "data").glob("vtest_*.jpg"))


def test_real_frames_are_present() -> None:
    assert len(REAL_FRAMES) == 3


def test_hog_finds_the_walkers_on_a_real_frame() -> None:
    """Frame 200 of vtest.avi shows seven walking people; the HOG detector must find most of them
    with boxes of pedestrian shape inside the image."""
    rgb = (read_image(REAL_FRAMES[0]).rgb * 255).round().astype(np.uint8)
    boxes, scores = HogDetector()(rgb)
    confident = boxes[scores >= 0.5]
    assert len(confident) >= 4, (boxes, scores)
    assert ((confident[:, 3] / confident[:, 2]) > 1.5).all()            # taller than wide
    assert (confident[:, 0] >= -5).all() and (confident[:, 0] + confident[:, 2] <= rgb.shape[1] + 5).all()
    assert ((0.0 < scores) & (scores < 1.0)).all()


def test_track_a_folder_of_real_frames_with_hog(run_cli, tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in REAL_FRAMES:
        shutil.copy(path, frames / path.name)
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    out, video = tmp_path / "res" / "street.txt", tmp_path / "res" / "street.mp4"
    code, stdout, err = run_cli(["mot", "track", "--seq", frames, "--detector", "hog", "--fps", "10",
                                 "--no-appearance", "--out", out, "--save-video", video])
    assert code == 0, err
    assert err == ""
    res = read_mot_txt(out, "res")
    assert len(set(res.ids.tolist())) >= 3 and set(res.frame.tolist()) <= {1, 2, 3}
    assert probe_codec(video) == "h264"
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before   # inputs untouched


def test_folder_of_frames_reads_in_name_order_and_refuses_mixed_sizes(tmp_path) -> None:
    from shared.data.images import write_image

    for i, size in ((2, 8), (1, 8), (3, 10)):
        write_image(tmp_path / f"{i:04d}.png", np.full((size, 12, 3), i * 40, np.uint8))
    source = open_source(tmp_path, fps=12.5)
    assert isinstance(source, FrameFolder) and len(source) == 3 and source.frame_rate == 12.5
    frames = source.frames()
    assert next(frames)[1][0, 0, 0] == 40 and next(frames)[1][0, 0, 0] == 80
    with pytest.raises(Exception, match="one size"):
        next(frames)


def test_folder_of_frames_with_a_detection_file_and_bad_fps(run_cli, tiny_root, tmp_path) -> None:
    seq = MOTSequence.open(list_sequences(tiny_root)[0])
    frames = tmp_path / "plain"
    shutil.copytree(seq.root / seq.info.im_dir, frames)
    code, _, err = run_cli(["mot", "track", "--seq", frames, "--det", seq.det_path, "--no-appearance",
                            "--out", tmp_path / "r.txt"])
    assert code == 0, err
    assert read_mot_txt(tmp_path / "r.txt", "res").frame.max() <= len(seq)
    code, _, err = run_cli(["mot", "track", "--seq", frames, "--det", seq.det_path, "--fps", "0",
                            "--out", tmp_path / "r2.txt"])
    assert code != 0 and len(err.strip().splitlines()) == 1 and "--fps" in err


def test_all_filtered_detections_warn_in_one_line(run_cli, tiny_root, tmp_path) -> None:
    """MOT15-style confidences of -1 reach no tracker stage: say so instead of a silent '0 tracks'."""
    seq = MOTSequence.open(list_sequences(tiny_root)[0])
    rows = [",".join(line.split(",")[:6] + ["-1", "-1", "-1", "-1"])
            for line in seq.det_path.read_text().splitlines()]
    det = tmp_path / "det_minus1.txt"
    det.write_text("\n".join(rows) + "\n")
    code, out, err = run_cli(["mot", "track", "--seq", seq.root, "--det", det, "--no-appearance",
                              "--out", tmp_path / "r.txt"])
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "low_thresh" in lines[0], err
    code, out, err = run_cli(["mot", "track", "--seq", seq.root, "--det", det, "--no-appearance",
                              "--out", tmp_path / "r2.txt", "--set", "low_thresh=-2", "high_thresh=-1.5",
                              "new_track_thresh=-1.5"])
    assert code == 0 and err == "" and "0 tracks" not in out  # thresholds on the file's own scale


def test_video_writer_is_h264_and_pads_odd_sizes(tmp_path) -> None:
    import cv2

    path = tmp_path / "odd.mp4"
    with VideoWriter(path, fps=5) as video:
        for value in (0, 120, 240):
            video.write(np.full((31, 45, 3), value, np.uint8))
    assert probe_codec(path) == "h264"
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    assert ok and frame.shape[:2] == (32, 46)
    cap.release()


def test_drawn_labels_scale_with_the_image_and_ids_differ_in_colour() -> None:
    for height, width in ((120, 160), (576, 768), (2160, 3840)):
        grey = np.full((height, width, 3), 128, np.uint8)
        drawn = draw_tracks(grey, np.array([7]), np.array([[width / 4, height / 3, width / 10, height / 4]]),
                            frame_no=123)
        label_rows = np.flatnonzero((drawn[:, 1] != 128).any(-1))  # the frame-number label, top left
        label_height = label_rows.max() + 1
        assert 0.015 * height <= label_height <= 0.2 * height, (height, label_height)
    colours = [np.array(id_colour(i)) for i in range(1, 9)]
    assert min(np.abs(a - b).sum() for i, a in enumerate(colours) for b in colours[i + 1:]) > 60
