"""Config keys out of their declared range (issue 25 item 9): each is one ``cvsuite: error:`` line
naming the key, exit 2, before any data is read. The bounds are declared where each field is
(``shared.config.bounded``) and checked by ``shared.config.check_bounds`` on every config read.

Before issue 25 each of these was accepted: ``sr model.scale=0`` died in a ZeroDivisionError,
``sr data.length=1e12`` asked for an 8 TB allocation, the rest trained on nonsense with exit 0.
"""
from __future__ import annotations

from pathlib import Path

from .harness import BadCase

QUIET = ["train.progress=false", "train.tensorboard=false", "train.max_steps=1"]

VERBS = {"sr": ["sr", "train"], "mot": ["mot", "train"], "points": ["points", "train"],
         "pretrain": ["pretrain", "train", "--data", "digits"], "hand-pretrain": ["hand", "pretrain"],
         "hand": ["hand", "train"], "scrl-pretrain": ["scrl", "pretrain"], "scrl": ["scrl", "finetune"]}

# (app verb, override, the key named in the error line)
OUT_OF_RANGE = [
    ("sr", "model.scale=0", "model.scale"),
    ("sr", "model.body_blocks=-1", "model.body_blocks"),
    ("sr", "data.length=1000000000000", "data.length"),
    ("sr", "data.kind_probs=[0.5, -0.5]", "data.kind_probs"),
    ("sr", "loss.temperature=0", "loss.temperature"),
    ("sr", "loss.temperature=.inf", "loss.temperature"),
    ("mot", "bank_momentum=2", "bank_momentum"),
    ("mot", "pair_window=-1", "pair_window"),
    ("mot", "min_score=1.5", "min_score"),
    ("points", "num_anchors=100000", "num_anchors"),
    ("points", "points=5000000", "points"),
    ("points", "label_fraction=0", "label_fraction"),
    ("points", "band_start=[0.0]", "band_start"),
    ("pretrain", "moco.momentum=1.5", "moco.momentum"),
    ("pretrain", "wmse.num_views=1", "num_views"),  # the section's own check speaks first
    ("hand-pretrain", "bg_swap=2", "bg_swap"),
    ("hand-pretrain", "temperature=-0.1", "temperature"),
    ("hand", "w2d=-1", "w2d"),
    ("hand", "label_fraction=1.5", "label_fraction"),
    ("scrl-pretrain", "views.boxes=0", "views.boxes"),
    ("scrl-pretrain", "views.flip=nan", "views.flip"),
    ("scrl", "detector.score_thresh=2", "detector.score_thresh"),
    ("scrl", "detector.anchor_sizes=[]", "detector.anchor_sizes"),
    ("scrl", "detector.detections=0", "detector.detections"),
]


def _argv(t: Path, app: str, override: str) -> list:
    return [*VERBS[app], f"train.out_dir={t / 'out' / 'run'}", *QUIET, override]


CASES = [
    BadCase(f"bounds-{app}-{override.split('=')[0]}-" + "".join(c for c in override.split("=")[1] if c.isalnum() or c in ".-"),
            (lambda a, o: lambda t: _argv(t, a, o))(app, override), exit_code=2, match=key)
    for app, override, key in OUT_OF_RANGE
]
