"""One output guard for every command: no command ever writes over its own inputs.

Every path a command writes (files, folders, videos, JSON, weights, checkpoints) is claimed through
an :class:`OutputGuard` *before any work starts*. The guard refuses, with one :class:`UsageError`
line naming both paths (exit 2):

* an output that resolves (after symlinks) to one of the command's inputs;
* an existing output that is the *same file* (``st_dev``, ``st_ino``) as an input file or as any
  file inside an input folder: a hard link is caught like a symlink;
* an output file or folder inside an input folder (writing there could clobber the data);
* an existing file that is not this suite's own earlier output, unless ``force=True`` (``--force``).

Writes: every output file is written to a fresh temporary file created exclusively (``O_EXCL``,
unique random name, ``O_NOFOLLOW``) in the output's own folder, then renamed over the output with
``os.replace``. A link at the output path is therefore *replaced*, never written through, a kill
mid-write leaves the old file or the new one (never half a file), and a planted or leftover
temporary file is never opened. :func:`write_atomic`, :func:`open_atomic` and
:func:`atomic_output` are the one way to write an output; :meth:`OutputGuard.write` and
:meth:`OutputGuard.writing` claim and write in one call.

"Own earlier output" is decided by a small ledger ``.cvsuite-outputs.json`` in each folder the guard
writes to: after a command finishes, :meth:`OutputGuard.record` stores the sha256 of every file it
wrote. A file whose current hash matches its ledger entry may be overwritten by a re-run; a file the
user edited, or one cvsuite never wrote, needs ``--force``. The ledger's read-modify-write holds an
``fcntl.flock`` on ``.cvsuite-outputs.lock`` in that folder, so concurrent commands writing one
folder lose no entry; a ledger that is a symlink or has other hard links is not trusted.

Example::

    guard = OutputGuard(inputs=[args.seq, args.weights], force=args.force)
    out_json = guard.file(args.json)          # checks now, before the work
    out_dir = guard.directory(args.out)       # creates it (checked the same way)
    ...                                       # do the work
    guard.write(out_json, json.dumps(result)) # claim (again, cheap) + atomic write
    with guard.writing(out_dir / "a.png") as tmp:   # for libraries that want a file name
        cv2.imwrite(str(tmp), image)
    guard.record()                            # ledger: these files are ours now
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .errors import CvsuiteError, UsageError

LEDGER_NAME = ".cvsuite-outputs.json"
LOCK_NAME = ".cvsuite-outputs.lock"
TMP_MARK = ".tmp"


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


# ---- atomic writes -------------------------------------------------------------------------------

def temp_name(path: str | Path) -> Path:
    """A fresh, unpredictable temporary name beside ``path`` that keeps its suffix (libraries such as
    OpenCV or matplotlib pick the format by it): ``dir/.<name>.<random>.tmp<suffix>``."""
    path = Path(path)
    name, suffix = path.name, path.suffix
    if not _is_utf8(name):  # libraries given the temp name (Open3D, OpenCV) need a UTF-8 one
        name, suffix = "cvsuite", suffix if _is_utf8(suffix) else ""
    return path.with_name(f".{name}.{secrets.token_hex(6)}{TMP_MARK}{suffix}")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _create_exclusive(path: str | Path) -> tuple[int, Path]:
    """Create a new empty temporary file beside ``path`` (``O_EXCL | O_NOFOLLOW``: never an existing
    file or link); return (fd, temp path). Mode 0666 less the umask, like any new output."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = temp_name(path)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise CvsuiteError(f"cannot write {path}: {exc.strerror or exc}") from None
    raise CvsuiteError(f"cannot create a temporary file beside {path}")


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _commit(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` over ``path``: a link at ``path`` is replaced, its target untouched."""
    if os.path.isdir(path) and not os.path.islink(path):
        _discard(tmp)
        raise CvsuiteError(f"cannot write {path}: it is a folder")
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise CvsuiteError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def open_atomic(path: str | Path, mode: str = "wb", fsync: bool = False, **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a handle that writes ``path`` atomically (temp file + ``os.replace`` on success; on an
    error the temp file is removed and ``path`` is unchanged). ``mode`` is ``"w"`` or ``"wb"``.

    Example::

        with open_atomic(out / "scores.json", "w") as handle:
            json.dump(scores, handle)
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"open_atomic writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_exclusive(path)
    try:
        if "b" in mode:
            handle: IO[Any] = os.fdopen(fd, "wb", **kwargs)
        else:
            kwargs.setdefault("encoding", "utf-8")
            handle = os.fdopen(fd, "w", **kwargs)
        with handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
    except BaseException:
        _discard(tmp)
        raise
    _commit(tmp, path)


def write_atomic(path: str | Path, data: bytes | str, fsync: bool = False, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text encoded with ``encoding``) to ``path`` atomically; return ``path``.

    Example::

        write_atomic(out / "result.json", json.dumps(metrics, indent=2) + "\\n")
    """
    blob = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with open_atomic(path, "wb", fsync=fsync) as handle:
        handle.write(blob)
    return Path(path)


@contextlib.contextmanager
def atomic_output(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """For libraries that write by file name (OpenCV, matplotlib, Open3D, numpy): yields a fresh
    temporary path (created exclusively, same suffix) to write to; on success it is renamed over
    ``path``, on an error removed. A library that writes nothing (or refuses) leaves ``path`` as it was.

    Example::

        with atomic_output(out / "plot.png") as tmp:
            fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_exclusive(path)
    os.close(fd)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
    except BaseException:
        _discard(tmp)
        raise
    _commit(tmp, path)


def unshare_file(path: str | Path) -> None:
    """Before appending to ``path`` in place: if it is a symlink or has other hard links, replace it by
    a private copy of its bytes, so the append cannot reach another file through the link."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
        data = path.read_bytes() if path.is_file() else b""
        write_atomic(path, data)


def orphaned_temp_files(path: str | Path) -> list[Path]:
    """Temporary files an atomic write of ``path`` left behind when killed mid-write (also the older
    fixed names ``.<name>.tmp`` / ``.<name>.<x>.tmp``): only plain files with no other link."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = []
    for candidate in path.parent.glob(f".{path.name}.*"):
        if not (candidate.name.endswith(TMP_MARK) or candidate.name.endswith(TMP_MARK + path.suffix)):
            continue
        try:
            info = os.lstat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            found.append(candidate)
    return found


# ---- the ledger ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _ledger_lock(folder: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``folder/.cvsuite-outputs.lock`` (never followed if it is a link)."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    lock_path = folder / LOCK_NAME
    try:
        fd = os.open(lock_path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CvsuiteError(f"{lock_path} is a symbolic link; remove it (cvsuite never follows it)") from None
        raise CvsuiteError(f"cannot lock the output ledger in {folder}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_ledger(folder: Path) -> dict[str, str]:
    """The ledger's entries; an absent, unreadable, linked or malformed ledger counts as empty."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(folder / LEDGER_NAME, flags)
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > 64 << 20:
                return {}
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def is_own_output(path: str | Path) -> bool:
    """True when ``path`` is a file this suite wrote and nobody changed since (ledger hash matches)."""
    path = _resolve(path)
    if not path.is_file():
        return False
    recorded = _read_ledger(path.parent).get(path.name)
    return recorded is not None and recorded == _sha256(path)


def record_outputs(entries_by_folder: dict[Path, dict[str, str]]) -> None:
    """Merge ``{folder: {file name: sha256}}`` into each folder's ledger under its lock."""
    for folder, entries in entries_by_folder.items():
        with _ledger_lock(folder):
            ledger = _read_ledger(folder)
            ledger.update(entries)
            write_atomic(folder / LEDGER_NAME, json.dumps(ledger, indent=0, sort_keys=True))


# ---- the guard -----------------------------------------------------------------------------------

def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class OutputGuard:
    """Checks output paths against a command's inputs; see the module docstring for the rules."""

    def __init__(self, inputs: Iterable[str | Path | None] = (), force: bool = False) -> None:
        self.inputs: list[tuple[str, Path]] = [(str(p), _resolve(p)) for p in inputs if p not in (None, "")]
        self.force = force
        self._files: dict[Path, None] = {}  # claimed files in claim order (a dict: O(1) membership for big outputs)
        self._dirs: list[Path] = []
        self._hashes: dict[Path, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, sha256)
        self._identities: dict[tuple[int, int], str] | None = None  # (dev, inode) -> input as given

    def add_inputs(self, *paths: str | Path | None) -> None:
        """Inputs discovered later (e.g. the files of a dataset folder, a config file) join the check."""
        self.inputs += [(str(p), _resolve(p)) for p in paths if p not in (None, "")]
        self._identities = None

    def _input_identities(self) -> dict[tuple[int, int], str]:
        """(st_dev, st_ino) of every input file and of every file inside an input folder (links
        followed), computed once and only when an existing output could be a hard link."""
        if self._identities is None:
            found: dict[tuple[int, int], str] = {}
            for given, inp in self.inputs:
                if inp.is_dir():
                    for root, _, names in os.walk(inp):
                        for name in names:
                            ident = _identity(os.path.join(root, name))
                            if ident is not None:
                                found.setdefault(ident, os.path.join(given, os.path.relpath(os.path.join(root, name), inp)))
                else:
                    ident = _identity(inp)
                    if ident is not None:
                        found.setdefault(ident, given)
            self._identities = found
        return self._identities

    def _clash(self, shown: str, resolved: Path) -> None:
        for given, inp in self.inputs:
            if resolved == inp:
                raise UsageError(f"output {shown} is the input {given}; choose another output path")
            if inp.is_dir() and _is_within(resolved, inp):
                raise UsageError(f"output {shown} is inside the input folder {given}; choose another output path")
        try:
            info = os.stat(resolved)
        except OSError:
            return
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:  # only a file with several links can be one
            same = self._input_identities().get((info.st_dev, info.st_ino))
            if same is not None:
                raise UsageError(f"output {shown} is the same file as the input {same} (a hard link); "
                                 "choose another output path")

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
        self._files.setdefault(resolved, None)
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

    def write(self, path: str | Path, data: bytes | str, allow_existing: bool = False, fsync: bool = False) -> Path:
        """Claim ``path`` (see :meth:`file`) and write ``data`` to it atomically; return ``path``."""
        self.file(path, allow_existing=allow_existing)
        return write_atomic(path, data, fsync=fsync)

    @contextlib.contextmanager
    def writing(self, path: str | Path, allow_existing: bool = False, fsync: bool = False) -> Iterator[Path]:
        """Claim ``path`` and yield a temporary path to write it through (see :func:`atomic_output`)."""
        self.file(path, allow_existing=allow_existing)
        with atomic_output(path, fsync=fsync) as tmp:
            yield tmp

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
        record_outputs(by_folder)
