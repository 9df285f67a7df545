"""Shared fixtures: run the CLI in-process and keep torch small and quiet on CPU."""
from __future__ import annotations

import contextlib
import io
from typing import Callable

import pytest
import torch

import shared  # noqa: F401  (applies compat fixes before any test imports basicsr)

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def run_cli() -> Callable[[list[str]], tuple[int, str, str]]:
    """Run ``cvsuite ARGS`` in-process; return (exit code, stdout, stderr)."""
    from shared.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # --help
                code = int(exc.code or 0)
        return code, out.getvalue(), err.getvalue()

    return run
