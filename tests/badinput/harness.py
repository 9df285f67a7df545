"""The bad-input matrix: a shared catalogue of bad files and one runner that holds every verb to
the suite's promise — exit code, exactly one ``cvsuite: error:`` line on stderr, no traceback, no
hang, and every input byte-identical afterwards.

Each app adds ``tests/badinput/cases_<app>.py`` exporting ``CASES: list[BadCase]``; ``test_matrix``
collects them all. A case's ``build(tmp)`` writes its inputs under ``tmp / "in"`` (snapshotted before
and checked after the run) and returns the argv after ``cvsuite``; outputs go under ``tmp / "out"``. Stderr is Python's
``sys.stderr`` plus whatever C libraries write to file descriptor 2 during the run.

Catalogue: :func:`good_image`, :func:`zero_byte`, :func:`garbage`, :func:`random_bytes`,
:func:`truncated_jpeg`, :func:`corrupt_jpeg`, :func:`truncated_png`, :func:`corrupt_png`, :func:`huge_header_png`,
:func:`huge_header_jpeg`, :func:`grey16_png`, :func:`text_file`, :func:`number_rows` (with
:data:`BAD_NUMBERS`: NaN, ±inf, 1e308) and :func:`symlink`.

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
import os
import struct
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BadCase:
    """One bad invocation: ``build(tmp) -> argv``; expected exit (None = any non-zero); text the line must hold.

    ``exit_code=0`` marks an awkward-but-valid input that must be *handled correctly* (e.g. a 16-bit
    image): the command must succeed with no error line and nothing else on stderr but its own
    ``cvsuite...`` lines (no library warning), inputs unchanged, and ``check(tmp)`` (if given; it
    asserts on the outputs) must pass. ``check`` also runs after failing cases.
    """

    id: str
    build: Callable[[Path], list]
    exit_code: int | None = None
    match: str | None = None
    check: Callable[[Path], None] | None = None
    timeout_s: float | None = None  # a tighter time bound than TIMEOUT_S (huge sizes must not mean long work)


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


def huge_header_jpeg(path: Path, width: int = 65_000, height: int = 65_000) -> Path:
    """A JPEG whose frame header (SOF0) claims ``width x height`` pixels, with no image data after it."""
    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    sof = struct.pack(">BHHB", 8, height, width, 3) + b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    sos = struct.pack(">B", 3) + b"".join(bytes([i, 0]) for i in (1, 2, 3)) + bytes([0, 63, 0])
    data = b"\xff\xd8" + segment(0xC0, sof) + segment(0xDA, sos) + b"\x00" * 64 + b"\xff\xd9"
    _ensure_parent(path).write_bytes(data)
    return Path(path)


def truncated_png(path: Path, keep: float = 0.5) -> Path:
    """A PNG cut part-way through its pixel data."""
    good_image(path.with_suffix(".tmp.png"), size=(96, 128))
    data = path.with_suffix(".tmp.png").read_bytes()
    path.with_suffix(".tmp.png").unlink()
    _ensure_parent(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


def corrupt_png(path: Path) -> Path:
    """A PNG with a valid signature and header but garbage where the compressed pixels should be."""
    good_image(path.with_suffix(".tmp.png"), size=(32, 32))
    data = bytearray(path.with_suffix(".tmp.png").read_bytes())
    path.with_suffix(".tmp.png").unlink()
    start = data.index(b"IDAT") + 4
    data[start:start + 64] = bytes(range(64))
    _ensure_parent(path).write_bytes(bytes(data))
    return Path(path)


def corrupt_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG with noise over part of its compressed data: libjpeg warns "Corrupt JPEG data" on stderr
    and would hand back a half-garbage picture."""
    good_image(path.with_suffix(".tmp.jpg"), size=(96, 128))
    data = bytearray(path.with_suffix(".tmp.jpg").read_bytes())
    path.with_suffix(".tmp.jpg").unlink()
    middle = len(data) // 2
    data[middle:middle + 200] = np.random.default_rng(seed).bytes(200)
    _ensure_parent(path).write_bytes(bytes(data))
    return Path(path)


def random_bytes(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """Binary noise (not UTF-8, not any image or archive format): text readers hit UnicodeDecodeError."""
    _ensure_parent(path).write_bytes(b"\xff\xfe\x80" + np.random.default_rng(seed).bytes(size))
    return Path(path)


def grey16_png(path: Path, size: tuple[int, int] = (32, 40), seed: int = 0) -> Path:
    """A valid 16-bit greyscale PNG spread over the whole 0..65535 range (an 8-bit reader clips it)."""
    import cv2

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 65536, size, dtype=np.uint16)
    if not cv2.imwrite(str(_ensure_parent(path)), pixels):
        raise OSError(f"cannot write {path}")
    return Path(path)


def text_file(path: Path, rows: list[str]) -> Path:
    _ensure_parent(path).write_text("\n".join(rows) + "\n")
    return Path(path)


def number_rows(path: Path, rows: list[list[object]], sep: str = ",") -> Path:
    """A numeric text table (CSV by default); put ``float("nan")``, ``float("inf")`` or ``1e308`` in it."""
    return text_file(path, [sep.join(str(v) for v in row) for row in rows])


BAD_NUMBERS = {"nan": float("nan"), "inf": float("inf"), "neg-inf": float("-inf"), "overflow": 1e308}


def symlink(path: Path, target: Path) -> Path:
    """``path`` -> ``target`` (an output that resolves to an input only after following the link)."""
    _ensure_parent(path).symlink_to(Path(target).resolve())
    return Path(path)


# ---- the runner ------------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> hash)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _capture_fd2() -> Iterator[Callable[[], str]]:
    """Also capture what C code (OpenCV, libjpeg, libpng) writes straight to file descriptor 2: the
    user sees it in the terminal, so it counts against the one-line promise too."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.seek(0), sink.read().decode(errors="replace"))[1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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

    with _capture_fd2() as c_level:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        limit = case.timeout_s or TIMEOUT_S
        thread.join(limit)
        c_stderr = c_level()
    assert not thread.is_alive(), f"{case.id}: hung for {limit:.0f} s: cvsuite {' '.join(argv)}"
    code, stderr = result.get("code"), c_stderr + err.getvalue()
    lines = [line for line in stderr.splitlines() if line.strip()]
    where = f"{case.id}: cvsuite {' '.join(argv)}\nstderr:\n{stderr}"
    if case.exit_code == 0:
        assert code == 0, f"exit {code}, expected success — {where}"
        assert "Traceback" not in stderr and "cvsuite: error" not in stderr, f"error output — {where}"
        # on success stderr holds only what the command means to say: its own "cvsuite..." lines
        # (a warning it chose to give); never a library's warning or C-level chatter
        stray = [line for line in lines if not line.startswith("cvsuite")]
        assert not stray, f"stderr on success beyond cvsuite's own lines — {where}"
        assert snapshot(tmp / "in") == before, f"an input changed — {where}"
        if case.check is not None:
            case.check(tmp)
        return code, out.getvalue(), stderr
    assert code is not None and code != 0, f"exit {code}, expected non-zero — {where}"
    if case.exit_code is not None:
        assert code == case.exit_code, f"exit {code}, expected {case.exit_code} — {where}"
    assert "Traceback" not in stderr, f"traceback — {where}"
    assert len(lines) == 1 and lines[0].startswith("cvsuite: error: "), f"not exactly one error line — {where}"
    if case.match is not None:
        assert case.match.lower() in lines[0].lower(), f"error line lacks {case.match!r} — {where}"
    assert snapshot(tmp / "in") == before, f"an input changed — {where}"
    if case.check is not None:
        case.check(tmp)
    return code, out.getvalue(), stderr
