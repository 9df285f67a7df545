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
import importlib.abc
import importlib.machinery
import sys
import types


class _FunctionalTensorShim(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Provides ``torchvision.transforms.functional_tensor`` only when torchvision lacks it.

    It sits at the end of ``sys.meta_path``, so it is asked only after the normal finders failed,
    and it imports nothing until basicsr (or anyone) actually imports that name.
    """

    name = "torchvision.transforms.functional_tensor"

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[override]
        if fullname != self.name:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):  # type: ignore[override]
        return None

    def exec_module(self, module: types.ModuleType) -> None:  # type: ignore[override]
        from torchvision.transforms import functional as tv_functional

        module.rgb_to_grayscale = tv_functional.rgb_to_grayscale  # type: ignore[attr-defined]
        module.__doc__ = "cvsuite compat shim for basicsr (torchvision >= 0.17 removed functional_tensor)."


def _install_functional_tensor_shim() -> None:
    if not any(isinstance(f, _FunctionalTensorShim) for f in sys.meta_path):
        sys.meta_path.append(_FunctionalTensorShim())


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
