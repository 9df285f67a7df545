"""Multiple-choice video QA model with locally aligned attention (Kim et al., AAAI 2021; no official code).

For each candidate ``[CLS] question [SEP] answer_i [SEP]`` (token states ``w_k`` of a text encoder):

1. **locally aligned attention**: every subtitle sentence ``j`` (mean of its word states) attends over
   the frame vectors ``v_t`` shown inside its own time span (:func:`local_alignment_mask`; **global**
   attention, the ablation, lets it see every frame of the window); each of its words then carries what
   was on screen while it was said: ``x_jl = s_jl + W_o sum_t a_jt v_t``;
2. **context-query attention** (word level, as the TVQA baselines): every question/answer word attends
   over all subtitle words ``x_jl`` (``r_k``) and over all frames (``f_k``);
3. ``z_k = FFN([w_k, r_k, w_k*r_k, f_k, w_k*f_k])``, one transformer layer over the candidate's words (so
   the answer words see what the question words found), max- and mean-pooled into the candidate's
   joint vector ``u_i`` (the one the masked-answer contrast works on); ``score_i = w . u_i``; five
   scores -> softmax.

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
from shared.errors import CvsuiteError, UsageError, first_line

from .text import ID_OFFSET, PAD, PretrainedTokenizer, Tokenizer, Vocab, quiet_transformers, tokenizer_from_metadata


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
    visual: str = "frames"          # frames (RGB through shared small_cnn) | colour (fixed colour-blob statistics
                                    # of the RGB frames, see colour_blob_statistics) | features (precomputed HDF5)
    cnn_width: int = bounded(8, ge=2, le=128)
    feature_dim: int = bounded(2048, ge=1, le=65536)  # input size of precomputed features (visual=features)
    text_model: str | None = None   # local Hugging Face checkpoint folder (BERT / RoBERTa ...) as the text encoder
                                    # (--text-model DIR); None = the small transformer trained from scratch
    text_freeze: bool = False       # keep the pretrained text encoder fixed (else fine-tuned at train text_lr)

    def __post_init__(self) -> None:
        choices = {"attention": ("local", "global"), "streams": ("both", "text", "video"),
                   "visual": ("frames", "colour", "features")}
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


class PretrainedTextEncoder(nn.Module):
    """A Hugging Face encoder (``AutoModel``) + a linear projection to the model width; same ``states``
    interface as :class:`TextEncoder`. Ids arrive shifted by :data:`~.text.ID_OFFSET` (0 = padding).

    Token types (BERT's segment embedding, when the checkpoint has more than one): 0 up to and including the
    first separator, 1 after it - the ``[CLS] q [SEP] a [SEP]`` convention of the tokenizer's pair template.
    """

    def __init__(self, encoder: nn.Module, cfg: ModelConfig, sep_id: int | None) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.project = nn.Linear(hidden, cfg.dim)
        self.norm = nn.LayerNorm(cfg.dim)
        self.max_len = min(cfg.max_len, int(getattr(encoder.config, "max_position_embeddings", cfg.max_len)))
        self.hf_pad = int(getattr(encoder.config, "pad_token_id", None) or 0)
        self.sep_id = sep_id
        self.use_types = int(getattr(encoder.config, "type_vocab_size", 1) or 1) > 1 and sep_id is not None
        self.frozen = cfg.text_freeze
        if self.frozen:
            self.encoder.requires_grad_(False)

    @staticmethod
    def build(hf_config: dict[str, Any] | None, cfg: ModelConfig, sep_id: int | None,
              folder: str | None = None) -> "PretrainedTextEncoder":
        """From the checkpoint ``folder`` (its weights; ``local_files_only``) or, when loading a cvsuite weights
        file, from the stored ``hf_config`` alone (its weights come with the file's state dict)."""
        from transformers import AutoConfig, AutoModel

        quiet_transformers()
        if folder is not None:
            encoder = AutoModel.from_pretrained(folder, local_files_only=True)
        else:
            config = dict(hf_config or {})
            encoder = AutoModel.from_config(AutoConfig.for_model(config.pop("model_type"), **config))
        return PretrainedTextEncoder(encoder, cfg, sep_id)

    def config_json(self) -> str:
        return self.encoder.config.to_json_string(use_diff=False)

    def train(self, mode: bool = True) -> "PretrainedTextEncoder":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # a fixed encoder: no dropout either
        return self

    def states(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) shifted token ids -> (N, L, D) token states."""
        ids = ids[:, : self.max_len]
        valid = ids != PAD
        hf_ids = torch.where(valid, ids - ID_OFFSET, torch.full_like(ids, self.hf_pad))
        kwargs: dict[str, torch.Tensor] = {"input_ids": hf_ids, "attention_mask": valid.long()}
        if self.use_types:
            is_sep = (ids == self.sep_id + ID_OFFSET).long()
            kwargs["token_type_ids"] = ((is_sep.cumsum(dim=1) - is_sep) >= 1).long()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.encoder(**kwargs).last_hidden_state
        return self.norm(self.project(hidden))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.states(ids)[:, 0]


HUE_BINS = 12
BLOB_STATS = 6


def colour_blob_statistics(frames: torch.Tensor, bins: int = HUE_BINS, min_chroma: float = 0.3) -> torch.Tensor:
    """Fixed (parameter-free) per-frame descriptor: for each of ``bins`` hue bins, the strongly coloured
    pixels (chroma = max - min of RGB above ``min_chroma``, chroma-weighted) summarised by their mass,
    centroid (x, y), spread (x, y) and vertical skewness - *what colour is where and how big / what shape*.

    (N, H, W, 3) uint8 -> (N, bins * 6) float. It stands in for the ImageNet features a TVQA user has
    (objects, colours): grey or washed-out pixels (most of a photo background) count for nothing.
    """
    x = frames.float() / 255.0
    n, h, w, _ = x.shape
    top, channel = x.max(dim=-1)
    chroma = top - x.min(dim=-1).values
    safe = chroma.clamp(min=1e-6)
    r, g, b = x.unbind(-1)
    hue = torch.where(channel == 0, torch.remainder((g - b) / safe, 6.0),
                      torch.where(channel == 1, (b - r) / safe + 2.0, (r - g) / safe + 4.0))   # [0, 6)
    hue_bin = torch.remainder(torch.round(hue / 6.0 * bins).long(), bins)
    weight = chroma * (chroma > min_chroma)
    mass_map = F.one_hot(hue_bin, bins).float() * weight[..., None]                           # (N, H, W, K)
    ys = torch.linspace(0.0, 1.0, h, device=x.device)[None, :, None, None]
    xs = torch.linspace(0.0, 1.0, w, device=x.device)[None, None, :, None]
    total = mass_map.sum(dim=(1, 2))                                                            # (N, K)
    norm = total.clamp(min=1e-6)
    cx = (mass_map * xs).sum(dim=(1, 2)) / norm
    cy = (mass_map * ys).sum(dim=(1, 2)) / norm
    dx, dy = xs - cx[:, None, None, :], ys - cy[:, None, None, :]
    sx = ((mass_map * dx ** 2).sum(dim=(1, 2)) / norm).sqrt()
    sy = ((mass_map * dy ** 2).sum(dim=(1, 2)) / norm).sqrt()
    skew = (mass_map * dy ** 3).sum(dim=(1, 2)) / norm / sy.clamp(min=1e-3) ** 3
    present = (total > 2.0).float()                                    # at least a couple of coloured pixels
    stats = torch.stack([100.0 * total / (h * w), cx, cy, 10.0 * sx, 10.0 * sy, skew.clamp(-3, 3) / 3], dim=-1)
    return (stats * present[..., None]).reshape(n, bins * BLOB_STATS)


class VisualEncoder(nn.Module):
    """Per-frame vectors: RGB frames through ``shared`` small_cnn (learned) or through the fixed
    :func:`colour_blob_statistics` and an MLP, or a projection of precomputed features."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.visual
        self.backbone = None
        if cfg.visual == "frames":
            self.backbone = build_backbone("small_cnn", in_channels=3, width=cfg.cnn_width)
            in_dim = self.backbone.out_dim
        elif cfg.visual == "colour":
            in_dim = HUE_BINS * BLOB_STATS
        else:
            in_dim = cfg.feature_dim
        if cfg.visual == "colour":  # the statistics need a non-linear read-out (shape = size and spread)
            self.project = nn.Sequential(nn.Linear(in_dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim),
                                         nn.LayerNorm(cfg.dim))
        else:
            self.project = nn.Sequential(nn.Linear(in_dim, cfg.dim), nn.LayerNorm(cfg.dim))
        self.out_dim = cfg.dim

    def forward(self, visual: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 frames or (B, T, F) features -> (B, T, D), zeros on padded frames."""
        b, t = valid.shape
        out = torch.zeros(b, t, self.out_dim, device=valid.device)
        if not valid.any():
            return out
        chosen = visual[valid]
        if self.kind == "frames":
            x = chosen.permute(0, 3, 1, 2).float().div(255.0).sub(0.45).div(0.25)
            chosen = self.backbone(x)
        elif self.kind == "colour":
            chosen = colour_blob_statistics(chosen)
        out[valid] = self.project(chosen.float()).to(out.dtype)
        return out


class VideoQAModel(nn.Module):
    """See module docstring. ``forward(batch, qa=None)`` scores the candidates in ``qa`` (default ``batch['qa']``)."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, text_encoder: PretrainedTextEncoder | None = None) -> None:
        """``text_encoder``: a pretrained encoder (``model.text_model``) instead of the small one from scratch."""
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        d = cfg.dim
        self.text = text_encoder if text_encoder is not None else TextEncoder(vocab_size, cfg)
        self.visual = VisualEncoder(cfg) if cfg.streams != "text" else None
        self.align_q, self.align_k, self.align_o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.fuse = nn.Sequential(nn.Linear(5 * d, d), nn.GELU(), nn.LayerNorm(d))
        self.modeling = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff, cfg.dropout, batch_first=True,
                                                   norm_first=True, activation="gelu")
        self.joint = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
        self.score = nn.Linear(d, 1)

    def _subtitle_tokens(self, subs: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, L) sentence tokens -> token states (B, S, L', D) and their validity (B, S, L')."""
        b, s, _ = subs.shape
        subs = subs[:, :, : self.text.max_len]
        length = subs.shape[2]
        states = torch.zeros(b, s, length, self.cfg.dim, device=subs.device)
        if valid.any():
            states[valid] = self.text.states(subs[valid]).to(states.dtype)
        return states, (subs != PAD) & valid[:, :, None]

    def forward(self, batch: dict[str, torch.Tensor], qa: torch.Tensor | None = None,
                seg: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``qa`` (B, C, L) defaults to ``batch['qa']`` (``seg`` is accepted for the callers' symmetry)."""
        qa = batch["qa"] if qa is None else qa
        b, c, _ = qa.shape
        d = self.cfg.dim
        ids = qa.reshape(b * c, -1)[:, : self.text.max_len]
        length = ids.shape[1]
        tokens = self.text.states(ids)                                     # (B*C, L, D)
        token_valid = ids != PAD
        query = tokens.reshape(b, c * length, d)
        use_subs = self.cfg.streams != "video" and "subs" in batch
        use_frames = self.cfg.streams != "text" and "visual" in batch
        out: dict[str, torch.Tensor] = {}
        zeros = torch.zeros_like(query)
        frames = frame_valid = None
        if use_frames:
            frame_valid = batch["frame_valid"]
            frames = self.visual(batch["visual"], frame_valid)             # (B, T, D)
        if use_subs:
            sub_valid = batch["sub_valid"]
            words, word_valid = self._subtitle_tokens(batch["subs"], sub_valid)   # (B, S, Ls, D)
            s, ls = words.shape[1], words.shape[2]
            if use_frames:
                # locally aligned attention: a sentence looks only at the frames shown while it is said;
                # each of its words then carries what was seen (s'_jl = w_jl + W_o sum_t a_jt v_t)
                weight = word_valid.float()[..., None]
                sentence = (words * weight).sum(2) / weight.sum(2).clamp(min=1)          # (B, S, D)
                if self.cfg.attention == "local":
                    mask = local_alignment_mask(batch["sub_times"], batch["frame_times"], sub_valid, frame_valid)
                else:
                    mask = global_mask(sub_valid, frame_valid)
                logits = self.align_q(sentence) @ self.align_k(frames).transpose(1, 2) / math.sqrt(d)
                align = masked_softmax(logits, mask)                                       # (B, S, T)
                words = words + self.align_o(align @ frames)[:, :, None, :] * word_valid[..., None]
                out["align"] = align
            flat, flat_valid = words.reshape(b, s * ls, d), word_valid.reshape(b, s * ls)
            # context-query attention: every question/answer word looks up the subtitle words
            word_att = masked_softmax(query @ flat.transpose(1, 2) / math.sqrt(d),
                                      flat_valid[:, None, :].expand(b, c * length, -1))  # (B, C*L, S*Ls)
            from_subs = word_att @ flat
            per_sentence = word_att.reshape(b, c, length, s, ls).sum(-1)                 # (B, C, L, S)
            weight = token_valid.reshape(b, c, length, 1).float()
            out["sub_attention"] = (per_sentence * weight).sum(2) / weight.sum(2).clamp(min=1)
        else:
            from_subs = zeros
        if use_frames:
            frame_att = masked_softmax(query @ frames.transpose(1, 2) / math.sqrt(d),
                                       frame_valid[:, None, :].expand(b, c * length, -1))  # (B, C*L, T)
            from_frames = frame_att @ frames
            weight = token_valid.reshape(b, c, length, 1).float()
            out["frame_attention"] = (frame_att.reshape(b, c, length, -1) * weight).sum(2) / weight.sum(2).clamp(min=1)
            if "align" in out:  # the frames each candidate reaches through the sentences it attends
                out["frame_attention_via_subs"] = out["sub_attention"] @ out["align"]
        else:
            from_frames = zeros
        fused = self.fuse(torch.cat([query, from_subs, query * from_subs, from_frames, query * from_frames], dim=-1))
        fused = self.modeling(fused.reshape(b * c, length, d), src_key_padding_mask=~token_valid)
        weight = token_valid[..., None].float()
        pooled_max = fused.masked_fill(~token_valid[..., None], -1e4).amax(dim=1)
        pooled_mean = (fused * weight).sum(1) / weight.sum(1).clamp(min=1)
        joint = self.joint(torch.cat([pooled_max, pooled_mean], dim=-1)).reshape(b, c, d)
        out["joint"] = joint
        out["scores"] = self.score(joint).squeeze(-1)
        return out


# ---- weight files ------------------------------------------------------------------------------

def model_metadata(cfg: ModelConfig, tokenizer: Tokenizer, extra: dict[str, Any] | None = None,
                   text_config: str | None = None) -> dict[str, str]:
    meta = {"format": "cvsuite-videoqa", "model_config": json.dumps(asdict(cfg)), **tokenizer.metadata()}
    if text_config is not None:
        meta["text_model_config"] = text_config
    return {**meta, **{k: str(v) for k, v in (extra or {}).items()}}


def save_model(model: VideoQAModel, tokenizer: Tokenizer, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Weights + model config + tokenizer (+ the pretrained encoder's HF config) in one safetensors file."""
    from shared.weights import save_safetensors

    text_config = model.text.config_json() if isinstance(model.text, PretrainedTextEncoder) else None
    save_safetensors(model.state_dict(), path, metadata=model_metadata(model.cfg, tokenizer, extra, text_config))


def build_model(cfg: ModelConfig, tokenizer: Tokenizer, text_config: str | None = None) -> VideoQAModel:
    """A model for ``tokenizer``: the small text encoder for a :class:`Vocab`; for a pretrained tokenizer the
    checkpoint's encoder, read from ``cfg.text_model`` (``text_config=None``) or rebuilt from its stored HF
    config (weights to be loaded after)."""
    if isinstance(tokenizer, PretrainedTokenizer):
        if text_config is None and not cfg.text_model:
            raise CvsuiteError("a pretrained tokenizer needs its text model (model.text_model)")
        try:
            encoder = PretrainedTextEncoder.build(json.loads(text_config) if text_config else None, cfg,
                                                  tokenizer.hf_sep, folder=None if text_config else cfg.text_model)
        except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, KeyError, ...
            where = f"--text-model {cfg.text_model}" if not text_config else "the stored text model config"
            raise CvsuiteError(f"{where}: cannot build the text encoder ({first_line(exc)})") from None
        return VideoQAModel(cfg, len(tokenizer), encoder)
    return VideoQAModel(cfg, len(tokenizer))


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


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[VideoQAModel, Tokenizer, dict[str, str]]:
    """Model, tokenizer and metadata of a ``cvsuite videoqa`` weights file (no code is executed; a pretrained
    text encoder is rebuilt from its stored config, the checkpoint folder is not needed)."""
    from shared.weights import load_state_dict

    meta = read_metadata(path)
    if meta.get("format") != "cvsuite-videoqa":
        raise CvsuiteError(f"{path} is not a cvsuite videoqa weights file (no videoqa metadata)")
    try:
        cfg = ModelConfig(**json.loads(meta["model_config"]))
        vocab = tokenizer_from_metadata(meta)
        if isinstance(vocab, PretrainedTokenizer) and "text_model_config" not in meta:
            raise KeyError("text_model_config")
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception on a damaged tokenizer.json
        raise CvsuiteError(f"{path}: videoqa metadata is damaged ({type(exc).__name__}: {exc})") from None
    model = build_model(cfg, vocab, meta.get("text_model_config"))
    state = load_state_dict(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CvsuiteError(f"{path} does not match its recorded model config: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval(), vocab, meta
