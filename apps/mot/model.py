"""Appearance embedding network on detection crops, and a batched crop extractor.

The network is a shared backbone (``small_cnn`` by default, from :mod:`shared.backbones`) plus a
two-layer projection head; the tracker compares L2-normalised outputs by cosine similarity.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared.backbones import build_backbone
from shared.errors import CvsuiteError

CROP_H, CROP_W = 64, 32
PIXEL_MEAN, PIXEL_STD = 0.45, 0.25


class EmbeddingNet(nn.Module):
    """``(B, 3, CROP_H, CROP_W)`` normalised crops -> ``(B, dim)`` raw embeddings."""

    def __init__(self, backbone: str = "small_cnn", width: int = 32, dim: int = 64) -> None:
        super().__init__()
        kwargs = {"width": width} if backbone == "small_cnn" else {}
        self.backbone = build_backbone(backbone, **kwargs)
        hidden = int(self.backbone.out_dim)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        self.arch = {"backbone": backbone, "width": width, "dim": dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings in eval mode."""
        return F.normalize(self(x), dim=1)


def normalise_crops(crops_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> float input of the network."""
    return (crops_uint8.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD


def crop_boxes(frame: np.ndarray, boxes: np.ndarray, size: tuple[int, int] = (CROP_H, CROP_W),
               context: float = 0.0) -> torch.Tensor:
    """Crops of ``boxes`` (N, 4 ltwh) from an RGB uint8 frame, resized to ``size`` -> uint8 (N, 3, h, w).

    Each crop is one bilinear ``cv2.warpAffine`` of the (sub-pixel) box onto the output grid, with
    replicated borders for boxes that leave the image. ``context`` enlarges every box by that
    fraction on each side (training crops keep a margin for random-crop augmentation).
    """
    import cv2

    out_h, out_w = size
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), out_h, out_w, 3), np.uint8)
    for i, (l, t, w, h) in enumerate(boxes):
        l, t, w, h = l - context * w, t - context * h, w * (1 + 2 * context), h * (1 + 2 * context)
        sx, sy = out_w / max(w, 1e-6), out_h / max(h, 1e-6)
        # output pixel centre (u + 0.5) maps to input x = l + (u + 0.5) / sx, pixel centres at +0.5
        matrix = np.array([[sx, 0.0, -(l - 0.5) * sx - 0.5], [0.0, sy, -(t - 0.5) * sy - 0.5]])
        out[i] = cv2.warpAffine(frame, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def net_from_state_dict(state: dict[str, torch.Tensor], path: str | Path = "<memory>") -> EmbeddingNet:
    """Rebuild an :class:`EmbeddingNet` whose size matches ``state`` (small_cnn width and dim from shapes)."""
    from shared.weights import load_into

    try:
        width = int(state["backbone.features.0.weight"].shape[0])
        dim = int(state["head.2.weight"].shape[0])
    except KeyError as exc:
        raise CvsuiteError(f"{path}: not an apps.mot embedding (missing tensor {exc.args[0]})") from None
    net = EmbeddingNet("small_cnn", width, dim)
    load_into(net, state, path, strict=True)
    return net.eval()


class Embedder:
    """Embeds detections of a frame with a trained :class:`EmbeddingNet` (inference helper)."""

    def __init__(self, net: EmbeddingNet, device: str = "cpu", batch: int = 256) -> None:
        self.net = net.eval().to(device)
        self.device = device
        self.batch = batch
        self.dim = int(net.head[-1].out_features)

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu") -> "Embedder":
        from shared.weights import load_state_dict

        return cls(net_from_state_dict(load_state_dict(path), path), device)

    @torch.no_grad()
    def __call__(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        crops = crop_boxes(frame, boxes)
        out = [self.net.embed(normalise_crops(crops[i:i + self.batch]).to(self.device))
               for i in range(0, len(crops), self.batch)]
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return torch.cat(out).cpu().numpy().astype(np.float32)
