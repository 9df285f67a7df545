"""``--text-model DIR``: a local Hugging Face checkpoint (tiny BERT / RoBERTa written here) as the text encoder.

The checkpoints are made on the fly (hidden 32, 2 layers; a WordPiece ``vocab.txt`` / byte-level BPE
``vocab.json`` + ``merges.txt`` written by the test, ``save_pretrained`` into tmp), so nothing is downloaded.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch

import transformers  # noqa: F401 — a cvsuite dependency (requirements.txt): a missing install fails here, never skips

from apps.videoqa.data import open_split

QUIET = ["train.progress=false", "train.tensorboard=false", "train.batch_size=4", "model.dim=16", "model.layers=1",
         "model.heads=2", "model.ff=32", "model.cnn_width=4", "model.visual=colour"]
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
            max_position_embeddings=64)


def _words(root: Path) -> list[str]:
    from apps.videoqa.text import words

    split = open_split(root, "train")
    found = {w for it in split.items for text in [it.question, *it.answers] for w in words(text)}
    return sorted(found)[:200]


def make_tiny_bert(folder: Path, words: list[str]) -> Path:
    """A BERT checkpoint: WordPiece vocab of ``words`` (+ specials), random weights, saved with save_pretrained."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), **TINY)).save_pretrained(str(folder))
    return folder


def make_tiny_roberta(folder: Path) -> Path:
    """A RoBERTa checkpoint: byte-level BPE over single characters (+ a few merges), random weights."""
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    folder.mkdir(parents=True)
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    for piece in [*map(chr, range(33, 127)), "Ġ", "Ġw", "Ġwh", "Ġt", "Ġth", "Ġthe"]:
        vocab.setdefault(piece, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nĠ w\nĠw h\nĠ t\nĠt h\nĠth e\n")
    RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    RobertaModel(RobertaConfig(vocab_size=len(vocab), type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                               eos_token_id=2, **{**TINY, "max_position_embeddings": 66})).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from apps.videoqa.synth import write_dataset

    root = tmp_path_factory.mktemp("vqa_hf") / "synth"
    write_dataset(root, 6, seed=3)
    return root


@pytest.fixture(scope="module")
def bert(tiny: Path, tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert", _words(tiny))


@pytest.fixture(scope="module")
def roberta(tmp_path_factory) -> Path:
    return make_tiny_roberta(tmp_path_factory.mktemp("hf") / "tiny-roberta")


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_tokenizer_matches_the_checkpoint_tokenizer(kind: str, bert: Path, roberta: Path) -> None:
    """Ids = the checkpoint tokenizer's ``tokenizer(q, a, truncation=True, max_length)`` + 1 (0 = padding);
    the segment marks exactly the answer's tokens."""
    from transformers import AutoTokenizer

    from apps.videoqa.text import ID_OFFSET, PretrainedTokenizer

    folder = bert if kind == "bert" else roberta
    ours = PretrainedTokenizer.from_folder(folder)
    theirs = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    question, answer = "What is Ann holding while she says hello?", "A red ball in her left hand."
    for max_len in (64, 12):
        ids, segment = ours.encode_pair(question, answer, max_len)
        expected = theirs(question, answer, truncation=True, max_length=max_len)["input_ids"]
        assert ids == [i + ID_OFFSET for i in expected]
        answer_ids = theirs(answer, add_special_tokens=False)["input_ids"]
        marked = [i - ID_OFFSET for i, s in zip(ids, segment) if s]
        assert marked == answer_ids[: len(marked)] and len(marked) > 0
        assert len(ids) <= max_len
    sentence = ours.encode_sentence("(Ann:) Hello there.", 8)
    assert sentence == [i + ID_OFFSET for i in theirs("(Ann:) Hello there.", truncation=True, max_length=8)["input_ids"]]
    assert _no_real_token_is_padding(ours)
    again = PretrainedTokenizer.from_metadata(ours.metadata()["text_tokenizer"])
    assert again.encode_pair(question, answer, 20) == ours.encode_pair(question, answer, 20)
    assert again.mask_id == theirs.mask_token_id + ID_OFFSET


def _no_real_token_is_padding(tokenizer) -> bool:
    """No real token is shifted onto the padding id 0."""
    from apps.videoqa.text import PAD

    ids, _ = tokenizer.encode_pair("a b c", "d e", 32)
    return PAD not in ids


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_encoder_states_equal_the_checkpoint_on_padded_batches(kind: str, bert: Path, roberta: Path) -> None:
    """PretrainedTextEncoder = AutoModel(input_ids, attention_mask, token_type_ids) of each row alone, then the
    projection: the id shift, the padding id (RoBERTa pads with 1) and BERT's token types are right."""
    from transformers import AutoModel, AutoTokenizer

    from apps.videoqa.model import ModelConfig, PretrainedTextEncoder
    from apps.videoqa.text import PretrainedTokenizer

    folder = bert if kind == "bert" else roberta
    tokenizer = PretrainedTokenizer.from_folder(folder)
    encoder = PretrainedTextEncoder.build(None, ModelConfig(dim=16, heads=2, max_len=64), tokenizer.hf_sep,
                                          folder=str(folder)).eval()
    reference = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    theirs = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    pairs = [("What is Ann holding?", "A red ball."), ("Who says hello?", "The man with the hat who stands left.")]
    rows = [tokenizer.encode_pair(q, a, 40)[0] for q, a in pairs]
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    with torch.no_grad():
        states = encoder.states(ids)
        for i, (q, a) in enumerate(pairs):
            inputs = theirs(q, a, truncation=True, max_length=40, return_tensors="pt")
            hidden = reference(**inputs).last_hidden_state[0]
            expected = encoder.norm(encoder.project(hidden))
            torch.testing.assert_close(states[i, : len(rows[i])], expected, atol=1e-5, rtol=1e-4)


def test_bert_two_stages_eval_infer_without_the_folder(tiny: Path, bert: Path, tmp_path: Path, run_cli,
                                                       monkeypatch) -> None:
    """pretrain + train (2 steps each) with --text-model, nothing fetched (HF_HUB_OFFLINE unset, sockets
    refused, empty HF cache); eval and infer then need only the weights file (the folder is removed)."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    cache = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(cache))

    attempts: list[tuple] = []

    def no_network(*args, **kwargs):  # recorded as well as refused: a library may swallow the error
        attempts.append(args)
        raise OSError("network access refused by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    code, out, err = run_cli(["videoqa", "pretrain", "--data", tiny, "--out", tmp_path / "s1", "--steps", "2",
                              "--text-model", bert, *QUIET])
    assert code == 0, err
    code, out, err = run_cli(["videoqa", "train", "--data", tiny, "--out", tmp_path / "s2", "--steps", "2",
                              "--init-from", tmp_path / "s1" / "model.safetensors", *QUIET])
    assert code == 0, err
    assert "accuracy" in out
    assert attempts == []
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
    weights = tmp_path / "s2" / "model.safetensors"
    # the encoder was fine-tuned at text_lr (not frozen): its weights moved away from the checkpoint's
    from safetensors.torch import load_file

    trained = load_file(str(weights))
    original = load_file(str(bert / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    assert not torch.equal(trained[f"text.encoder.{key}"], original[key])

    moved = tmp_path / "gone"
    bert.rename(moved)
    try:
        code, out, err = run_cli(["videoqa", "eval", "--data", tiny, "--weights", weights])
        assert code == 0, err
        assert "accuracy" in out
        preds = tmp_path / "preds.json"
        code, out, err = run_cli(["videoqa", "infer", "--data", tiny, "--weights", weights, "--out", preds])
        assert code == 0, err
    finally:
        moved.rename(bert)
    assert attempts == []
    data = json.loads(preds.read_text())
    assert set(data) == {str(it.qid) for it in open_split(tiny, "test_public").items}
    assert all(0 <= v < 5 for v in data.values())


def test_roberta_frozen_train_eval(tiny: Path, roberta: Path, tmp_path: Path, run_cli) -> None:
    """RoBERTa, frozen (model.text_freeze=true): the encoder weights in the result equal the checkpoint's."""
    from safetensors.torch import load_file

    code, out, err = run_cli(["videoqa", "train", "--data", tiny, "--out", tmp_path / "r", "--steps", "2",
                              "--text-model", roberta, *QUIET, "model.text_freeze=true", "contrast_weight=0.5"])
    assert code == 0, err
    trained = load_file(str(tmp_path / "r" / "model.safetensors"))
    original = load_file(str(roberta / "model.safetensors"))
    for key, value in original.items():
        assert torch.equal(trained[f"text.encoder.{key}"], value), key
    code, out, err = run_cli(["videoqa", "eval", "--data", tiny, "--weights", tmp_path / "r" / "model.safetensors"])
    assert code == 0, err


def test_text_lr_group_and_masking_uses_the_checkpoint_mask_token(bert: Path) -> None:
    from apps.videoqa.losses import mask_inputs
    from apps.videoqa.model import ModelConfig, build_model
    from apps.videoqa.text import ID_OFFSET, PAD, PretrainedTokenizer
    from apps.videoqa.train import VideoQAConfig, VideoQATask

    tokenizer = PretrainedTokenizer.from_folder(bert)
    cfg = VideoQAConfig(model=ModelConfig(dim=16, heads=2, text_model=str(bert)), text_lr=3e-5)
    task = VideoQATask(build_model(cfg.model, tokenizer), cfg, tokenizer)
    groups = task.param_groups()
    assert groups is not None and groups[0]["lr"] == 3e-5 and "lr" not in groups[1]
    encoder_ids = {id(p) for p in task.model.text.encoder.parameters()}
    assert {id(p) for p in groups[0]["params"]} == encoder_ids
    assert not encoder_ids & {id(p) for p in groups[1]["params"]}
    ids, segment = tokenizer.encode_pair("what is ann holding ?", "a red ball", 24)
    ids_t, seg_t = torch.tensor([ids]), torch.tensor([segment], dtype=torch.bool)
    masked = mask_inputs(ids_t, seg_t, 1.0, "input", mask_id=tokenizer.mask_id, special_ids=tokenizer.special_ids)
    specials = torch.isin(ids_t, torch.tensor(tokenizer.special_ids))
    assert torch.equal(masked[specials], ids_t[specials])                       # [CLS] / [SEP] kept
    assert (masked[~specials] == tokenizer.mask_id).all()
    assert tokenizer.mask_id == 4 + ID_OFFSET and PAD not in ids


def test_paper_scale_config_with_text_model(tiny: Path, bert: Path, tmp_path: Path, run_cli) -> None:
    """configs/tvqa_features.yaml + --text-model (the README's TVQA command) runs 2 steps on the stand-in."""
    from .helpers import write_random_features

    features = write_random_features(tiny, tmp_path / "tvqa_imagenet_pool5.h5")
    config = Path(__file__).resolve().parents[2] / "apps" / "videoqa" / "configs" / "tvqa_features.yaml"
    code, out, err = run_cli(["videoqa", "train", "--config", config, "--data", tiny, "--features", features,
                              "--text-model", bert, "--out", tmp_path / "run", "--steps", "2", "train.batch_size=4",
                              "train.progress=false", "train.tensorboard=false", "train.warmup_steps=0",
                              "eval_split=null"])
    assert code == 0, err
    assert (tmp_path / "run" / "model.safetensors").is_file()
