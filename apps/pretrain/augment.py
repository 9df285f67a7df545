"""Multi-view augmentation for contrastive pretraining.

Each view is one random geometric warp (random-resized crop + rotation + shear + optional flip,
combined into a single affine map and applied with one ``grid_sample``, which also resizes the
source to the output size), then photometric jitter, optional blur, Gaussian noise and per-channel
normalisation. One warp per view keeps the per-sample cost tiny, which matters because the shared
Trainer augments sample by sample on CPU workers.

Randomness comes only from ``torch``'s global generator, which the Trainer seeds per sample from
(seed, epoch, index): the same sample gets the same views on every rerun and after a resume.

Presets: ``digits`` (mild crop, small affine, noise, no flips: a flipped 2 is not a 2) and
``natural`` (SimCLR-style crop 0.2-1, flip, colour jitter, grey, blur) for CIFAR / STL / folders.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from shared.config import bounded
from shared.errors import UsageError


@dataclass
class AugmentConfig:
    """View generator settings (``preset`` fills in the defaults that are left as ``None``)."""

    preset: str = "digits"  # digits | natural
    size: int = bounded(16, ge=4, le=1024)  # output side in pixels
    crop_scale: list[float] | None = None  # area fraction range of the crop
    crop_ratio: list[float] = bounded(default_factory=lambda: [3 / 4, 4 / 3], gt=0.0, le=100.0, min_len=2, max_len=2)
    rotate_deg: float | None = None
    shear_deg: float | None = None
    flip: bool | None = None
    jitter_p: float | None = None  # probability of brightness/contrast/saturation/hue jitter
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    grayscale_p: float | None = None
    blur_p: float | None = None
    noise_p: float | None = None
    noise_std: float | None = None  # max std of additive Gaussian noise (in [0, 1] pixel units)


PRESETS: dict[str, dict[str, object]] = {
    "digits": dict(crop_scale=[0.6, 1.0], rotate_deg=12.0, shear_deg=8.0, flip=False, jitter_p=0.8,
                   brightness=0.4, contrast=0.4, saturation=0.0, hue=0.0, grayscale_p=0.0, blur_p=0.0,
                   noise_p=0.5, noise_std=0.1),
    "natural": dict(crop_scale=[0.2, 1.0], rotate_deg=0.0, shear_deg=0.0, flip=True, jitter_p=0.8,
                    brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2, blur_p=0.0,
                    noise_p=0.0, noise_std=0.0),
}


def resolve(cfg: AugmentConfig) -> AugmentConfig:
    """Fill ``None`` fields from the preset; check ranges."""
    if cfg.preset not in PRESETS:
        raise UsageError(f"unknown augmentation preset {cfg.preset!r}; choose one of: {', '.join(PRESETS)}")
    values = {k: (getattr(cfg, k) if getattr(cfg, k) is not None else v) for k, v in PRESETS[cfg.preset].items()}
    out = AugmentConfig(preset=cfg.preset, size=cfg.size, crop_ratio=list(cfg.crop_ratio), **values)
    low, high = out.crop_scale
    if not 0 < low <= high <= 1:
        raise UsageError(f"augment.crop_scale must satisfy 0 < low <= high <= 1, got {out.crop_scale}")
    if out.size < 4:
        raise UsageError(f"augment.size must be at least 4, got {out.size}")
    return out


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def random_affine_theta(cfg: AugmentConfig) -> np.ndarray:
    """A (2, 3) map from output coords to source coords ([-1, 1] normalised, ``affine_grid`` convention).

    Crop of relative size (w, h) centred at c, then shear and rotation about c, then an optional
    horizontal flip: ``x_src = c + R(angle) @ S(shear) @ diag(±w, h) @ x_out``. All the random
    numbers come from one ``torch.rand`` call (cheap, and seeded by the Trainer per sample).
    """
    u = torch.rand(7).tolist()
    low, high = cfg.crop_scale
    area = low + (high - low) * u[0]
    log_lo, log_hi = math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])
    ratio = math.exp(log_lo + (log_hi - log_lo) * u[1])
    width = min(1.0, math.sqrt(area * ratio))
    height = min(1.0, math.sqrt(area / ratio))
    centre_x = (1 - width) * (2 * u[2] - 1)
    centre_y = (1 - height) * (2 * u[3] - 1)
    angle = math.radians(cfg.rotate_deg * (2 * u[4] - 1))
    shear = math.tan(math.radians(cfg.shear_deg * (2 * u[5] - 1)))
    sx = -width if cfg.flip and u[6] < 0.5 else width
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    # R @ [[1, shear], [0, 1]] @ diag(sx, height)
    return np.array([[cos_a * sx, (cos_a * shear - sin_a) * height, centre_x],
                     [sin_a * sx, (sin_a * shear + cos_a) * height, centre_y]], dtype=np.float32)


@functools.lru_cache(maxsize=16)
def _base_grid(size: int) -> np.ndarray:
    """Pixel-centre coordinates (size, size, 2) as (x, y) in [-1, 1] (``align_corners=False``)."""
    lin = (np.arange(size, dtype=np.float32) * 2 + 1) / size - 1
    return np.stack(np.meshgrid(lin, lin, indexing="xy"), axis=-1)


def warp(image: torch.Tensor, theta: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Resample ``image`` (C, H, W) through ``theta`` to (C, size, size), bilinear, edge pixels repeated
    outside (like resize).

    Same result as ``F.affine_grid`` + ``grid_sample``; the grid is built in numpy because
    ``affine_grid`` costs milliseconds per call on a busy CPU (it dominated the data pipeline).
    """
    theta = np.asarray(theta, dtype=np.float32)
    grid = torch.from_numpy(_base_grid(size) @ theta[:, :2].T + theta[:, 2])
    return F.grid_sample(image[None], grid[None].to(image.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


def resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """The evaluation view: the whole image (C, H, W) resized to (C, size, size), bilinear.

    Same values as :func:`warp` with the identity map (edge pixels repeated), but cheaper.
    """
    return resize_batch(image[None], size)[0]


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`resize` for a batch ``(B, C, H, W)`` of equally sized images."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def _grey(image: torch.Tensor) -> torch.Tensor:
    if image.shape[0] == 1:
        return image
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(3, 1, 1)
    return (image * weights).sum(0, keepdim=True)


def colour_jitter(image: torch.Tensor, cfg: AugmentConfig, u: list[float]) -> torch.Tensor:
    """Brightness, contrast, saturation, hue (in that order); ``u`` holds four uniforms in [0, 1)."""
    brightness = 1 + cfg.brightness * (2 * u[0] - 1) if cfg.brightness else 1.0
    contrast = 1 + cfg.contrast * (2 * u[1] - 1) if cfg.contrast else 1.0
    if brightness != 1.0 or contrast != 1.0:
        # contrast blends the brightened image with its mean grey level
        mean = float(_grey(image).mean()) * brightness
        image = image * (brightness * contrast) + mean * (1 - contrast)
    if image.shape[0] == 3:
        if cfg.saturation:
            grey = _grey(image)
            image = (image - grey) * (1 + cfg.saturation * (2 * u[2] - 1)) + grey
        if cfg.hue:
            from torchvision.transforms.v2 import functional as TF

            image = TF.adjust_hue(image.clamp(0, 1), cfg.hue * (2 * u[3] - 1))
    return image.clamp(0, 1)


class ViewGenerator:
    """Makes ``num_views`` independently augmented, normalised views of one image: ``(V, C, S, S)``."""

    def __init__(self, cfg: AugmentConfig, num_views: int, mean: list[float], std: list[float]) -> None:
        if num_views < 1:
            raise UsageError(f"num_views must be >= 1, got {num_views}")
        self.cfg = resolve(cfg)
        self.num_views = num_views
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def view(self, image: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        out = warp(image, random_affine_theta(cfg), cfg.size)
        u = torch.rand(10).tolist()  # one RNG call for every photometric decision of this view
        if cfg.jitter_p and u[0] < cfg.jitter_p:
            out = colour_jitter(out, cfg, u[1:5])
        if out.shape[0] == 3 and cfg.grayscale_p and u[5] < cfg.grayscale_p:
            out = _grey(out).expand(3, -1, -1).clone()
        if cfg.blur_p and u[6] < cfg.blur_p:
            from torchvision.transforms.v2 import functional as TF

            kernel = max(3, (cfg.size // 10) | 1)
            sigma = 0.1 + 1.9 * u[7]
            out = TF.gaussian_blur(out, [kernel, kernel], [sigma, sigma])
        if cfg.noise_p and cfg.noise_std and u[8] < cfg.noise_p:
            out = (out + torch.randn_like(out) * (cfg.noise_std * u[9])).clamp(0, 1)
        return (out - self.mean) / self.std

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.view(image) for _ in range(self.num_views)])

    def plain(self, image: torch.Tensor) -> torch.Tensor:
        """Un-augmented normalised view (what evaluation and inference see)."""
        return (resize(image, self.cfg.size) - self.mean) / self.std


class MultiViewDataset(torch.utils.data.Dataset):
    """Wraps an :class:`~apps.pretrain.data.ImageSet`: item ``i`` is ``{"views": (V, C, S, S), "index": i}``."""

    def __init__(self, images, views: ViewGenerator) -> None:
        self.images = images
        self.views = views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"views": self.views(self.images.image(index)), "index": torch.tensor(index)}
