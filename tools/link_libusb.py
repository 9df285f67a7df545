"""Make ``import open3d`` work in this venv for any script, not only through cvsuite.

open3d 0.20's ``libOpen3D.so`` needs ``libusb-1.0.so.0``, which bare systems lack (Debian package
``libusb-1.0-0``). Its RUNPATH starts with ``$ORIGIN``, so a symlink named ``libusb-1.0.so.0`` inside
the open3d package pointing at the copy that the pip package ``libusb-package`` ships is found by the
dynamic loader with no environment variable and no root. Run by ``make install``; idempotent; does
nothing when the system already has the library.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def main() -> int:
    try:
        ctypes.CDLL("libusb-1.0.so.0")
        print("link_libusb: the system has libusb-1.0.so.0; nothing to do")
        return 0
    except OSError:
        pass
    open3d_dir, libusb_dir = package_dir("open3d"), package_dir("libusb_package")
    if open3d_dir is None or libusb_dir is None:
        print("link_libusb: open3d or libusb-package not installed; nothing to do")
        return 0
    source = libusb_dir / "libusb-1.0.so"
    link = open3d_dir / "libusb-1.0.so.0"
    if not source.is_file():
        print(f"link_libusb: {source} missing", file=sys.stderr)
        return 1
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(source, open3d_dir), link)
    print(f"link_libusb: {link} -> {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
