"""File names that are not UTF-8 (issue 25 item 7): Linux allows any bytes in a name; Python keeps
them as surrogate escapes. Before: ``cv2.imwrite`` crashed the process (exit 139, no message) in
``sr infer`` / ``hand infer`` / ``scrl infer``, and ``points infer`` wrote its outputs, then failed
printing the name. Each verb now reads and writes such files (every output is written from Python
with the bytes of the name) and names them escaped in its messages.
"""
from __future__ import annotations

import os
from pathlib import Path

from .harness import BadCase, good_image, text_file

LATIN1 = os.fsdecode(b"caf\xe9")  # "café" in Latin-1: not valid UTF-8


def _outputs_exist(*suffixes: str):
    def check(t: Path) -> None:
        names = [p.name for p in (t / "out").rglob("*") if p.is_file()]
        for suffix in suffixes:
            assert any(n.startswith(LATIN1) and n.endswith(suffix) for n in names), (suffix, names)
    return check


def sr_infer(t: Path) -> list:
    from .cases_sr import infer

    return infer(t, [good_image(t / "in" / f"{LATIN1}.png", size=(24, 20))])


def hand_infer(t: Path) -> list:
    from .cases_hand import _some_weights

    return ["hand", "infer", good_image(t / "in" / f"{LATIN1}.png", size=(40, 40)), "--out", t / "out",
            "--weights", _some_weights(t)]


def scrl_infer(t: Path) -> list:
    return ["scrl", "infer", good_image(t / "in" / f"{LATIN1}.png", size=(64, 64)), "--out", t / "out"]


def points_infer(t: Path) -> list:
    import numpy as np

    rows = np.random.default_rng(0).normal(size=(64, 3))
    path = text_file(t / "in" / f"{LATIN1}.xyz", [" ".join(f"{v:.4f}" for v in r) for r in rows])
    return ["points", "infer", path, "--out", t / "out", "--render", "matplotlib"]


CASES = [
    BadCase("names-sr-infer-latin1", sr_infer, exit_code=0, check=_outputs_exist(".png")),
    BadCase("names-hand-infer-latin1", hand_infer, exit_code=0, check=_outputs_exist(".json", ".png")),
    BadCase("names-scrl-infer-latin1", scrl_infer, exit_code=0, check=_outputs_exist("_det.png")),
    BadCase("names-points-infer-latin1", points_infer, exit_code=0, check=_outputs_exist(".ply")),
]
