"""Unpicklers that rebuild numpy arrays and nothing else: no code carried by a file ever runs.

Legacy dataset and model files (CIFAR python batches, MANO model pickles) are pickles. Loading them
with plain :mod:`pickle` would run whatever callable a tampered file names; :class:`ArrayUnpickler`
resolves only numpy's array/dtype reconstructors (to the objects themselves, never by importing a
name from the file) and refuses every other global with ``pickle.UnpicklingError``.

Example::

    with open("data_batch_1", "rb") as handle:
        batch = ArrayUnpickler(handle, encoding="bytes").load()

Subclasses extend the table for formats with a few more harmless types (see ``apps/hand/mano.py``).
"""
from __future__ import annotations

import pickle
from typing import Any

import numpy as np


def latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles of bytes use it (text -> latin-1 bytes), nothing more."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError("refused _codecs.encode with unexpected arguments")
    return text.encode("latin1")


def numpy_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for numpy's array reconstructors under their NumPy 1 and 2 names."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    table: dict[tuple[str, str], Any] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = _reconstruct
        table[(module, "scalar")] = scalar
    for module in ("numpy", "numpy.core.numeric", "numpy._core.numeric"):
        table[(module, "ndarray")] = np.ndarray
        table[(module, "dtype")] = np.dtype
    table[("_codecs", "encode")] = latin1_encode
    return table


class ArrayUnpickler(pickle.Unpickler):
    """Resolves only the globals in :attr:`table`; anything else is refused (``refusal`` + name)."""

    table: dict[tuple[str, str], Any] = numpy_globals()
    refusal = "refusing to load"

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if (module, name) in self.table:
            return self.table[(module, name)]
        raise pickle.UnpicklingError(f"{self.refusal} {module}.{name}")
