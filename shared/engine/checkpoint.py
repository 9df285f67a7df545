"""Atomic checkpoint files that load without executing code."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CvsuiteError
from ..guard import open_atomic, orphaned_temp_files


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a fresh temporary file in the same folder (created exclusively, see
    :func:`shared.guard.open_atomic`), fsync, then rename over ``path``.

    A kill at any moment leaves either the old file or the new one, never a truncated file; a link
    at ``path`` is replaced, never written through.
    """
    with open_atomic(path, "wb", fsync=True) as handle:
        torch.save(obj, handle)


def remove_orphaned_tmp(path: str | Path) -> list[Path]:
    """Delete the temporary files an atomic write of ``path`` leaves behind when killed mid-write
    (:func:`shared.guard.orphaned_temp_files`: plain files only; a planted link is left alone)."""
    removed = []
    for tmp in orphaned_temp_files(path):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _what_it_needs(message: str) -> str:
    """The class or function the pickle asked for (torch names it in a line of its error), never
    torch's advice on how to load the file anyway."""
    match = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", message)
    return f" (it asks for {match.group(1)})" if match else ""


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` with one clear error for missing, truncated or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"checkpoint not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(2)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # neither torch's zip format nor a legacy pickle
        raise CvsuiteError(f"cannot read checkpoint {path}: not a torch checkpoint or safetensors file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CvsuiteError(f"refusing to load {path}: it needs code to unpickle, which cvsuite never runs"
                           f"{_what_it_needs(str(exc))}") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise CvsuiteError(f"cannot read checkpoint {path}: truncated or corrupt file ({str(exc).splitlines()[0][:160]})") from None
    except Exception as exc:  # the weights-only unpickler fails in many ways on files that are no checkpoint
        raise CvsuiteError(f"cannot read checkpoint {path}: not a torch checkpoint or safetensors file "
                           f"({type(exc).__name__})") from None
