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


_WORKER_MARK = "Original Traceback"


def printable(text: object) -> str:
    """``text`` safe to print or draw: a file name that is not UTF-8 (kept by Python as surrogate
    escapes) shows its odd bytes as ``\\xNN`` instead of failing in the terminal or in a font."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when the message is empty (third-party
    libraries that raise bare or message-less exceptions still give the user a word to go on)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` as a single line.

    An error raised inside a DataLoader worker reaches the main process re-wrapped by torch as
    ``Caught X in DataLoader worker process N.\nOriginal Traceback ...\nmodule.X: message``;
    that gives back just ``message`` (the one line the user would have seen with 0 workers).
    Any other multi-line message is joined with `` | `` so the CLI still prints one line.
    """
    text = str(exc).strip()
    if _WORKER_MARK in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        head, sep, tail = last.partition(": ")
        if sep and " " not in head:  # "package.module.ErrorType: message"
            return tail.strip()
        return last
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())
