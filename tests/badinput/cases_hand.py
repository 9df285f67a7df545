"""Bad input for ``cvsuite hand``: HanCo / FreiHAND files, prediction files, MANO pickles, images, weights."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np

from .harness import BadCase, garbage, good_image, huge_header_png, zero_byte

TRAIN_FAST = ["--steps", "1", "image_size=32", "train.batch_size=4", "train.progress=false", "num_threads=1"]


def _hanco(t: Path) -> Path:
    """A tiny valid synthetic HanCo root under the inputs."""
    from apps.hand.synth import SynthConfig, generate

    root = t / "in" / "hanco"
    generate(root, 1, seed=0, cfg=SynthConfig(size=32, frames=2))
    return root


def _train(t: Path, root: Path, *extra) -> list:
    return ["hand", "train", "--data", root, "--out", t / "out" / "run", *extra, *TRAIN_FAST, "lifter_steps=5"]


def missing_calib(t: Path) -> list:
    root = _hanco(t)
    (root / "calib" / "0000" / "00000001.json").unlink()
    return _train(t, root)


def calib_without_k(t: Path) -> list:
    root = _hanco(t)
    path = root / "calib" / "0000" / "00000001.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({"M": data["M"]}))
    return _train(t, root)


def xyz_wrong_shape(t: Path) -> list:
    root = _hanco(t)
    (root / "xyz" / "0000" / "00000000.json").write_text(json.dumps(np.zeros((20, 3)).tolist()))
    return _train(t, root)


def xyz_malformed(t: Path) -> list:
    root = _hanco(t)
    (root / "xyz" / "0000" / "00000000.json").write_text("[[0, 0, 0],\n [0, 0")
    return _train(t, root)


def _fh_gt(t: Path, n: int = 3) -> Path:
    gt = t / "in" / "gt"
    gt.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    (gt / "evaluation_xyz.json").write_text(json.dumps(rng.normal(0, 0.03, (n, 21, 3)).tolist()))
    (gt / "evaluation_verts.json").write_text(json.dumps(rng.normal(0, 0.03, (n, 778, 3)).tolist()))
    return gt


def _eval(t: Path, pred_obj=None, pred_text: str | None = None) -> list:
    gt = _fh_gt(t)
    pred = t / "in" / "pred.json"
    pred.write_text(pred_text if pred_text is not None else json.dumps(pred_obj))
    return ["hand", "eval", "--gt", gt, "--pred", pred, "--json", t / "out" / "scores.json"]


def _mano(t: Path, payload: bytes) -> list:
    path = t / "in" / "MANO_RIGHT.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return _train(t, _hanco(t), "--mano", path)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/cvsuite_hand_pwned",))


def _image_in(t: Path, maker, name: str) -> list:
    path = maker(t / "in" / name)
    return ["hand", "infer", path, "--out", t / "out", "--weights", _some_weights(t)]


def _some_weights(t: Path) -> Path:
    """A valid (untrained) regressor, so image errors are what the case tests."""
    import torch

    from apps.hand.model import KeypointNet
    from shared.weights import save_safetensors

    path = t / "in" / "w.safetensors"
    if not path.is_file():
        torch.manual_seed(0)
        save_safetensors(KeypointNet().state_dict(), path, metadata={"image_size": "32"})
    return path


def _predict_missing_k(t: Path) -> list:
    from apps.hand.data import HanCo
    from apps.hand.infer import write_freihand_eval

    class _Plain:
        @staticmethod
        def file(p):
            Path(p).parent.mkdir(parents=True, exist_ok=True)
            return Path(p)

        @staticmethod
        def write(p, data):
            Path(p).parent.mkdir(parents=True, exist_ok=True)
            Path(p).write_bytes(data if isinstance(data, bytes) else data.encode())
            return Path(p)

    root = _hanco(t)
    fh = t / "in" / "fh"
    write_freihand_eval(fh, HanCo(root), ["0000"], _Plain())
    (fh / "evaluation_K.json").unlink()
    return ["hand", "predict", "--data", fh, "--out", t / "out" / "pred.json", "--weights", _some_weights(t)]


def _mixed_folder(t: Path, with_broken: bool) -> list:
    """A folder of hand crops mixed with non-image files (and, optionally, a broken JPEG)."""
    folder = t / "in" / "crops"
    good_image(folder / "a.png", (64, 64))
    good_image(folder / "wide.jpg", (40, 120), seed=1)
    garbage(folder / "notes.txt")
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    if with_broken:
        garbage(folder / "broken.jpg")
    return ["hand", "infer", folder, "--out", t / "out", "--weights", _some_weights(t)]


def _check_mixed_folder(t: Path) -> None:
    outs = sorted(p.name for p in (t / "out").iterdir() if not p.name.startswith("."))
    assert outs == ["a.json", "a_skeleton.png", "wide.json", "wide_skeleton.png"], outs
    rec = json.loads((t / "out" / "wide.json").read_text())
    assert (rec["width"], rec["height"]) == (120, 40)  # non-square: keypoints in its own pixels


def _missing_calib_sequence(t: Path) -> list:
    import shutil

    from apps.hand.synth import SynthConfig, generate

    root = t / "in" / "hanco"
    generate(root, 2, seed=0, cfg=SynthConfig(size=32, frames=2))
    shutil.rmtree(root / "calib" / "0001")
    return _train(t, root)


def _mano_chumpy_payload(t: Path) -> list:
    """A MANO pickle with the real chumpy structure whose Ch state carries a code-running payload."""
    import sys
    import types

    mod = types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), mod
    try:
        leaf = Ch()
        leaf.__dict__.update({"x": np.zeros((778, 3)), "_dirty_vars": {"x"}, "_itr": None,
                              "_depends_on_deps": {"r": _Payload()}})
        payload = pickle.dumps({"v_template": leaf, "shapedirs": np.zeros((778, 3, 10))}, protocol=2)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return _mano(t, payload)


def _valid_mano(t: Path) -> Path:
    """A loadable MANO pickle: MANO's keys and shapes, random arrays (never licensed data)."""
    rng = np.random.default_rng(0)
    jreg = np.zeros((16, 778))
    for j in range(16):
        jreg[j, rng.choice(778, 20, replace=False)] = 1 / 20
    weights = rng.random((778, 16))
    model = {"v_template": rng.normal(0, 0.05, (778, 3)), "shapedirs": rng.normal(0, 0.01, (778, 3, 10)),
             "posedirs": rng.normal(0, 0.005, (778, 3, 135)), "J_regressor": jreg,
             "weights": weights / weights.sum(1, keepdims=True), "f": rng.integers(0, 778, (1538, 3)),
             "kintree_table": np.array([[4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], list(range(16))])}
    path = t / "in" / "MANO_RIGHT.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model, protocol=2))
    return path


def _mano_fit_malformed(t: Path) -> list:
    """A HanCo root whose shape/ file holds a MANO fit with 9 shape values."""
    root = _hanco(t)
    (root / "shape" / "0000" / "00000001.json").write_text(json.dumps(
        {"poses": [[0.0] * 48], "shapes": [[0.0] * 9], "global_t": [[[0.0, 0.0, 0.5]]]}))
    return _train(t, root, "--mano", _valid_mano(t))


CASES = [
    BadCase("hand-infer-box-outside", lambda t: ["hand", "infer", good_image(t / "in" / "a.png", (300, 400)), "--out", t / "out",
                                                 "--weights", _some_weights(t), "--box", "500,10,50,50"],
            exit_code=1, match="a.png: --box 500,10,50,50 lies outside the image (400x300)"),
    BadCase("hand-infer-box-malformed", lambda t: ["hand", "infer", good_image(t / "in" / "a.png"), "--out", t / "out",
                                                   "--weights", _some_weights(t), "--box", "1,2,3"],
            exit_code=2, match="--box must be x,y,w,h"),
    BadCase("hand-infer-folder-mixed", lambda t: _mixed_folder(t, False), exit_code=0, check=_check_mixed_folder),
    BadCase("hand-infer-folder-broken-image", lambda t: _mixed_folder(t, True), exit_code=1, match="broken.jpg"),
    BadCase("hand-train-sequence-without-calib", _missing_calib_sequence, exit_code=1, match="calib file not found"),
    BadCase("hand-train-mano-chumpy-payload", _mano_chumpy_payload, exit_code=1, match="refused global"),
    BadCase("hand-train-missing-calib", missing_calib, exit_code=1, match="00000001.json: calib file not found"),
    BadCase("hand-train-calib-without-K", calib_without_k, exit_code=1, match="calib has no 'K'"),
    BadCase("hand-train-xyz-wrong-shape", xyz_wrong_shape, exit_code=1, match="xyz has shape 20x3"),
    BadCase("hand-train-xyz-malformed", xyz_malformed, exit_code=1, match="00000000.json:2: malformed JSON"),
    BadCase("hand-pretrain-not-hanco", lambda t: ["hand", "pretrain", "--data", garbage(t / "in" / "x" / "a.txt").parent,
                                                  "--out", t / "out" / "run", *TRAIN_FAST], exit_code=1, match="not a HanCo root"),
    BadCase("hand-pretrain-bad-positives", lambda t: ["hand", "pretrain", "--data", _hanco(t), "--positives", "a+z",
                                                      "--out", t / "out" / "run", *TRAIN_FAST], exit_code=2, match="a+z"),
    BadCase("hand-eval-pred-length-mismatch",
            lambda t: _eval(t, [np.zeros((2, 21, 3)).tolist(), np.zeros((2, 778, 3)).tolist()]),
            exit_code=1, match="xyz_list has 2 entries but the ground truth has 3 frames"),
    BadCase("hand-eval-pred-not-21x3",
            lambda t: _eval(t, [np.zeros((3, 20, 3)).tolist(), np.zeros((3, 778, 3)).tolist()]),
            exit_code=1, match="xyz_list[0] has shape 20x3, expected 21x3"),
    BadCase("hand-eval-pred-xyz-2d",
            lambda t: _eval(t, [np.zeros((3, 21, 2)).tolist(), np.zeros((3, 778, 3)).tolist()]),
            exit_code=1, match="expected N x 3"),
    BadCase("hand-eval-pred-not-two-lists", lambda t: _eval(t, {"xyz": []}), exit_code=1, match="[xyz_list, verts_list]"),
    BadCase("hand-eval-pred-malformed", lambda t: _eval(t, pred_text="[[1, 2],\n [3"), exit_code=1, match="pred.json:2"),
    BadCase("hand-eval-pred-zero-byte", lambda t: _eval(t, pred_text=""), exit_code=1, match="pred.json"),
    BadCase("hand-eval-gt-missing", lambda t: ["hand", "eval", "--gt", garbage(t / "in" / "gt" / "x.txt").parent,
                                               "--pred", garbage(t / "in" / "pred.json", "[]"), "--json", t / "out" / "s.json"],
            exit_code=1, match="evaluation_xyz.json"),
    BadCase("hand-eval-output-is-input", lambda t: ["hand", "eval", "--gt", _fh_gt(t), "--pred",
                                                    garbage(t / "in" / "pred.json", "[]"), "--json", t / "in" / "pred.json"],
            exit_code=2, match="is the input"),
    BadCase("hand-train-mano-missing-file", lambda t: _train(t, _hanco(t), "--mano", t / "in" / "MANO_RIGHT.pkl"),
            exit_code=1, match="MANO_RIGHT.pkl: MANO model file not found"),
    BadCase("hand-infer-mano-missing-file", lambda t: ["hand", "infer", good_image(t / "in" / "a.png"), "--out", t / "out",
                                                       "--weights", _some_weights(t), "--mano", t / "in" / "MANO_RIGHT.pkl"],
            exit_code=1, match="MANO_RIGHT.pkl: MANO model file not found"),
    BadCase("hand-predict-mano-is-a-folder", lambda t: ["hand", "predict", "--data", _fh_gt(t), "--out", t / "out" / "p.json",
                                                        "--mano", (t / "in" / "mano_dir").mkdir(parents=True) or t / "in" / "mano_dir"],
            exit_code=1, match="mano_dir: MANO model file not found"),
    BadCase("hand-infer-mano-weights-without-head", lambda t: ["hand", "infer", good_image(t / "in" / "a.png"), "--out",
                                                               t / "out", "--weights", _some_weights(t), "--mano", _valid_mano(t)],
            exit_code=1, match="these weights have no MANO head"),
    BadCase("hand-train-mano-fit-malformed", _mano_fit_malformed, exit_code=1,
            match="00000001.json: MANO fit 'shapes' holds 9 values, expected 10"),
    BadCase("hand-train-mano-not-a-pickle", lambda t: _mano(t, b"not a pickle at all\n"), exit_code=1,
            match="not a MANO pickle"),
    BadCase("hand-train-mano-wrong-keys", lambda t: _mano(t, pickle.dumps({"a": np.zeros(3)}, protocol=2)), exit_code=1,
            match="no 'v_template'"),
    BadCase("hand-train-mano-carries-code", lambda t: _mano(t, pickle.dumps({"v_template": _Payload()}, protocol=2)),
            exit_code=1, match="refused global"),
    BadCase("hand-infer-zero-byte", lambda t: _image_in(t, zero_byte, "a.png"), exit_code=1, match="a.png"),
    BadCase("hand-infer-garbage-jpg", lambda t: _image_in(t, garbage, "b.jpg"), exit_code=1, match="b.jpg"),
    BadCase("hand-infer-huge-header", lambda t: _image_in(t, huge_header_png, "c.png"), exit_code=1, match="c.png"),
    BadCase("hand-infer-not-an-image", lambda t: _image_in(t, garbage, "notes.txt"), exit_code=1, match="notes.txt"),
    BadCase("hand-infer-missing", lambda t: ["hand", "infer", t / "in" / "nope.png", "--out", t / "out"], exit_code=1,
            match="nope.png"),
    BadCase("hand-infer-weights-garbage", lambda t: ["hand", "infer", good_image(t / "in" / "a.png"), "--out", t / "out",
                                                     "--weights", garbage(t / "in" / "w.safetensors")],
            exit_code=1, match="w.safetensors"),
    BadCase("hand-infer-encoder-as-regressor", lambda t: ["hand", "infer", good_image(t / "in" / "a.png"), "--out", t / "out",
                                                          "--weights", _encoder(t)], exit_code=1, match="no keypoint head"),
    BadCase("hand-predict-missing-K", _predict_missing_k, exit_code=1, match="evaluation_K.json"),
    BadCase("hand-synth-bad-count", lambda t: ["hand", "synth", "--out", t / "out", "--sequences", "0"], exit_code=2,
            match="--sequences"),
    BadCase("hand-synth-bad-cameras", lambda t: ["hand", "synth", "--out", t / "out", "--cameras", "0"], exit_code=2,
            match="--cameras"),
    BadCase("hand-train-bad-fraction", lambda t: _train(t, _hanco(t), "--labels", "1.5"), exit_code=2,
            match="label_fraction"),
]


def _encoder(t: Path) -> Path:
    import torch

    from apps.hand.model import MoCoNet
    from shared.weights import save_safetensors

    path = t / "in" / "enc.safetensors"
    torch.manual_seed(0)
    save_safetensors(MoCoNet().state_dict(), path)
    return path
