"""Training of the video-QA model through ``shared.engine.Trainer``.

Stage 1 (``cvsuite videoqa pretrain``, ``stage=question``): self-supervised question prediction - given
the clip, its subtitles and the *correct answer*, pick the true question among five (no extra data or
labels beyond the QA pairs). Stage 2 (``cvsuite videoqa train``, ``stage=answer``): answer prediction
plus the masked-answer contrast (``contrast_weight`` = lambda; 0 switches it off), optionally starting
from the stage-1 weights (``init_from``).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.errors import CvsuiteError, UsageError, first_line
from shared.guard import OutputGuard
from shared.losses import InfoNCE

from .data import open_split
from .dataset import InputSizes, VideoQADataset, collate
from .losses import mask_inputs, masked_answer_contrast
from .model import ModelConfig, PretrainedTextEncoder, VideoQAModel, build_model, load_model, save_model
from .text import PretrainedTokenizer, Tokenizer, Vocab


@dataclass
class DataConfig:
    """Where the data is and how much of each question's window the model sees."""

    root: str = ""
    features: str | None = None        # HDF5 of per-frame features keyed by vid_name (model.visual=features)
    max_qa_len: int = bounded(24, ge=8, le=512)
    max_sub_len: int = bounded(16, ge=4, le=512)
    max_subs: int = bounded(12, ge=1, le=256)
    max_frames: int = bounded(12, ge=1, le=1024)
    frame_width: int = bounded(48, ge=8, le=1024)
    frame_height: int = bounded(32, ge=8, le=1024)
    use_ts: bool = True                 # restrict subtitles and frames to the question's ts window
    bad_ts: str = "error"              # error | whole_clip (rows whose ts is NaN / malformed)
    min_count: int = bounded(1, ge=1)   # vocabulary: words seen at least this often in the training text

    def __post_init__(self) -> None:
        if self.bad_ts not in ("error", "whole_clip"):
            raise UsageError(f"config key 'data.bad_ts' must be error or whole_clip, got {self.bad_ts!r}")

    def sizes(self) -> InputSizes:
        return InputSizes(self.max_qa_len, self.max_sub_len, self.max_subs, self.max_frames,
                          self.frame_width, self.frame_height, self.use_ts)


def _train_defaults() -> TrainConfig:
    return TrainConfig(out_dir="runs/videoqa", max_steps=1000, batch_size=16, lr=1e-3, weight_decay=0.01,
                       warmup_steps=50, log_every=50, ckpt_every=500, grad_clip=1.0)


@dataclass
class VideoQAConfig:
    """One config for both stages (``stage`` picks the objective)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    stage: str = "answer"                                   # answer (stage 2) | question (stage 1)
    contrast_weight: float = bounded(0.1, ge=0.0, le=100.0)  # lambda of the masked-answer contrast (0.1: chosen on val)
    contrast_temperature: float = bounded(0.1, gt=0.0, le=10.0)
    contrast_start: int = bounded(0, ge=0)                  # stage-2 step at which the contrast switches on
    contrast_ramp: int = bounded(0, ge=0)                   # then lambda grows linearly to contrast_weight over this many steps
    mask_prob: float = bounded(0.3, gt=0.0, le=1.0)
    mask_scope: str = "input"                               # input ([q; a*] tokens) | answer (a* tokens only)
    init_from: str | None = None                            # stage-1 weights to start stage 2 from
    text_lr: float = bounded(2e-5, gt=0.0, le=1.0)          # lr of a pretrained text encoder (model.text_model) when
                                                            # fine-tuned; the rest of the model trains at train.lr
    eval_split: str | None = "val"                          # evaluated after training (None = skip)

    def __post_init__(self) -> None:
        if self.stage not in ("answer", "question"):
            raise UsageError(f"config key 'stage' must be answer or question, got {self.stage!r}")
        if self.mask_scope not in ("input", "answer"):
            raise UsageError(f"config key 'mask_scope' must be input or answer, got {self.mask_scope!r}")


def contrast_weight_at(step: int, weight: float, start: int, ramp: int) -> float:
    """lambda at stage-2 step ``step`` (0-based): 0 before ``start``, then a linear ramp of ``ramp`` steps
    up to ``weight`` (``ramp=0``: the full weight at once)."""
    if weight <= 0 or step < start:
        return 0.0
    if ramp <= 0:
        return weight
    return weight * min(1.0, (step - start + 1) / ramp)


class VideoQATask(TrainTask):
    """Cross entropy over the five candidates (+ lambda x masked-answer contrast in stage 2).

    Logged besides the losses: ``cand_cos``, the mean cosine between the ground-truth candidate's joint
    vector and the other four (a contrast that collapsed the candidates' representations would drive it
    to 1); with the contrast on, ``cos_pos`` / ``cos_neg`` (masked anchor vs unmasked ground truth / vs
    the other candidates) and ``lambda`` (the weight in use at this step).
    """

    def __init__(self, model: VideoQAModel, cfg: VideoQAConfig, tokenizer: Tokenizer | None = None) -> None:
        """``tokenizer`` gives the masking noise its [MASK] and special ids (default: the word vocabulary's)."""
        super().__init__()
        self.model = model
        source = tokenizer if tokenizer is not None else Vocab  # the word vocabulary's ids are class constants
        self.mask_id, self.special_ids = source.mask_id, tuple(source.special_ids)
        self.text_lr = cfg.text_lr
        self.contrast = cfg.stage == "answer" and cfg.contrast_weight > 0
        self.weight, self.mask_prob, self.mask_scope = cfg.contrast_weight, cfg.mask_prob, cfg.mask_scope
        self.start, self.ramp = cfg.contrast_start, cfg.contrast_ramp
        self.loss_fn = InfoNCE(temperature=cfg.contrast_temperature)
        # optimizer steps done (in the training checkpoint, so a resumed run keeps its lambda schedule;
        # not in the exported weights)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        self.steps_done += 1

    def param_groups(self) -> list[dict[str, Any]] | None:
        """A fine-tuned pretrained text encoder trains at ``text_lr``, everything else at ``train.lr``."""
        text = self.model.text
        if not isinstance(text, PretrainedTextEncoder) or text.frozen:
            return None
        pretrained = {id(p) for p in text.encoder.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in pretrained]
        return [{"params": [p for p in text.encoder.parameters() if p.requires_grad], "lr": self.text_lr},
                {"params": rest}]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        labels = batch["label"]
        qa = batch["qa"]
        weight = contrast_weight_at(int(self.steps_done), self.weight, self.start, self.ramp) if self.contrast else 0.0
        if weight > 0:
            rows = torch.arange(qa.shape[0], device=qa.device)
            seg = batch["seg"]
            masked = mask_inputs(qa[rows, labels], seg[rows, labels], self.mask_prob, self.mask_scope,
                                 mask_id=self.mask_id, special_ids=self.special_ids)
            out = self.model(batch, torch.cat([qa, masked[:, None]], dim=1),
                             torch.cat([seg, seg[rows, labels][:, None]], dim=1))
            scores = out["scores"][:, :-1]
        else:
            out = self.model(batch)
            scores = out["scores"]
        ce = F.cross_entropy(scores.float(), labels)
        result = {"ce": ce.detach(), "acc": (scores.argmax(1) == labels).float().mean()}
        loss = ce
        if self.contrast:
            result["lambda"] = torch.tensor(weight)
        if weight > 0:
            contrast = masked_answer_contrast(out["joint"], labels, self.loss_fn)
            loss = ce + weight * contrast
            result["contrast"] = contrast.detach()
        result.update(_representation_stats(out["joint"].detach(), labels, with_anchor=weight > 0))
        result["loss"] = loss
        return result

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


def _representation_stats(joint: torch.Tensor, labels: torch.Tensor, with_anchor: bool) -> dict[str, torch.Tensor]:
    """Mean cosines of the joint vectors (B, C, D): ground truth vs the other candidates, and
    (``with_anchor``: the last row is the masked ground truth) anchor vs ground truth / vs the others."""
    unit = F.normalize(joint.float(), dim=-1)
    rows = torch.arange(joint.shape[0], device=joint.device)
    candidates = unit[:, : joint.shape[1] - int(with_anchor)]
    truth = candidates[rows, labels]
    others = torch.ones(candidates.shape[:2], dtype=torch.bool, device=joint.device)
    others[rows, labels] = False
    stats = {"cand_cos": (candidates @ truth[:, :, None]).squeeze(-1)[others].mean()}
    if with_anchor:
        anchor = unit[:, -1]
        stats["cos_pos"] = (anchor * truth).sum(-1).mean()
        stats["cos_neg"] = (candidates @ anchor[:, :, None]).squeeze(-1)[others].mean()
    return stats


def training_texts(split: Any) -> list[str]:
    """Questions, answers and subtitle lines of the training split (the vocabulary's source)."""
    texts = []
    for item in split.items:
        texts.append(item.question)
        texts.extend(item.answers)
    for vid in {item.vid_name for item in split.items}:
        for cue in split.subtitles.get(vid) or []:
            texts.append(cue.display())
    return texts


def read_text_model(folder: str) -> PretrainedTokenizer:
    """Check that ``folder`` is a local Hugging Face checkpoint and read its tokenizer; one clear error naming
    the folder otherwise (nothing is downloaded: ``local_files_only=True``)."""
    path = Path(folder)
    if not path.is_dir():
        raise CvsuiteError(f"--text-model {folder}: folder not found (a local Hugging Face checkpoint folder; "
                           "nothing is downloaded)")
    config = path / "config.json"
    weights = [p for p in ("model.safetensors", "pytorch_model.bin") if (path / p).is_file()]
    if not config.is_file() or not weights:
        raise CvsuiteError(f"--text-model {folder} is not a Hugging Face checkpoint (needs config.json and "
                           "model.safetensors or pytorch_model.bin)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CvsuiteError(f"--text-model {folder}: config.json is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise CvsuiteError(f"--text-model {folder}: config.json has no model_type; not a Hugging Face checkpoint")
    try:
        return PretrainedTokenizer.from_folder(path)
    except Exception as exc:  # noqa: BLE001 - transformers / tokenizers raise many kinds (OSError, ValueError, bare Exception)
        raise CvsuiteError(f"--text-model {folder}: cannot read its tokenizer ({first_line(exc)})") from None


def build_dataset(cfg: VideoQAConfig, split_name: str, vocab: Tokenizer, mode: str, need_labels: bool = True,
                  model_cfg: ModelConfig | None = None) -> VideoQADataset:
    model_cfg = model_cfg or cfg.model
    split = open_split(cfg.data.root, split_name, cfg.data.features, labelled=need_labels or None,
                       bad_ts=cfg.data.bad_ts)
    return VideoQADataset(split, vocab, cfg.data.sizes(), mode=mode, visual=model_cfg.visual,
                          load_visual=model_cfg.streams != "text", load_subtitles=model_cfg.streams != "video",
                          need_labels=need_labels)


def run_training(cfg: VideoQAConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """Train one stage; write ``model.safetensors`` (weights + config + vocabulary) in ``train.out_dir``."""
    if not cfg.data.root:
        raise UsageError("no dataset: pass --data ROOT (or data.root=ROOT)")
    guard = guard or OutputGuard([cfg.data.root, cfg.data.features, cfg.init_from, cfg.model.text_model])
    initial = None
    vocab: Tokenizer
    if cfg.init_from:
        initial, vocab, _ = load_model(cfg.init_from)
    elif cfg.model.text_model:
        vocab = read_text_model(cfg.model.text_model)
    else:
        split = open_split(cfg.data.root, "train", cfg.data.features, labelled=True, bad_ts=cfg.data.bad_ts)
        vocab = Vocab.build(training_texts(split), min_count=cfg.data.min_count)
    mode = "question" if cfg.stage == "question" else "answer"
    dataset = build_dataset(cfg, "train", vocab, mode)
    if cfg.model.visual == "features" and cfg.model.streams != "text":
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, feature_dim=dataset.feature_dim()))
    if initial is not None:
        def shape(c: ModelConfig) -> dict[str, Any]:  # the text encoder (and its tokenizer) come with init_from
            return {k: v for k, v in dataclasses.asdict(c).items() if k not in ("dropout", "text_freeze", "text_model")}

        if cfg.model.text_model and not isinstance(initial.text, PretrainedTextEncoder):
            raise UsageError(f"init_from {cfg.init_from} has the small text encoder trained from scratch; "
                             "drop --text-model (the text encoder comes with init_from)")

        if shape(initial.cfg) != shape(cfg.model):
            raise UsageError(f"init_from {cfg.init_from} was trained with model config {shape(initial.cfg)}; "
                             "set the same model.* values")
    torch.manual_seed(cfg.train.seed)
    if initial is not None:
        text_config = initial.text.config_json() if isinstance(initial.text, PretrainedTextEncoder) else None
        model = build_model(dataclasses.replace(cfg.model, text_model=initial.cfg.text_model), vocab, text_config)
        model.load_state_dict(initial.state_dict())
    else:
        model = build_model(cfg.model, vocab)
    task = VideoQATask(model, cfg, vocab)
    trainer = Trainer(cfg.train, task, dataset, collate_fn=collate, full_config=cfg, guard=guard)
    summary = trainer.fit()
    weights = Path(cfg.train.out_dir) / "model.safetensors"
    data_settings = {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in ("root", "features")}
    save_model(model.cpu(), vocab, weights, extra={"stage": cfg.stage, "step": summary["step"],
                                                     "train_root": Path(cfg.data.root).name,
                                                     "data_config": json.dumps(data_settings)})
    guard.record()
    summary["weights"] = str(weights)
    summary["questions"] = len(dataset)
    if cfg.eval_split and cfg.stage == "answer":
        from .evaluate import evaluate_model

        try:
            split_ds = build_dataset(cfg, cfg.eval_split, vocab, "answer")
        except CvsuiteError as exc:
            summary["eval_skipped"] = str(exc)
        else:
            result = evaluate_model(model.eval(), split_ds, batch_size=64)
            out = guard.file(Path(cfg.train.out_dir) / f"eval_{cfg.eval_split}.json")
            out.write_text(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2) + "\n")
            guard.record()
            summary["eval"] = result
    return summary
