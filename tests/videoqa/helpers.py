"""Shared test helpers for the videoqa tests."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from apps.videoqa.data import open_split


def write_random_features(root: Path, path: Path, frames: int = 36, dim: int = 2048) -> Path:
    """A TVQA-style per-frame features HDF5 (random float32, keyed by ``vid_name``) for the train and val
    clips of ``root``: the stand-in for ``tvqa_imagenet_pool5.h5`` in the paper-scale config tests."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        for split in ("train", "val"):
            for vid in {it.vid_name for it in open_split(root, split).items}:
                h5.create_dataset(vid, data=rng.standard_normal((frames, dim)).astype(np.float32))
    return path
