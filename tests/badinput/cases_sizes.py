"""Huge sizes, small data (issue 25 item 8): the work is bounded by the data actually present or the
size is refused against a limit before any work, so each case ends well within its time bound.

Before: ``mot track --no-appearance`` walked all 200,000,000 frames of seqinfo's ``seqLength`` for 8
detections (about an hour); ``points infer --points 10000000`` and ``points synth --points`` took
any size.
"""
from __future__ import annotations

from pathlib import Path

from .harness import BadCase, text_file


def _long_sequence(t: Path) -> Path:
    from .cases_mot import _seq

    seq = _seq(t / "in")
    info = seq / "seqinfo.ini"
    info.write_text(info.read_text().replace("seqLength=4", "seqLength=200000000"))
    return seq


def _tracked_rows(t: Path) -> None:
    rows = (t / "out" / "r.txt").read_text().splitlines()
    assert rows and max(int(r.split(",")[0]) for r in rows) <= 4, rows[-3:]


def _cloud(t: Path) -> Path:
    return text_file(t / "in" / "c.xyz", [f"{i % 7} {i % 5} {i % 3}" for i in range(64)])


CASES = [
    BadCase("sizes-mot-track-seqlength-200M-motion-only",
            lambda t: ["mot", "track", "--seq", _long_sequence(t), "--out", t / "out" / "r.txt", "--no-appearance"],
            exit_code=0, check=_tracked_rows, timeout_s=60),
    BadCase("sizes-points-infer-points-10M",
            lambda t: ["points", "infer", _cloud(t), "--out", t / "out", "--points", "10000000"],
            exit_code=2, match="--points", timeout_s=30),
    BadCase("sizes-points-infer-max-chunks-huge",
            lambda t: ["points", "infer", _cloud(t), "--out", t / "out", "--max-chunks", "1000000000"],
            exit_code=2, match="--max-chunks", timeout_s=30),
    BadCase("sizes-points-synth-points-huge",
            lambda t: ["points", "synth", "--out", t / "out", "--points", "50000000"],
            exit_code=2, match="--points", timeout_s=30),
]
