"""Networks of the points app: the DGCNN encoder (shared registry), a part-segmentation head, and
safetensors save/load that keeps the architecture in the file's metadata."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shared.backbones import build_backbone
from shared.errors import CvsuiteError

from .data import NUM_CATEGORIES, NUM_PARTS, part_mask


@dataclass
class EncoderConfig:
    """DGCNN size (paper: k 20, width 64, global 1024; the CPU defaults are narrower)."""

    k: int = 20
    width: int = 32
    global_dim: int = 256


class PointEncoder(nn.Module):
    """DGCNN from :mod:`shared.backbones` on xyz + normals: (B, 6, N) -> (B, D, N) per-point, (B, G) global."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone("dgcnn", in_channels=6, k=cfg.k, width=cfg.width, global_dim=cfg.global_dim)
        self.point_dim = int(self.backbone.point_dim)
        self.global_dim = int(self.backbone.global_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(x)


class SegNet(nn.Module):
    """Encoder + per-point head on [point features, category one-hot] -> 50 ShapeNetPart logits,
    and (``classifier``) a linear category classifier on the global feature, which gives ``infer``
    the category and its probability for a user's cloud."""

    def __init__(self, cfg: EncoderConfig, hidden: int = 128, dropout: float = 0.3, classifier: bool = True) -> None:
        super().__init__()
        self.encoder = PointEncoder(cfg)
        self.classifier = nn.Linear(self.encoder.global_dim, NUM_CATEGORIES) if classifier else None
        self.head = nn.Sequential(
            nn.Conv1d(self.encoder.point_dim + NUM_CATEGORIES, hidden, 1, bias=False), nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Conv1d(hidden, hidden // 2, 1, bias=False),
            nn.BatchNorm1d(hidden // 2), nn.LeakyReLU(0.2), nn.Conv1d(hidden // 2, NUM_PARTS, 1))
        self.register_buffer("mask", torch.from_numpy(part_mask()), persistent=False)

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Logits (B, 50, N) with the parts of other categories set to -inf (prediction restricted)."""
        return self.decode(self.encoder(x)[0], category)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-point (B, D, N) and global (B, G) features: category-independent, computed once per cloud."""
        return self.encoder(x)

    def decode(self, feats: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Restricted part logits (B, 50, N) of per-point features for the given categories (B,)."""
        onehot = F.one_hot(category, NUM_CATEGORIES).float().unsqueeze(2).expand(-1, -1, feats.shape[2])
        logits = self.head(torch.cat([feats, onehot], dim=1))
        return logits.masked_fill(~self.mask[category].unsqueeze(2), float("-inf"))

    def classify(self, glob: torch.Tensor) -> torch.Tensor | None:
        """Category logits (B, 16) of global features, or None for a segmenter trained without classifier."""
        return None if self.classifier is None else self.classifier(glob)


def save_model(module: nn.Module, path: str | Path, kind: str, cfg: EncoderConfig, extra: dict | None = None) -> None:
    """safetensors with ``kind`` (encoder | segmenter) and the encoder config in the metadata."""
    from shared.weights import save_safetensors

    meta = {"kind": kind, "encoder": json.dumps(asdict(cfg)), "format": "cvsuite-points"}
    meta.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    save_safetensors(module.state_dict(), path, metadata=meta)


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), "pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CvsuiteError(f"cannot read {path}: not a valid safetensors file ({str(exc)[:120]})") from None


def load_model(path: str | Path, want: str = "any") -> tuple[nn.Module, str, dict]:
    """(model, kind, metadata) from a points safetensors file; ``want`` = encoder | segmenter | any.

    A segmenter file also serves as an encoder (its ``encoder.*`` weights).
    """
    from shared.weights import load_into, load_state_dict

    meta = read_metadata(path)
    if meta.get("format") != "cvsuite-points" or "encoder" not in meta:
        raise CvsuiteError(f"{path}: not a cvsuite points weight file (no points metadata)")
    cfg = EncoderConfig(**json.loads(meta["encoder"]))
    kind = meta.get("kind", "encoder")
    state = load_state_dict(path)
    if kind == "segmenter":
        model: nn.Module = SegNet(cfg, classifier=any(k.startswith("classifier.") for k in state))
        load_into(model, state, path)
        if want == "encoder":
            return model.encoder, "encoder", meta
    else:
        if want == "segmenter":
            raise CvsuiteError(f"{path}: holds a pretrained encoder only; part labels need a fine-tuned segmenter "
                               "(use --parts K for unsupervised parts)")
        model = PointEncoder(cfg)
        load_into(model, state, path)
    model.eval()
    return model, kind, meta
