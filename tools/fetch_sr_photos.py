"""Fetch the extra real training photos of the shipped SR weights (see ``apps/sr/photos.py``).

    python tools/fetch_sr_photos.py [--out DIR] [--deb FILE.deb] [--force]

Downloads Debian's ``plasma-workspace-wallpapers`` (pinned version) with ``apt-get download``, or
takes a ``.deb`` you already have (``--deb``), unpacks it with ``dpkg -x`` into a temporary folder
and copies its eight real photographs to DIR (default ``$CVSUITE_SR_PHOTOS`` or
``~/.cache/cvsuite/sr_photos``) as ``<name>.jpg``, each checked against its pinned sha256. Photos
already there with the pinned content are kept. Licence: see ``apps/sr/photos.py`` (LGPLv3 per the
wallpapers' metadata, GPL-2+ per the package's copyright file); nothing is redistributed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.sr.photos import DEB_PACKAGE, DEB_VERSION, WALLPAPERS, file_sha256, install_from_tree, photo_dir  # noqa: E402
from shared.errors import CvsuiteError  # noqa: E402
from shared.guard import OutputGuard  # noqa: E402


def _run(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        raise CvsuiteError(f"{cmd[0]} not found: this script needs a Debian/Ubuntu system (apt-get, dpkg), "
                           f"or pass --deb with {DEB_PACKAGE}_{DEB_VERSION.split(':')[-1]}_all.deb on a machine with dpkg")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CvsuiteError(f"{' '.join(cmd)} failed: {last}")


def fetch(out: Path, deb: Path | None, force: bool) -> list[Path]:
    """Claim the outputs, get the package, unpack it and install the verified photos."""
    guard = OutputGuard(inputs=[deb], force=force)
    out = guard.directory(out)
    todo = [name for name in WALLPAPERS
            if not ((out / f"{name}.jpg").is_file() and file_sha256(out / f"{name}.jpg") == WALLPAPERS[name][1])]
    for name in todo:
        guard.file(out / f"{name}.jpg")
    if not todo:
        return []
    with tempfile.TemporaryDirectory(prefix="cvsuite-sr-photos-") as tmp:
        work = Path(tmp)
        if deb is None:
            _run(["apt-get", "download", f"{DEB_PACKAGE}={DEB_VERSION}"], work)
            debs = sorted(work.glob(f"{DEB_PACKAGE}_*.deb"))
            if not debs:
                raise CvsuiteError(f"apt-get download wrote no {DEB_PACKAGE} package")
            deb = debs[0]
        elif not deb.is_file():
            raise CvsuiteError(f"{deb}: no such file")
        _run(["dpkg", "-x", str(deb), str(work / "tree")], work)
        staged = install_from_tree(work / "tree", work / "photos")
        written = []
        for path in staged:
            if path.stem in todo:
                target = out / path.name
                shutil.copyfile(path, target)
                written.append(target)
    guard.record()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="target folder (default: $CVSUITE_SR_PHOTOS or "
                                                                 "~/.cache/cvsuite/sr_photos)")
    parser.add_argument("--deb", type=Path, help=f"use this {DEB_PACKAGE} .deb instead of apt-get download")
    parser.add_argument("--force", action="store_true", help="replace files cvsuite did not write")
    args = parser.parse_args(argv)
    try:
        written = fetch(args.out or photo_dir(), args.deb, args.force)
    except CvsuiteError as exc:
        print(f"cvsuite: error: {exc}", file=sys.stderr)
        return 2 if type(exc).__name__ == "UsageError" else 1
    out = args.out or photo_dir()
    print(f"{len(written)} photo(s) written, {len(WALLPAPERS) - len(written)} already present; "
          f"all {len(WALLPAPERS)} in {out} (sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
