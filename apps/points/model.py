"""Networks of the points app: the DGCNN encoder (shared registry), a part-segmentation head, and
safetensors save/load that keeps the architecture in the file's metadata."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shared.config import bounded
from shared.backbones import build_backbone
from shared.errors import CvsuiteError

from .data import NUM_CATEGORIES, NUM_PARTS, part_mask


@dataclass
class EncoderConfig:
    """DGCNN size (paper: k 20, width 64, global 1024; the CPU defaults are narrower)."""

    k: int = bounded(20, ge=1, le=128)
    width: int = bounded(32, ge=1, le=1024)
    global_dim: int = bounded(256, ge=1, le=8192)


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
    """Encoder + per-point head on [point features, category one-hot] -> 50 ShapeNetPart logits."""

    def __init__(self, cfg: EncoderConfig, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.encoder = PointEncoder(cfg)
        self.head = nn.Sequential(
            nn.Conv1d(self.encoder.point_dim + NUM_CATEGORIES, hidden, 1, bias=False), nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Conv1d(hidden, hidden // 2, 1, bias=False),
            nn.BatchNorm1d(hidden // 2), nn.LeakyReLU(0.2), nn.Conv1d(hidden // 2, NUM_PARTS, 1))
        self.register_buffer("mask", torch.from_numpy(part_mask()), persistent=False)

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Logits (B, 50, N) with the parts of other categories set to -inf (prediction restricted)."""
        feats, _ = self.encoder(x)
        onehot = F.one_hot(category, NUM_CATEGORIES).float().unsqueeze(2).expand(-1, -1, x.shape[2])
        logits = self.head(torch.cat([feats, onehot], dim=1))
        return logits.masked_fill(~self.mask[category].unsqueeze(2), float("-inf"))


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
        model: nn.Module = SegNet(cfg)
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
