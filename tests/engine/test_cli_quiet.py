"""Library chatter stays off the terminal (issue 25 item 10): C-level writes to fd 2 and Python
warnings are dropped while a command runs, cvsuite's own stderr lines still show, --debug shows all."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import _plain_error

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys, warnings
from shared.cli import quiet_libraries
with quiet_libraries(debug={debug}):
    os.write(2, b"RPly: unexpected end of file\\n")       # what a C library prints
    warnings.warn("a FutureWarning from a library", FutureWarning)
    print("cvsuite: warning: what the command means to say", file=sys.stderr)
print("cvsuite: error: after the command", file=sys.stderr)
"""


def _stderr(debug: bool) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(debug=debug)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_library_output_is_dropped_own_lines_kept():
    lines = _stderr(False).splitlines()
    assert lines == ["cvsuite: warning: what the command means to say", "cvsuite: error: after the command"]


def test_debug_lets_everything_through():
    text = _stderr(True)
    assert "RPly" in text and "FutureWarning" in text and "what the command means" in text


@pytest.mark.parametrize("exc, code, words", [
    (PermissionError(13, "Permission denied", "/x/out.json"), 1, "/x/out.json: Permission denied"),
    (MemoryError(), 1, "out of memory"),
    (RuntimeError("Found no NVIDIA driver on your system."), 2, "no usable CUDA GPU"),
    (AssertionError("Torch not compiled with CUDA enabled"), 2, "no usable CUDA GPU"),
])
def test_plain_errors_are_one_line_in_our_words(exc, code, words):
    line, exit_code = _plain_error(exc)
    assert exit_code == code and words in line and "NVIDIA" not in line


def test_unsafe_checkpoint_refusal_gives_no_advice_to_disable_the_check(tmp_path):
    import os

    import torch

    from shared.engine.checkpoint import load_checkpoint
    from shared.errors import CvsuiteError

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"a": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CvsuiteError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only" not in str(info.value) and "getcwd" in str(info.value)
