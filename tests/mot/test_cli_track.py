"""`cvsuite mot track` end to end and bad inputs giving one clear error line."""
from __future__ import annotations

import shutil

import pytest
import torch

from apps.mot.data import MOTSequence, list_sequences, read_mot_txt
from apps.mot.model import EmbeddingNet
from shared.weights import save_safetensors


@pytest.fixture()
def seq_copy(tiny_root, tmp_path):
    src = list_sequences(tiny_root)[0]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_track_motion_only_then_eval(run_cli, seq_copy, tmp_path):
    res = tmp_path / "res" / f"{seq_copy.name}.txt"
    code, out, err = run_cli(["mot", "track", "--seq", seq_copy, "--out", res, "--no-appearance"])
    assert code == 0, err
    table = read_mot_txt(res, "res", num_frames=MOTSequence.open(seq_copy).info.length)
    assert len(table) > 0 and (table.ids > 0).all()
    code, out, err = run_cli(["mot", "eval", "--gt", seq_copy.parent, "--res", tmp_path / "res"])
    assert code == 0, err
    overall = out.strip().splitlines()[-1].split()
    assert overall[0] == "OVERALL" and float(overall[1]) > 30.0  # MOTA in percent


def test_track_writes_backfilled_rows_at_their_frames(run_cli, seq_copy, tmp_path):
    """With n_init=3 a track confirmed after frame 1 gains its 2 tentative frames in the file."""
    length = MOTSequence.open(seq_copy).info.length
    assert length >= 8
    rows = [f"{f},-1,{10 + 3 * f},20,15,40,0.9,-1,-1,-1" for f in range(1, 9)]       # from frame 1
    rows += [f"{f},-1,{150 - 3 * f},60,15,40,0.8,-1,-1,-1" for f in range(3, 9)]     # born on frame 3
    (seq_copy / "det" / "det.txt").write_text("\n".join(rows) + "\n")
    tables = {}
    for flag in ("true", "false"):
        res = tmp_path / flag / f"{seq_copy.name}.txt"
        code, out, err = run_cli(["mot", "track", "--seq", seq_copy, "--out", res, "--no-appearance",
                                  "--set", "n_init=3", f"backfill={flag}"])
        assert code == 0, err
        tables[flag] = read_mot_txt(res, "res", num_frames=length)
    on, off = tables["true"], tables["false"]
    assert len(on) == len(off) + 2 == 8 + 6
    late_born = off.ids[off.frame == 8][off.boxes[off.frame == 8, 1] > 40][0]
    assert sorted(off.frame[off.ids == late_born].tolist()) == [5, 6, 7, 8]
    assert sorted(on.frame[on.ids == late_born].tolist()) == [3, 4, 5, 6, 7, 8]
    first = (on.ids == late_born) & (on.frame == 3)
    assert on.boxes[first].tolist() == [[141.0, 60.0, 15.0, 40.0]]   # the detection that started it


def test_track_with_weights_and_video(run_cli, seq_copy, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "emb.safetensors"
    save_safetensors(EmbeddingNet(width=8, dim=16).state_dict(), weights)
    res, frames_dir = tmp_path / "r.txt", tmp_path / "frames"
    code, out, err = run_cli(["mot", "track", "--seq", seq_copy, "--out", res, "--weights", weights,
                              "--save-video", frames_dir, "--set", "max_lost=10"])
    assert code == 0, err
    assert "motion+appearance" in out
    assert len(list(frames_dir.glob("*.jpg"))) == MOTSequence.open(seq_copy).info.length


def _one_error(run_cli, args, needle, code=1):
    got, out, err = run_cli(args)
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and needle in lines[0], (got, err)
    assert "Traceback" not in err


def test_bad_inputs(run_cli, seq_copy, tmp_path):
    out = tmp_path / "o.txt"
    det = seq_copy / "det" / "det.txt"
    before = det.read_bytes()
    _one_error(run_cli, ["mot", "track", "--seq", seq_copy, "--out", det, "--no-appearance"], "inside the input folder",
               code=2)
    assert det.read_bytes() == before
    lines = before.decode().splitlines()
    for bad_line, needle in (("3,-1,1,2,3", "columns"), ("3,-1,1,2,nan,4,0.9,-1,-1,-1", "NaN"),
                             ("3,-1,1,2,-3,4,0.9,-1,-1,-1", "positive"), ("999,-1,1,2,3,4,0.9,-1,-1,-1", "out of range")):
        bad = tmp_path / "bad_det.txt"
        bad.write_text("\n".join(lines[:4] + [bad_line]) + "\n")
        _one_error(run_cli, ["mot", "track", "--seq", seq_copy, "--det", bad, "--out", out, "--no-appearance"],
                   f"{bad}:5")
    _one_error(run_cli, ["mot", "track", "--seq", seq_copy, "--out", out, "--detector", "fasterrcnn_resnet50_fpn"],
               "--detector-weights", code=2)
    _one_error(run_cli, ["mot", "track", "--seq", tmp_path / "nothing.mp4", "--out", out], "not found")
    (seq_copy / "seqinfo.ini").unlink()
    _one_error(run_cli, ["mot", "track", "--seq", seq_copy, "--out", out], "no seqinfo.ini and no image files")


def test_bad_weights_file(run_cli, tiny_root, tmp_path):
    seq = list_sequences(tiny_root)[0]
    bad_w = tmp_path / "w.safetensors"
    save_safetensors({"x": torch.zeros(2)}, bad_w)
    _one_error(run_cli, ["mot", "track", "--seq", seq, "--out", tmp_path / "o.txt", "--weights", bad_w],
               "not an apps.mot embedding")


def test_track_video_file_with_detections(run_cli, seq_copy, tmp_path):
    import cv2

    seq = MOTSequence.open(seq_copy)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (seq.info.width, seq.info.height))
    for f in range(1, 7):
        writer.write(cv2.cvtColor(seq.read_frame(f), cv2.COLOR_RGB2BGR))
    writer.release()
    det_lines = [ln for ln in seq.det_path.read_text().splitlines() if int(ln.split(",")[0]) <= 6]
    (tmp_path / "clip_det.txt").write_text("\n".join(det_lines) + "\n")
    code, out, err = run_cli(["mot", "track", "--seq", video, "--det", tmp_path / "clip_det.txt",
                              "--out", tmp_path / "clip.txt", "--save-video", tmp_path / "clip_tracks.avi"])
    assert code == 0, err
    res = read_mot_txt(tmp_path / "clip.txt", "res")
    assert len(res) > 0 and res.frame.max() <= 6
    cap = cv2.VideoCapture(str(tmp_path / "clip_tracks.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()
    _one_error(run_cli, ["mot", "track", "--seq", video, "--out", tmp_path / "o.txt"], "needs --det", code=2)


def test_motion_only_track_and_eval_never_import_torch(tiny_root, tmp_path):
    """`--no-appearance` reads no image and must not pay torch's import (~2 s of CPU per call)."""
    import subprocess
    import sys
    from pathlib import Path

    seq = list_sequences(tiny_root)[0]
    script = (
        "import sys\n"
        "from shared.cli import main\n"
        f"code = main(['mot', 'track', '--seq', {str(seq)!r}, '--out', {str(tmp_path / 'res' / (seq.name + '.txt'))!r},"
        " '--no-appearance'])\n"
        f"code += main(['mot', 'eval', '--gt', {str(seq)!r}, '--res', {str(tmp_path / 'res')!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
        "print('CODE', code, 'HEAVY', heavy[:5])\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=repo, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert "CODE 0 HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_unreadable_frame_is_one_error_line(run_cli, seq_copy, tmp_path, monkeypatch):
    """Frames go through shared.data.images.read_image: its error (e.g. a truncated JPEG) is the one line."""
    import shared.data.images as images
    from shared.errors import CvsuiteError

    def refuse(path):
        raise CvsuiteError(f"{path}: truncated or corrupt image")

    monkeypatch.setattr(images, "read_image", refuse)
    torch.manual_seed(0)
    weights = tmp_path / "emb.safetensors"
    save_safetensors(EmbeddingNet(width=8, dim=16).state_dict(), weights)
    _one_error(run_cli, ["mot", "track", "--seq", seq_copy, "--out", tmp_path / "r.txt", "--weights", weights],
               "000001.jpg: truncated or corrupt image")
    code, _, err = run_cli(["mot", "train", "--data", seq_copy, "--out", tmp_path / "run", "--steps", "1"])
    assert code == 1 and "truncated or corrupt image" in err and len(err.strip().splitlines()) == 1
