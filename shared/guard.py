"""One output guard for every command: no command ever writes over its own inputs.

Every path a command writes (files, folders, videos, JSON, weights, checkpoints) is claimed through
an :class:`OutputGuard` *before any work starts*. The guard refuses, with one :class:`UsageError`
line naming both paths (exit 2):

* an output that resolves (after symlinks) to one of the command's inputs;
* an output file or folder inside an input folder (writing there could clobber the data);
* an existing file that is not this suite's own earlier output, unless ``force=True`` (``--force``).

"Own earlier output" is decided by a small ledger ``.cvsuite-outputs.json`` in each folder the guard
writes to: after a command finishes, :meth:`OutputGuard.record` stores the sha256 of every file it
wrote. A file whose current hash matches its ledger entry may be overwritten by a re-run; a file the
user edited, or one cvsuite never wrote, needs ``--force``.

Example::

    guard = OutputGuard(inputs=[args.seq, args.weights], force=args.force)
    out_json = guard.file(args.json)          # checks now, before the work
    out_dir = guard.directory(args.out)       # creates it (checked the same way)
    ...                                       # do the work; write files under out_dir
    guard.file(out_dir / "a.png")             # any later path can still be checked
    guard.record()                            # ledger: these files are ours now
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from .errors import UsageError

LEDGER_NAME = ".cvsuite-outputs.json"


def _resolve(path: str | Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _read_ledger(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / LEDGER_NAME).read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def is_own_output(path: str | Path) -> bool:
    """True when ``path`` is a file this suite wrote and nobody changed since (ledger hash matches)."""
    path = _resolve(path)
    if not path.is_file():
        return False
    recorded = _read_ledger(path.parent).get(path.name)
    return recorded is not None and recorded == _sha256(path)


class OutputGuard:
    """Checks output paths against a command's inputs; see the module docstring for the rules."""

    def __init__(self, inputs: Iterable[str | Path | None] = (), force: bool = False) -> None:
        self.inputs: list[tuple[str, Path]] = [(str(p), _resolve(p)) for p in inputs if p not in (None, "")]
        self.force = force
        self._files: list[Path] = []
        self._dirs: list[Path] = []
        self._hashes: dict[Path, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, sha256)

    def add_inputs(self, *paths: str | Path | None) -> None:
        """Inputs discovered later (e.g. the files of a dataset folder) join the check."""
        self.inputs += [(str(p), _resolve(p)) for p in paths if p not in (None, "")]

    def _clash(self, shown: str, resolved: Path) -> None:
        for given, inp in self.inputs:
            if resolved == inp:
                raise UsageError(f"output {shown} is the input {given}; choose another output path")
            if inp.is_dir() and _is_within(resolved, inp):
                raise UsageError(f"output {shown} is inside the input folder {given}; choose another output path")

    def file(self, path: str | Path, allow_existing: bool = False) -> Path:
        """Claim an output file; return it (parent folder created). Refuses clashes and foreign files.

        ``allow_existing`` skips only the foreign-file check (never the input check): for files a
        command continues on purpose, e.g. the logs and checkpoint of a training run it resumes.
        """
        shown = str(path)
        resolved = _resolve(path)
        self._clash(shown, resolved)
        if resolved.is_dir():
            raise UsageError(f"output {shown} is a folder; give a file path")
        if resolved.exists() and not (self.force or allow_existing) and not is_own_output(resolved):
            raise UsageError(f"output {shown} already exists and was not written by cvsuite "
                             "(or was changed since); pass --force to overwrite it")
        resolved.parent.mkdir(parents=True, exist_ok=True)
        if resolved not in self._files:
            self._files.append(resolved)
        return Path(path)

    def directory(self, path: str | Path) -> Path:
        """Claim an output folder (created). Claim each file written in it with :meth:`file` (an output
        folder may hold inputs, e.g. ``--out .``; the per-file check keeps them safe)."""
        shown = str(path)
        resolved = _resolve(path)
        self._clash(shown, resolved)
        if resolved.exists() and not resolved.is_dir():
            raise UsageError(f"output folder {shown} exists and is not a folder")
        resolved.mkdir(parents=True, exist_ok=True)
        if resolved not in self._dirs:
            self._dirs.append(resolved)
        return Path(path)

    def _digest(self, path: Path) -> str:
        """sha256 of ``path``, re-hashed only when its size or mtime changed (record() may run often)."""
        info = path.stat()
        cached = self._hashes.get(path)
        if cached is not None and cached[:2] == (info.st_mtime_ns, info.st_size):
            return cached[2]
        digest = _sha256(path)
        self._hashes[path] = (info.st_mtime_ns, info.st_size, digest)
        return digest

    def record(self) -> None:
        """Write the ledger entries for every claimed file that now exists (call once the work is done)."""
        by_folder: dict[Path, dict[str, str]] = {}
        for path in self._files:
            if path.is_file():
                by_folder.setdefault(path.parent, {})[path.name] = self._digest(path)
        for folder, entries in by_folder.items():
            ledger = _read_ledger(folder)
            ledger.update(entries)
            tmp = folder / (LEDGER_NAME + ".tmp")
            tmp.write_text(json.dumps(ledger, indent=0, sort_keys=True))
            os.replace(tmp, folder / LEDGER_NAME)
