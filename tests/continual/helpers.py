"""Tiny CURL configs and data for the continual tests."""
from __future__ import annotations

import numpy as np

from apps.continual.data import ImageSet, read_digits
from apps.continual.train import ContinualConfig
from shared.config import load_config

TINY_MODEL = ["model.n_enc=[16,8]", "model.n_dec=[16]", "model.n_z=3", "model.n_y=5"]
QUIET = ["train.progress=false", "train.tensorboard=false", "train.log_every=1"]


def tiny_cfg(out, *extra: str, steps: int = 8, batch: int = 10):
    return load_config(ContinualConfig, None, [f"train.out_dir={out}", f"train.max_steps={steps}",
                                               f"train.batch_size={batch}", *TINY_MODEL, *QUIET, *extra])


def digits_subset(split: str, classes=(0, 1, 2, 3), per_class: int = 15) -> ImageSet:
    data = read_digits(split)
    keep = np.concatenate([np.flatnonzero(data.labels == c)[:per_class] for c in classes])
    remap = {c: i for i, c in enumerate(classes)}
    return ImageSet(data.images[keep], np.array([remap[int(v)] for v in data.labels[keep]]),
                    [str(c) for c in classes], f"digits-{split}-subset")


class RaisingLabels:
    """Labels that fail on any access: training in the unsupervised modes must never read them."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("training read the labels")

    __getitem__ = __iter__ = __len__ = __array__ = _fail
