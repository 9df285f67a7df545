"""Multiple-choice video QA model with locally aligned attention (Kim et al., AAAI 2021; no official code).

For each candidate ``[question; answer_i]`` (a text encoder's [CLS] vector ``h_i``):

1. every subtitle sentence ``s_j`` (same text encoder) attends over frame features ``v_t``. **Local**
   attention lets a sentence see only the frames shown inside its own time span
   (:func:`local_alignment_mask`); **global** attention (the ablation) lets it see every frame of the window.
   The sentence becomes ``s'_j = LN(s_j + W_o sum_t a_jt v_t)``;
2. ``[h_i, q_i]`` (``q_i``/``a_i``: mean states of the question / answer part) attends over the fused
   sentences (``c_i``) and over the frames (``c^v_i``);
3. ``u_i = MLP([h_i, a_i, c_i, c^v_i, a_i*c_i, a_i*c^v_i, q_i*c_i])`` is the candidate's joint
   representation (the one the masked-answer contrast works on) and
   ``score_i = w . u_i + a_i M_s c_i + a_i M_v c^v_i``; five scores -> softmax.

``streams="text"`` (no frames) and ``streams="video"`` (no subtitles) are the outside baselines.
Visual input: precomputed per-frame features (a linear projection) or RGB frames through the
``shared.backbones`` small CNN.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shared.backbones import build_backbone
from shared.config import bounded
from shared.errors import CvsuiteError, UsageError

from .text import PAD, Vocab


@dataclass
class ModelConfig:
    """Size and variant of the model (the default is small enough for CPU tests)."""

    dim: int = bounded(64, ge=8, le=2048)
    layers: int = bounded(2, ge=1, le=24)
    heads: int = bounded(4, ge=1, le=32)
    ff: int = bounded(128, ge=8, le=8192)
    dropout: float = bounded(0.1, ge=0.0, lt=1.0)
    max_len: int = bounded(64, ge=8, le=512)
    attention: str = "local"        # local | global (ablation)
    streams: str = "both"           # both | text (text-only baseline) | video (video-only baseline)
    visual: str = "frames"          # frames (RGB through shared small_cnn) | features (precomputed HDF5)
    cnn_width: int = bounded(8, ge=2, le=128)
    feature_dim: int = bounded(2048, ge=1, le=65536)  # input size of precomputed features (visual=features)

    def __post_init__(self) -> None:
        choices = {"attention": ("local", "global"), "streams": ("both", "text", "video"),
                   "visual": ("frames", "features")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise UsageError(f"config key 'model.{key}' must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if self.dim % self.heads:
            raise UsageError(f"config key 'model.dim' ({self.dim}) must be a multiple of model.heads ({self.heads})")


def local_alignment_mask(sub_times: torch.Tensor, frame_times: torch.Tensor, sub_valid: torch.Tensor,
                         frame_valid: torch.Tensor) -> torch.Tensor:
    """(B, S, T) bool: sentence ``j`` may attend frame ``t`` iff the frame's time lies in the sentence's
    ``[start, end]``. A sentence whose span holds no frame gets the one frame nearest its midpoint, so
    every valid sentence sees at least one frame (when the clip has any)."""
    start, end = sub_times[..., 0:1], sub_times[..., 1:2]                      # (B, S, 1)
    times = frame_times[:, None, :]                                            # (B, 1, T)
    both = sub_valid[:, :, None] & frame_valid[:, None, :]
    inside = (times >= start) & (times <= end) & both
    empty = sub_valid & ~inside.any(dim=2) & frame_valid.any(dim=1, keepdim=True)
    middle = (start + end) / 2
    distance = (times - middle).abs().masked_fill(~frame_valid[:, None, :], float("inf"))
    nearest = F.one_hot(distance.argmin(dim=2), frame_times.shape[1]).bool()   # (B, S, T)
    return inside | (empty[:, :, None] & nearest & both)


def global_mask(sub_valid: torch.Tensor, frame_valid: torch.Tensor) -> torch.Tensor:
    """(B, S, T) bool: every valid sentence sees every valid frame (the global-attention ablation)."""
    return sub_valid[:, :, None] & frame_valid[:, None, :]


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``mask``; rows without any allowed entry are all zero."""
    weights = torch.softmax(logits.float().masked_fill(~mask, -1e4), dim=-1)
    return weights * mask


class TextEncoder(nn.Module):
    """Token + position embeddings and a small pre-norm transformer; returns the [CLS] state."""

    def __init__(self, vocab_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, cfg.dim, padding_idx=PAD)
        self.positions = nn.Embedding(cfg.max_len, cfg.dim)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ff, cfg.dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.max_len = cfg.max_len

    def states(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, L, D) token states."""
        ids = ids[:, : self.max_len]
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))[None]
        return self.norm(self.encoder(x, src_key_padding_mask=ids == PAD))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, D): the [CLS] state."""
        return self.states(ids)[:, 0]


class VisualEncoder(nn.Module):
    """Per-frame vectors: RGB frames through ``shared`` small_cnn, or a projection of precomputed features."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.visual
        if cfg.visual == "frames":
            self.backbone = build_backbone("small_cnn", in_channels=3, width=cfg.cnn_width)
            in_dim = self.backbone.out_dim
        else:
            self.backbone = None
            in_dim = cfg.feature_dim
        self.project = nn.Sequential(nn.Linear(in_dim, cfg.dim), nn.LayerNorm(cfg.dim))

    def forward(self, visual: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 frames or (B, T, F) features -> (B, T, D), zeros on padded frames."""
        b, t = valid.shape
        out = torch.zeros(b, t, self.project[0].out_features, device=valid.device)
        if not valid.any():
            return out
        chosen = visual[valid]
        if self.kind == "frames":
            x = chosen.permute(0, 3, 1, 2).float().div(255.0).sub(0.45).div(0.25)
            chosen = self.backbone(x)
        out[valid] = self.project(chosen.float()).to(out.dtype)
        return out


class VideoQAModel(nn.Module):
    """See module docstring. ``forward(batch, qa=None)`` scores the candidates in ``qa`` (default ``batch['qa']``)."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        d = cfg.dim
        self.text = TextEncoder(vocab_size, cfg)
        self.visual = VisualEncoder(cfg) if cfg.streams != "text" else None
        self.align_q, self.align_k, self.align_o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.align_norm = nn.LayerNorm(d)
        self.ask_sub, self.ask_frame = nn.Linear(2 * d, d), nn.Linear(2 * d, d)
        self.match_sub, self.match_frame = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.joint = nn.Sequential(nn.Linear(7 * d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
        self.score = nn.Linear(d, 1)

    def _sentences(self, subs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, s, _ = subs.shape
        out = torch.zeros(b, s, self.cfg.dim, device=subs.device)
        if valid.any():
            out[valid] = self.text(subs[valid]).to(out.dtype)
        return out

    def forward(self, batch: dict[str, torch.Tensor], qa: torch.Tensor | None = None,
                seg: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``qa``/``seg`` (B, C, L) default to ``batch['qa']`` / ``batch['seg']`` (seg: answer-part tokens)."""
        qa = batch["qa"] if qa is None else qa
        seg = batch.get("seg") if seg is None else seg
        b, c, length = qa.shape
        d = self.cfg.dim
        states = self.text.states(qa.reshape(b * c, length))
        length = states.shape[1]
        h = states[:, 0].reshape(b, c, d)
        # mean state of the second part (the answer in stage 2, the answer given in stage 1) and of the first
        second = seg.reshape(b * c, -1)[:, :length].float() if seg is not None else torch.zeros(b * c, length, device=qa.device)
        first = ((qa.reshape(b * c, -1)[:, :length] != PAD).float() - second).clamp(min=0)
        pooled = lambda w: ((states * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1)).reshape(b, c, d)
        answer, question = pooled(second), pooled(first)
        query = torch.cat([h, question], dim=-1)
        use_subs = self.cfg.streams != "video" and "subs" in batch
        use_frames = self.cfg.streams != "text" and "visual" in batch
        zeros = torch.zeros_like(h)
        frames = frame_valid = None
        if use_frames:
            frame_valid = batch["frame_valid"]
            frames = self.visual(batch["visual"], frame_valid)
        out: dict[str, torch.Tensor] = {}
        if use_subs:
            sub_valid = batch["sub_valid"]
            sents = self._sentences(batch["subs"], sub_valid)
            if use_frames:
                if self.cfg.attention == "local":
                    mask = local_alignment_mask(batch["sub_times"], batch["frame_times"], sub_valid, frame_valid)
                else:
                    mask = global_mask(sub_valid, frame_valid)
                logits = self.align_q(sents) @ self.align_k(frames).transpose(1, 2) / math.sqrt(d)
                align = masked_softmax(logits, mask)                                  # (B, S, T)
                sents = self.align_norm(sents + self.align_o(align @ frames)) * sub_valid[..., None]
                out["align"] = align
            sub_att = masked_softmax(self.ask_sub(query) @ sents.transpose(1, 2) / math.sqrt(d),
                                     sub_valid[:, None, :].expand(b, c, -1))          # (B, C, S)
            context = sub_att @ sents
            out["sub_attention"] = sub_att
        else:
            context = zeros
        if use_frames:
            frame_att = masked_softmax(self.ask_frame(query) @ frames.transpose(1, 2) / math.sqrt(d),
                                       frame_valid[:, None, :].expand(b, c, -1))      # (B, C, T)
            visual_context = frame_att @ frames
            out["frame_attention"] = frame_att
            if "align" in out:  # the frames each candidate reaches through the sentences it attends
                out["frame_attention_via_subs"] = out["sub_attention"] @ out["align"]
        else:
            visual_context = zeros
        joint = self.joint(torch.cat([h, answer, context, visual_context, answer * context,
                                      answer * visual_context, question * context], dim=-1))
        out["joint"] = joint
        # direct bilinear matches of the answer part with what the candidate attended
        match = (self.match_sub(answer) * context).sum(-1) + (self.match_frame(answer) * visual_context).sum(-1)
        out["scores"] = self.score(joint).squeeze(-1) + match / math.sqrt(d)
        return out


# ---- weight files ------------------------------------------------------------------------------

def model_metadata(cfg: ModelConfig, vocab: Vocab, extra: dict[str, Any] | None = None) -> dict[str, str]:
    return {"format": "cvsuite-videoqa", "model_config": json.dumps(asdict(cfg)), "vocab": vocab.to_json(),
            **{k: str(v) for k, v in (extra or {}).items()}}


def save_model(model: VideoQAModel, vocab: Vocab, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    from shared.weights import save_safetensors

    save_safetensors(model.state_dict(), path, metadata=model_metadata(model.cfg, vocab, extra))


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"weights file not found: {path}")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CvsuiteError(f"{path} is not a safetensors weights file: {str(exc).splitlines()[0]}") from None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[VideoQAModel, Vocab, dict[str, str]]:
    """Model, vocabulary and metadata of a ``cvsuite videoqa`` weights file (no code is executed)."""
    from shared.weights import load_state_dict

    meta = read_metadata(path)
    if meta.get("format") != "cvsuite-videoqa":
        raise CvsuiteError(f"{path} is not a cvsuite videoqa weights file (no videoqa metadata)")
    try:
        cfg = ModelConfig(**json.loads(meta["model_config"]))
        vocab = Vocab.from_json(meta["vocab"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CvsuiteError(f"{path}: videoqa metadata is damaged ({exc})") from None
    model = VideoQAModel(cfg, len(vocab))
    state = load_state_dict(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CvsuiteError(f"{path} does not match its recorded model config: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval(), vocab, meta
