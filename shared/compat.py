"""Fixes for known upstream breakage, applied once before anything imports the affected packages.

Imported first by :mod:`shared` (so by every entry point). Each fix is small, documented and
leaves NumPy alone:

* basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision >= 0.17
  removed. We register a module under that name exposing ``rgb_to_grayscale`` (the only name
  basicsr uses) from ``torchvision.transforms.functional``.
* open3d 0.20 wheels need ``libusb-1.0.so.0``. If the system lacks it and the pip package
  ``libusb-package`` is installed, we preload its copy with ``ctypes`` so ``import open3d`` works.
* motmetrics' ``distances.iou_matrix`` calls ``np.asfarray`` (gone in NumPy 2): we do not patch it;
  the MOT app computes IoU distances itself.
"""
from __future__ import annotations

import ctypes
import importlib.util
import sys
import types


def _install_functional_tensor_shim() -> None:
    name = "torchvision.transforms.functional_tensor"
    if name in sys.modules:
        return
    try:
        if importlib.util.find_spec(name) is not None:
            return
    except (ImportError, ValueError):
        pass
    try:
        from torchvision.transforms import functional as tv_functional
    except ImportError:  # torchvision missing: nothing to fix
        return
    shim = types.ModuleType(name)
    shim.rgb_to_grayscale = tv_functional.rgb_to_grayscale  # type: ignore[attr-defined]
    shim.__doc__ = "cvsuite compat shim for basicsr (torchvision removed functional_tensor)."
    sys.modules[name] = shim


def _preload_libusb() -> None:
    try:
        ctypes.CDLL("libusb-1.0.so.0")
        return
    except OSError:
        pass
    try:
        import libusb_package  # type: ignore[import-not-found]
    except ImportError:
        return
    path = libusb_package.get_library_path()
    if path:
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


def apply() -> None:
    """Apply every fix (idempotent)."""
    _install_functional_tensor_shim()
    _preload_libusb()


apply()
