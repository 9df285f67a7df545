"""shared.safe_pickle: numpy arrays round-trip; any other global is refused before it is called."""
from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from shared.safe_pickle import ArrayUnpickler


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_arrays_round_trip():
    data = {"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": [1, 2, 3], "x": np.float32(2.5),
            b"raw": b"\x00\xffbytes"}
    for protocol in (0, 2):  # the protocols of the legacy files this reads (CIFAR batches, MANO)
        back = ArrayUnpickler(io.BytesIO(pickle.dumps(data, protocol=protocol)), encoding="bytes").load()
        assert np.array_equal(back["data"], data["data"]) and back["data"].dtype == np.uint8
        assert back["labels"] == [1, 2, 3] and back["x"] == np.float32(2.5) and back[b"raw"] == data[b"raw"]


def test_code_carrying_pickle_is_refused():
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        ArrayUnpickler(io.BytesIO(pickle.dumps(_Payload()))).load()
