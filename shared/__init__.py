"""cvsuite's shared layer: losses, backbones, training engine, weights and CLI plumbing.

Importing this package first applies :mod:`shared.compat` (fixes for upstream breakage).
"""
from . import compat as _compat  # noqa: F401  (must run before basicsr/open3d are imported)

__version__ = "0.1.0"
