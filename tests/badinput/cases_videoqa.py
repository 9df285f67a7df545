"""``cvsuite videoqa {synth,pretrain,train,eval,infer}`` on bad input (issue 19, "Bad input")."""
from __future__ import annotations

import json
from pathlib import Path

from .harness import BadCase, garbage, symlink

QUIET = ["train.progress=false", "train.tensorboard=false", "train.batch_size=2", "model.dim=16", "model.layers=1",
         "model.heads=2", "model.ff=32", "model.cnn_width=4"]


def dataset(t: Path, clips: int = 3) -> Path:
    """A small synthetic set in the TVQA release layout under ``t/in/data``."""
    from apps.videoqa.synth import write_dataset
    from shared.guard import OutputGuard

    root = t / "in" / "data"
    write_dataset(root, clips, seed=7, guard=OutputGuard([], force=True))
    for ledger in root.rglob(".cvsuite-outputs.json"):
        ledger.unlink()
    return root


def weights(t: Path, visual: str = "frames") -> Path:
    """A tiny videoqa weights file (what ``videoqa train`` writes)."""
    import torch

    from apps.videoqa.model import ModelConfig, VideoQAModel, save_model
    from apps.videoqa.text import Vocab

    torch.manual_seed(0)
    cfg = ModelConfig(dim=16, layers=1, heads=2, ff=32, cnn_width=4, visual=visual, feature_dim=8)
    path = t / "in" / "w.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = Vocab.build(["what is ann holding", "a red ball"])
    save_model(VideoQAModel(cfg, len(vocab)), vocab, path,
               extra={"data_config": json.dumps({"max_frames": 6})})
    return path


def _edit_val_line(t: Path, edit) -> Path:
    """Dataset whose val jsonl line 2 is changed by ``edit(record) -> record``."""
    root = dataset(t)
    path = root / "tvqa_qa_release" / "tvqa_val.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = json.dumps(edit(json.loads(lines[1])))
    path.write_text("\n".join(lines) + "\n")
    return root


def _eval(t: Path, root: Path, *extra) -> list:
    return ["videoqa", "eval", "--data", root, "--weights", weights(t), *extra]


def _drop(key):
    return lambda r: {k: v for k, v in r.items() if k != key}


def _srt_broken(t: Path) -> list:
    root = dataset(t)
    vid = json.loads((root / "tvqa_qa_release" / "tvqa_val.jsonl").read_text().splitlines()[0])["vid_name"]
    srt = root / "tvqa_subtitles" / f"{vid}.srt"
    srt.write_text(srt.read_text().replace(" --> ", " -> ", 1))
    return _eval(t, root)


def _no_frames(t: Path) -> list:
    root = dataset(t)
    vid = json.loads((root / "tvqa_qa_release" / "tvqa_val.jsonl").read_text().splitlines()[0])["vid_name"]
    for frame in (root / "frames_hq" / "synth_frames" / vid).glob("*.jpg"):
        frame.unlink()
    return _eval(t, root)


def _h5_without_clip(t: Path) -> list:
    import h5py
    import numpy as np

    root = dataset(t)
    path = t / "in" / "feat.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("some_other_clip", data=np.zeros((4, 8), np.float32))
    return ["videoqa", "eval", "--data", root, "--weights", weights(t, "features"), "--features", path]


def _text_model(t: Path, fill) -> list:
    """``videoqa train --text-model t/in/bert`` where ``fill(folder)`` wrote what the folder holds."""
    folder = t / "in" / "bert"
    folder.mkdir(parents=True, exist_ok=True)
    fill(folder)
    return ["videoqa", "train", "--data", dataset(t), "--out", t / "out" / "run", "--steps", "1",
            "--text-model", folder, *QUIET]


def _junk_config(folder: Path) -> None:
    garbage(folder / "config.json", "{model_type: bert,,\n")
    garbage(folder / "model.safetensors")


def _config_but_junk_tokenizer(folder: Path) -> None:
    garbage(folder / "config.json", json.dumps({"model_type": "bert", "hidden_size": 32}))
    garbage(folder / "model.safetensors")
    garbage(folder / "tokenizer.json", "{not a tokenizer")
    garbage(folder / "tokenizer_config.json", json.dumps({"tokenizer_class": "BertTokenizer"}))


CASES = [
    BadCase("videoqa-jsonl-missing-field", lambda t: _eval(t, _edit_val_line(t, _drop("q"))),
            exit_code=1, match="tvqa_val.jsonl:2: missing field 'q'"),
    BadCase("videoqa-jsonl-six-answers", lambda t: _eval(t, _edit_val_line(t, lambda r: r | {"a5": "Extra."})),
            exit_code=1, match="tvqa_val.jsonl:2"),
    BadCase("videoqa-jsonl-four-answers", lambda t: _eval(t, _edit_val_line(t, _drop("a4"))),
            exit_code=1, match="missing field 'a4'"),
    BadCase("videoqa-answer-idx-out-of-range", lambda t: _eval(t, _edit_val_line(t, lambda r: r | {"answer_idx": 5})),
            exit_code=1, match="out of range"),
    BadCase("videoqa-ts-nan", lambda t: _eval(t, _edit_val_line(t, lambda r: r | {"ts": "NaN-12"})),
            exit_code=1, match="tvqa_val.jsonl:2: ts 'NaN-12'"),
    BadCase("videoqa-ts-end-before-start", lambda t: _eval(t, _edit_val_line(t, lambda r: r | {"ts": "9.5-2.0"})),
            exit_code=1, match="tvqa_val.jsonl:2: ts '9.5-2.0'"),
    BadCase("videoqa-jsonl-not-json", lambda t: _eval(t, _edit_val_line(t, lambda r: r) and
                                                       (lambda root: ((root / "tvqa_qa_release" / "tvqa_val.jsonl")
                                                                      .write_text("{not json\n"), root)[1])(t / "in" / "data")),
            exit_code=1, match="tvqa_val.jsonl:1"),
    BadCase("videoqa-srt-broken-timestamp", _srt_broken, exit_code=1, match=".srt:2: broken timestamp"),
    BadCase("videoqa-clip-without-frames", _no_frames, exit_code=1, match="has no frames"),
    BadCase("videoqa-h5-without-clip", _h5_without_clip, exit_code=1, match="has no entry for clip"),
    BadCase("videoqa-text-model-not-checkpoint", lambda t: _text_model(t, lambda f: garbage(f / "vocab.txt")),
            exit_code=1, match="bert is not a Hugging Face checkpoint"),
    BadCase("videoqa-text-model-empty-folder", lambda t: _text_model(t, lambda f: None),
            exit_code=1, match="bert is not a Hugging Face checkpoint"),
    BadCase("videoqa-text-model-junk-config", lambda t: _text_model(t, _junk_config),
            exit_code=1, match="config.json is not valid JSON"),
    BadCase("videoqa-text-model-junk-tokenizer", lambda t: _text_model(t, _config_but_junk_tokenizer),
            exit_code=1, match="bert: cannot read its tokenizer"),
    BadCase("videoqa-text-model-missing-folder",
            lambda t: ["videoqa", "train", "--data", dataset(t), "--out", t / "out" / "run", "--steps", "1",
                       "--text-model", t / "in" / "bert-base-uncased", *QUIET],
            exit_code=1, match="bert-base-uncased: folder not found"),
    BadCase("videoqa-eval-unlabelled-split",
            lambda t: _eval(t, (lambda r: ((r / "synth_test_public_answers.json").unlink(), r)[1])(dataset(t)),
                            "--split", "test_public"),
            exit_code=1, match="answer_idx"),
    BadCase("videoqa-weights-garbage",
            lambda t: ["videoqa", "eval", "--data", dataset(t), "--weights", garbage(t / "in" / "w.safetensors")],
            exit_code=1, match="w.safetensors"),
    BadCase("videoqa-infer-out-is-weights",
            lambda t: ["videoqa", "infer", "--data", dataset(t), "--weights", weights(t), "--out", t / "in" / "w.safetensors"],
            exit_code=2, match="output"),
    BadCase("videoqa-infer-out-inside-data",
            lambda t: ["videoqa", "infer", "--data", dataset(t), "--weights", weights(t),
                       "--out", t / "in" / "data" / "preds.json"], exit_code=2, match="inside the input folder"),
    BadCase("videoqa-infer-out-symlink-to-jsonl",
            lambda t: ["videoqa", "infer", "--data", dataset(t), "--weights", weights(t),
                       "--out", symlink(t / "out" / "p.json", t / "in" / "data" / "tvqa_qa_release" / "tvqa_val.jsonl")],
            exit_code=2),
    BadCase("videoqa-infer-missing-root",
            lambda t: ["videoqa", "infer", "--data", t / "in" / "nowhere", "--weights", weights(t), "--out", t / "out" / "p.json"],
            exit_code=1, match="dataset root not found"),
    BadCase("videoqa-synth-too-few-clips", lambda t: ["videoqa", "synth", "--out", t / "out" / "s", "--clips", "1"],
            exit_code=2, match="--clips"),
    BadCase("videoqa-train-bad-config-value",
            lambda t: ["videoqa", "train", "--data", dataset(t), "--out", t / "out" / "r", "model.attention=diagonal", *QUIET],
            exit_code=2, match="model.attention"),
    BadCase("videoqa-eval-weights-not-found",
            lambda t: ["videoqa", "eval", "--data", dataset(t), "--weights", t / "in" / "nope.safetensors"],
            exit_code=1, match="nope.safetensors"),
    BadCase("videoqa-train-no-data", lambda t: ["videoqa", "train", "--out", t / "out" / "r", *QUIET],
            exit_code=2, match="--data"),
]
