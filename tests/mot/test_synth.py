"""The synthetic sequence generator: determinism and MOTChallenge layout."""
from __future__ import annotations

import hashlib

import numpy as np

from apps.mot.data import MOTSequence, list_sequences
from apps.mot.synth import generate_dataset

from .conftest import TINY


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny_root):
    generate_dataset(tmp_path / "a", 2, seed=11, cfg=TINY)
    assert _digest(tmp_path / "a") == _digest(tiny_root)
    generate_dataset(tmp_path / "b", 1, seed=12, cfg=TINY)
    assert _digest(tmp_path / "b")["SYN0012-00/gt/gt.txt"] != _digest(tiny_root)["SYN0011-00/gt/gt.txt"]


def test_layout_and_contents(tiny_root):
    seqs = list_sequences(tiny_root)
    assert [s.name for s in seqs] == ["SYN0011-00", "SYN0011-01"]
    for seq_dir in seqs:
        seq = MOTSequence.open(seq_dir)
        assert (seq.info.length, seq.info.width, seq.info.height) == (TINY.length, TINY.width, TINY.height)
        frames = sorted((seq_dir / "img1").glob("*.jpg"))
        assert [f.name for f in frames] == [f"{i:06d}.jpg" for i in range(1, TINY.length + 1)]
        assert seq.read_frame(1).shape == (TINY.height, TINY.width, 3)
        gt, det = seq.gt(), seq.det()
        assert gt.num_columns == 9 and det.num_columns == 10
        assert set(np.unique(gt.ids)) <= set(range(1, TINY.objects + 1))
        assert ((gt.vis > 0) & (gt.vis <= 1)).all() and (gt.cls == 1).all()
        assert (det.ids == -1).all() and ((det.conf > 0) & (det.conf < 1)).all()
        # every id appears in at most one contiguous-ish life; boxes are in image coordinates
        assert (gt.boxes[:, 0] < TINY.width).all() and (gt.boxes[:, 0] + gt.boxes[:, 2] > 0).all()


def test_synth_cli(run_cli, tmp_path):
    code, out, err = run_cli(["mot", "synth", "--out", tmp_path, "--seqs", "1", "--seed", "3",
                              "--length", "4", "--width", "96", "--height", "80", "--objects", "2"])
    assert code == 0, err
    assert (tmp_path / "SYN0003-00" / "img1" / "000004.jpg").is_file()
    # a rerun over its own earlier outputs needs no --force (the ledger knows them) ...
    code, _, err = run_cli(["mot", "synth", "--out", tmp_path, "--seqs", "1", "--seed", "3"])
    assert code == 0, err
    # ... a file the user changed since does
    (tmp_path / "SYN0003-00" / "gt" / "gt.txt").write_text("edited\n")
    code, _, err = run_cli(["mot", "synth", "--out", tmp_path, "--seqs", "1", "--seed", "3"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "SYN0003-00" in err
