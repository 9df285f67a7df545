"""User-facing errors.

Anything a user can cause (bad path, malformed file, bad option) raises one of these. The CLI
turns them into a single ``cvsuite: error: ...`` line and an exit code, without a traceback.
"""
from __future__ import annotations


class CvsuiteError(Exception):
    """A runtime problem caused by the user's input or environment (exit code 1)."""

    exit_code = 1


class UsageError(CvsuiteError):
    """A bad option or option combination (exit code 2, like argparse)."""

    exit_code = 2
