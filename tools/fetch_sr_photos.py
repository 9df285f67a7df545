"""Fetch the extra real training photos of the shipped SR weights (see ``apps/sr/photos.py``).

    python tools/fetch_sr_photos.py [--out DIR] [--deb FILE.deb ...] [--force]

For every pinned Debian package that holds a photo not yet in DIR (``plasma-workspace-wallpapers``,
``lomiri-wallpapers-16.04``, ``lomiri-wallpapers-20.04``, ``mate-backgrounds``; versions in
``apps/sr/photos.py``) it runs ``apt-get download PKG=VERSION``, or takes a ``.deb`` you already
have (``--deb``, repeatable, matched by its ``PKG_`` file-name prefix), unpacks it with ``dpkg -x``
into a temporary folder and copies the package's real photographs to DIR (default
``$CVSUITE_SR_PHOTOS`` or ``~/.cache/cvsuite/sr_photos``) as ``<name>.jpg``, each checked against its
pinned sha256. Photos already there with the pinned content are kept. Licences: see
``apps/sr/photos.py`` (per package and file); nothing is redistributed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.sr.photos import PACKAGES, WALLPAPERS, file_sha256, install_from_tree, photo_dir  # noqa: E402
from shared.errors import CvsuiteError, UsageError  # noqa: E402
from shared.guard import OutputGuard  # noqa: E402


def _run(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        raise CvsuiteError(f"{cmd[0]} not found: this script needs a Debian/Ubuntu system (apt-get, dpkg), "
                           f"or pass --deb with the packages' .deb files on a machine with dpkg")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CvsuiteError(f"{' '.join(cmd)} failed: {last}")


def _given_debs(debs: list[Path]) -> dict[str, Path]:
    """The --deb files by package name (``PKG_VERSION_ARCH.deb``); one error for an unknown or missing one."""
    by_package: dict[str, Path] = {}
    for deb in debs:
        package = deb.name.split("_", 1)[0]
        if package not in PACKAGES:
            raise UsageError(f"--deb {deb}: not one of the photo packages ({', '.join(PACKAGES)})")
        if not deb.is_file():
            raise CvsuiteError(f"{deb}: no such file")
        by_package[package] = deb
    return by_package


def fetch(out: Path, debs: list[Path], force: bool) -> list[Path]:
    """Claim the outputs, get each package that is still needed, unpack it and install its verified photos."""
    given = _given_debs(debs)
    guard = OutputGuard(inputs=list(given.values()), force=force)
    out = guard.directory(out)
    todo = [name for name, photo in WALLPAPERS.items()
            if not ((out / f"{name}.jpg").is_file() and file_sha256(out / f"{name}.jpg") == photo.sha256)]
    for name in todo:
        guard.file(out / f"{name}.jpg")
    written = []
    for package in dict.fromkeys(WALLPAPERS[name].package for name in todo):
        with tempfile.TemporaryDirectory(prefix="cvsuite-sr-photos-") as tmp:
            work = Path(tmp)
            deb = given.get(package)
            if deb is None:
                _run(["apt-get", "download", f"{package}={PACKAGES[package].version}"], work)
                found = sorted(work.glob(f"{package}_*.deb"))
                if not found:
                    raise CvsuiteError(f"apt-get download wrote no {package} package")
                deb = found[0]
            _run(["dpkg", "-x", str(deb), str(work / "tree")], work)
            for path in install_from_tree(work / "tree", work / "photos", package):
                if path.stem in todo:
                    target = out / path.name
                    shutil.copyfile(path, target)
                    written.append(target)
    if written:
        guard.record()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="target folder (default: $CVSUITE_SR_PHOTOS or "
                                                                 "~/.cache/cvsuite/sr_photos)")
    parser.add_argument("--deb", type=Path, action="append", default=[],
                        help="use this package file instead of apt-get download (repeatable; PKG_VERSION_all.deb)")
    parser.add_argument("--force", action="store_true", help="replace files cvsuite did not write")
    args = parser.parse_args(argv)
    try:
        written = fetch(args.out or photo_dir(), args.deb, args.force)
    except CvsuiteError as exc:
        print(f"cvsuite: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    out = args.out or photo_dir()
    print(f"{len(written)} photo(s) written, {len(WALLPAPERS) - len(written)} already present; "
          f"all {len(WALLPAPERS)} in {out} (sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
