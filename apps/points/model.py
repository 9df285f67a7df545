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


def _conv2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _conv1d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout), nn.LeakyReLU(0.2))


class ReferenceSegNet(nn.Module):
    """The reference DGCNN part-segmentation network (antao97/dgcnn.pytorch ``DGCNN_partseg``, no
    T-Net): xyz input; EdgeConv 1 and 2 with two convs each (6→64→64, 128→64→64), EdgeConv 3 with
    one (128→64); 192→``emb`` conv, max-pooled; the category one-hot through a 16→64 conv; per point
    [global emb, category 64, x1, x2, x3] (1280 for emb 1024) → 256 → dropout 0.5 → 256 → dropout
    0.5 → 128 → 50. Same interface as :class:`SegNet` (``encode``/``decode``/``classify``), with the
    linear category head for ``infer`` on the global feature. ``model.head=reference``."""

    def __init__(self, cfg: EncoderConfig, classifier: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        emb = cfg.global_dim
        self.edge1 = nn.Sequential(_conv2d(6, 64), _conv2d(64, 64))
        self.edge2 = nn.Sequential(_conv2d(128, 64), _conv2d(64, 64))
        self.edge3 = _conv2d(128, 64)
        self.embed = _conv1d(192, emb)
        self.label_conv = _conv1d(NUM_CATEGORIES, 64)
        self.head = nn.Sequential(_conv1d(emb + 64 + 192, 256), nn.Dropout(0.5), _conv1d(256, 256), nn.Dropout(0.5),
                                  _conv1d(256, 128), nn.Conv1d(128, NUM_PARTS, 1))
        self.classifier = nn.Linear(emb, NUM_CATEGORIES) if classifier else None
        self.register_buffer("mask", torch.from_numpy(part_mask()), persistent=False)

    def _edge(self, x: torch.Tensor, layers: nn.Module) -> torch.Tensor:
        from shared.pointnets import edge_features

        return layers(edge_features(x, self.cfg.k)).max(dim=-1).values

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, emb + 192, N) [global, x1, x2, x3] per point and the global feature (B, emb); xyz only."""
        x1 = self._edge(x[:, :3], self.edge1)
        x2 = self._edge(x1, self.edge2)
        x3 = self._edge(x2, self.edge3)
        local = torch.cat([x1, x2, x3], dim=1)
        glob = self.embed(local).max(dim=2).values
        return torch.cat([glob.unsqueeze(2).expand(-1, -1, x.shape[2]), local], dim=1), glob

    def decode(self, feats: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(category, NUM_CATEGORIES).float().unsqueeze(2)
        label = self.label_conv(onehot).expand(-1, -1, feats.shape[2])
        emb = self.cfg.global_dim
        logits = self.head(torch.cat([feats[:, :emb], label, feats[:, emb:]], dim=1))
        return logits.masked_fill(~self.mask[category].unsqueeze(2), float("-inf"))

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0], category)

    def classify(self, glob: torch.Tensor) -> torch.Tensor | None:
        return None if self.classifier is None else self.classifier(glob)


def build_segmenter(cfg: EncoderConfig, head: str = "mlp", classifier: bool = True) -> nn.Module:
    """``mlp`` (our encoder + MLP head, fine-tunes a pretrained encoder) or ``reference`` (DGCNN_partseg)."""
    if head == "reference":
        return ReferenceSegNet(cfg, classifier)
    if head == "mlp":
        return SegNet(cfg, classifier=classifier)
    raise CvsuiteError(f"model head must be mlp or reference, got {head!r}")


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
    model: nn.Module
    if kind == "segmenter":
        model = build_segmenter(cfg, json.loads(meta.get("head", '"mlp"')),
                                classifier=any(k.startswith("classifier.") for k in state))
        load_into(model, state, path)
        if want == "encoder":
            if not hasattr(model, "encoder"):
                raise CvsuiteError(f"{path}: a reference-head segmenter has no SCL encoder to reuse; use an encoder file")
            return model.encoder, "encoder", meta
    else:
        if want == "segmenter":
            raise CvsuiteError(f"{path}: holds a pretrained encoder only; part labels need a fine-tuned segmenter "
                               "(use --parts K for unsupervised parts)")
        model = PointEncoder(cfg)
        load_into(model, state, path)
    model.eval()
    return model, kind, meta
