"""The bad-input matrix: a shared catalogue of bad files and one runner that holds every verb to
the suite's promise — exit code, exactly one ``cvsuite: error:`` line on stderr, no traceback, no
hang, and every input byte-identical afterwards.

Each app adds ``tests/badinput/cases_<app>.py`` exporting ``CASES: list[BadCase]``; ``test_matrix``
collects them all. A case's ``build(tmp)`` writes its inputs under ``tmp / "in"`` (snapshotted before
and checked after the run) and returns the argv after ``cvsuite``; outputs go under ``tmp / "out"``.

Example::

    CASES = [
        BadCase("sr-infer-zero-byte", lambda t: ["sr", "infer", zero_byte(t / "in" / "a.png"),
                                                 "--out", t / "out"], exit_code=1, match="a.png"),
    ]
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BadCase:
    """One bad invocation: ``build(tmp) -> argv``; expected exit (None = any non-zero); text the line must hold."""

    id: str
    build: Callable[[Path], list]
    exit_code: int | None = None
    match: str | None = None


# ---- catalogue of bad inputs (each returns the path it wrote) --------------------------------------

def _ensure_parent(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def good_image(path: Path, size: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    """A valid small RGB image (PNG or JPEG by suffix)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(_ensure_parent(path))
    return Path(path)


def zero_byte(path: Path) -> Path:
    _ensure_parent(path).write_bytes(b"")
    return Path(path)


def garbage(path: Path, text: str = "this is not the file you are looking for\n") -> Path:
    _ensure_parent(path).write_text(text)
    return Path(path)


def truncated_jpeg(path: Path, keep: float = 0.5) -> Path:
    """A JPEG cut in half: decoders warn "Premature end of JPEG file" and return a partial image."""
    good_image(path.with_suffix(".tmp.jpg"), size=(96, 128))
    data = path.with_suffix(".tmp.jpg").read_bytes()
    path.with_suffix(".tmp.jpg").unlink()
    _ensure_parent(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


def huge_header_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    _ensure_parent(path).write_bytes(data)
    return Path(path)


def text_file(path: Path, rows: list[str]) -> Path:
    _ensure_parent(path).write_text("\n".join(rows) + "\n")
    return Path(path)


# ---- the runner ------------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> hash)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_case(case: BadCase, tmp: Path) -> tuple[int, str, str]:
    """Run ``cvsuite`` in-process on the case; assert the promise; return (code, stdout, stderr)."""
    from shared.cli import main

    argv = [str(a) for a in case.build(tmp)]
    before = snapshot(tmp / "in")
    out, err = io.StringIO(), io.StringIO()
    result: dict[str, int] = {}

    def target() -> None:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                result["code"] = main(argv)
            except SystemExit as exc:
                result["code"] = int(exc.code or 0)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT_S)
    assert not thread.is_alive(), f"{case.id}: hung for {TIMEOUT_S:.0f} s: cvsuite {' '.join(argv)}"
    code, stderr = result.get("code"), err.getvalue()
    lines = [line for line in stderr.splitlines() if line.strip()]
    where = f"{case.id}: cvsuite {' '.join(argv)}\nstderr:\n{stderr}"
    assert code is not None and code != 0, f"exit {code}, expected non-zero — {where}"
    if case.exit_code is not None:
        assert code == case.exit_code, f"exit {code}, expected {case.exit_code} — {where}"
    assert "Traceback" not in stderr, f"traceback — {where}"
    assert len(lines) == 1 and lines[0].startswith("cvsuite: error: "), f"not exactly one error line — {where}"
    if case.match is not None:
        assert case.match.lower() in lines[0].lower(), f"error line lacks {case.match!r} — {where}"
    assert snapshot(tmp / "in") == before, f"an input changed — {where}"
    return code, out.getvalue(), stderr
