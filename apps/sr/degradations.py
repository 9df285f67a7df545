"""Degradation pipelines for blind SR: bicubic, multi-modal ("blind") and spatially variant.

Images are float32 ``(H, W, 3)`` RGB in ``[0, 1]``. The random pieces come from basicsr
(``basicsr.data.degradations``: mixed Gaussian/generalised/plateau kernels, sinc kernels,
Gaussian/Poisson noise, JPEG); the spatially-variant composition is ours:

* a small set of kernels is drawn, the HR image is blurred with each, and the results are
  blended per pixel with smooth (low-frequency random field) or regional (soft Voronoi) weight
  maps. Because convolution is linear, this equals blurring every pixel with its own kernel
  ``k(p) = sum_k w_k(p) k_k``; the per-pixel kernel covariance is ``sum_k w_k(p) C_k``, which gives
  exact per-pixel width/orientation maps;
* the noise level is a second smooth (or regional) map.

basicsr draws from the *global* numpy / python RNGs. :func:`degrade` with ``seed=...`` runs in a
local seeded context and restores the global state afterwards, so results are deterministic and
independent of call order; with ``seed=None`` it uses the global RNGs (the training engine seeds
them per sample).
"""
from __future__ import annotations

import contextlib
import math
import random
import zlib
from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

import shared  # noqa: F401  (compat shim before basicsr)
from basicsr.data import degradations as bsr_deg
from basicsr.utils.matlab_functions import imresize as matlab_imresize

from shared.engine.seed import seeded_rngs
from shared.errors import UsageError

try:  # basicsr hands OpenCV's JPEG encoder a float image; silence its "fallback to CV_8U" warning
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:  # pragma: no cover - older OpenCV
    pass

KINDS = ("bicubic", "mild", "blind", "spatially-variant")
KERNEL_SIZE = 21  # every kernel is padded to this size (HR pixels)


@dataclass
class DegradationConfig:
    """Ranges of the random degradation (Real-ESRGAN first-stage defaults, one stage)."""

    kernel_list: list[str] = field(default_factory=lambda: [
        "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"])
    kernel_prob: list[float] = field(default_factory=lambda: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03])
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    kernel_sizes: list[int] = field(default_factory=lambda: [7, 9, 11, 13, 15, 17, 19, 21])  # odd, ≤ 21; one drawn per image
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_modes: list[str] = field(default_factory=lambda: ["area", "bilinear", "bicubic"])
    gaussian_noise_prob: float = 0.5  # otherwise Poisson
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # Gaussian, in 0..255 units
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    noise_prob: float = 1.0  # probability of adding any noise
    jpeg_prob: float = 1.0
    jpeg_quality: tuple[float, float] = (30.0, 95.0)
    # spatially variant
    sv_kernels: tuple[int, int] = (2, 4)  # number of kernels blended per image
    sv_region_prob: float = 0.5  # soft regions (else smooth random fields)
    sv_grid: tuple[int, int] = (2, 5)  # coarse grid size of the smooth fields
    sv_sharpness: float = 6.0  # softmax temperature of the smooth blend weights
    # mild: isotropic Gaussian blur whose σ ramps linearly across the image (random direction)
    # from σ_start to σ_end, bicubic resize, Gaussian noise, JPEG. Ranges are drawn uniformly; the
    # benchmark's "mild" row fixes them to the point values 0.8 → 2.2, noise 5, JPEG 90 (MILD_POINT).
    mild_sigma_start: tuple[float, float] = (0.6, 1.0)
    mild_sigma_end: tuple[float, float] = (1.8, 2.6)
    mild_noise: tuple[float, float] = (2.0, 8.0)  # Gaussian σ, 0..255 units
    mild_jpeg: tuple[float, float] = (85.0, 95.0)
    mild_levels: int = 6  # σ samples the per-pixel kernel is interpolated between


_RESIZE = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed the global RNGs basicsr draws from for a block and restore them after (None: leave them)."""
    if seed is None:
        yield
        return
    with seeded_rngs(seed):
        yield


def image_seed(seed: int, name: str) -> int:
    """Per-image seed: the same image gets the same degradation whatever order a folder is read in."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32


# -- kernels --------------------------------------------------------------------------------------

def check_degradation_config(cfg: DegradationConfig) -> None:
    """Refuse ranges the pipeline cannot draw from (a usage error before any data is touched)."""
    bad = [k for k in cfg.kernel_sizes if k % 2 == 0 or not 3 <= k <= KERNEL_SIZE]
    if not cfg.kernel_sizes or bad:
        raise UsageError(f"data.degradation.kernel_sizes must be odd sizes between 3 and {KERNEL_SIZE}, got {cfg.kernel_sizes}")
    if len(cfg.kernel_list) != len(cfg.kernel_prob):
        raise UsageError("data.degradation.kernel_list and kernel_prob must have the same length")


def random_kernel(cfg: DegradationConfig, allow_sinc: bool = True,
                  sigma_range: tuple[float, float] | None = None) -> tuple[np.ndarray, str]:
    """One random blur kernel (``KERNEL_SIZE``², sums to 1) and its type name, via basicsr."""
    sigma_range = sigma_range or cfg.blur_sigma
    size = random.choice(cfg.kernel_sizes)
    if allow_sinc and np.random.uniform() < cfg.sinc_prob:
        cutoff = np.random.uniform(np.pi / 3, np.pi) if size < 13 else np.random.uniform(np.pi / 5, np.pi)
        kernel = bsr_deg.circular_lowpass_kernel(cutoff, size, pad_to=False)
        kind = "sinc"
    else:
        kind = random.choices(cfg.kernel_list, cfg.kernel_prob)[0]
        kernel = bsr_deg.random_mixed_kernels([kind], [1.0], size, sigma_range, sigma_range,
                                              [-math.pi, math.pi], cfg.betag_range, cfg.betap_range,
                                              noise_range=None)
    pad = (KERNEL_SIZE - size) // 2
    kernel = np.pad(kernel, ((pad, pad), (pad, pad))).astype(np.float64)
    return (kernel / kernel.sum()).astype(np.float32), kind


def kernel_covariance(kernel: np.ndarray) -> np.ndarray:
    """Second-moment matrix (2×2, HR pixels², order x,y) of a normalised kernel about its centre."""
    k = kernel.astype(np.float64) / kernel.sum()
    r = (k.shape[0] - 1) / 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    cxx, cyy, cxy = (k * xx * xx).sum(), (k * yy * yy).sum(), (k * xx * yy).sum()
    return np.array([[cxx, cxy], [cxy, cyy]])


def covariance_to_maps(cxx: np.ndarray, cyy: np.ndarray, cxy: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel principal widths (σ_major ≥ σ_minor) and orientation θ ∈ (-π/2, π/2] of 2×2 covariances."""
    half_trace = (cxx + cyy) / 2
    root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy ** 2)
    major = np.sqrt(np.maximum(half_trace + root, 0))
    minor = np.sqrt(np.maximum(half_trace - root, 0))
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    return {"sigma_major": major.astype(np.float32), "sigma_minor": minor.astype(np.float32),
            "theta": theta.astype(np.float32)}


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


# -- weight maps ----------------------------------------------------------------------------------

def smooth_field(h: int, w: int, grid: int) -> np.ndarray:
    """A low-frequency random field in [0, 1]: a coarse uniform grid upsampled bicubically."""
    coarse = np.random.uniform(0, 1, size=(grid, grid)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def blend_weights(h: int, w: int, n: int, cfg: DegradationConfig) -> tuple[np.ndarray, str]:
    """``(n, h, w)`` non-negative weights summing to 1 per pixel: soft regions or smooth fields."""
    if np.random.uniform() < cfg.sv_region_prob:
        points = np.random.uniform(0, 1, size=(n, 2)) * [w, h]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = np.stack([np.hypot(xx - px, yy - py) for px, py in points])
        soft = max(2.0, 0.03 * max(h, w))  # soft edge width in pixels
        logits = -(dist - dist.min(axis=0, keepdims=True)) / soft
        mode = "regions"
    else:
        grid = int(np.random.randint(cfg.sv_grid[0], cfg.sv_grid[1] + 1))
        logits = np.stack([smooth_field(h, w, grid) for _ in range(n)]) * cfg.sv_sharpness
        mode = "smooth"
    logits = logits - logits.max(axis=0, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32), mode


# -- noise / jpeg ---------------------------------------------------------------------------------

def _jpeg_rgb(img: np.ndarray, quality: float) -> np.ndarray:
    """basicsr's JPEG (OpenCV, which expects BGR) applied to an RGB image."""
    out = bsr_deg.add_jpg_compression(np.ascontiguousarray(img[..., ::-1]), int(quality))
    return np.ascontiguousarray(out[..., ::-1])


def _resize(img: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    return cv2.resize(img, size, interpolation=_RESIZE[mode])


def _noise_global(lr: np.ndarray, cfg: DegradationConfig) -> tuple[np.ndarray, dict]:
    if np.random.uniform() >= cfg.noise_prob:
        return lr, {"noise": "none", "noise_level": 0.0}
    gray = bool(np.random.uniform() < cfg.gray_noise_prob)
    if np.random.uniform() < cfg.gaussian_noise_prob:
        sigma = float(np.random.uniform(*cfg.noise_sigma))
        noise = bsr_deg.generate_gaussian_noise(lr, sigma, gray)
        return lr + noise, {"noise": "gaussian", "noise_level": sigma, "gray_noise": gray}
    scale = float(np.random.uniform(*cfg.poisson_scale))
    noise = bsr_deg.generate_poisson_noise(np.ascontiguousarray(lr[..., ::-1]), scale, gray)[..., ::-1]
    return lr + noise, {"noise": "poisson", "noise_level": scale, "gray_noise": gray}


# -- pipelines ------------------------------------------------------------------------------------

def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W to multiples of ``scale`` (so LR × scale == HR)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def degrade_bicubic(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible bicubic downsampling (basicsr ``imresize``), as in the benchmark sets."""
    return np.clip(matlab_imresize(hr, 1.0 / scale), 0, 1).astype(np.float32)


def degrade_blind(hr: np.ndarray, scale: int, cfg: DegradationConfig) -> tuple[np.ndarray, dict]:
    """One global random kernel, random resize, Gaussian/Poisson noise, JPEG."""
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    kernel, ktype = random_kernel(cfg)
    out = blur(hr, kernel)
    mode = random.choice(cfg.resize_modes)
    out = _resize(out, (w, h), mode)
    out, noise_info = _noise_global(out, cfg)
    out = np.clip(out, 0, 1)
    quality = None
    if np.random.uniform() < cfg.jpeg_prob:
        quality = float(np.random.uniform(*cfg.jpeg_quality))
        out = _jpeg_rgb(out, quality)
    cov = kernel_covariance(kernel)
    maps = covariance_to_maps(*(np.full((h, w), v, np.float32) for v in (cov[0, 0], cov[1, 1], cov[0, 1])))
    maps["noise_level"] = np.full((h, w), noise_info["noise_level"], np.float32)
    info = {"kernel": ktype, "resize": mode, "jpeg_quality": quality, **noise_info}
    return out.astype(np.float32), {"info": info, "maps": maps}


def gaussian_kernel(sigma: float, size: int = KERNEL_SIZE) -> np.ndarray:
    """Isotropic Gaussian kernel ``size``² (sums to 1)."""
    r = (size - 1) / 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    k = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)


def degrade_mild(hr: np.ndarray, scale: int, cfg: DegradationConfig) -> tuple[np.ndarray, dict]:
    """Gaussian blur with σ(p) ramping linearly from σ_start to σ_end along a random direction
    (per-pixel kernel = linear interpolation between ``mild_levels`` Gaussians), bicubic resize,
    Gaussian noise, JPEG — the everyday "slightly soft, slightly noisy, compressed" photo."""
    H, W = hr.shape[:2]
    h, w = H // scale, W // scale
    s0, s1 = float(np.random.uniform(*cfg.mild_sigma_start)), float(np.random.uniform(*cfg.mild_sigma_end))
    angle = float(np.random.uniform(-math.pi, math.pi))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    proj = xx * math.cos(angle) + yy * math.sin(angle)
    ramp = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)  # 0 → 1 across the image
    sigma_map = s0 + (s1 - s0) * ramp
    levels = np.linspace(min(s0, s1), max(s0, s1), cfg.mild_levels) if s0 != s1 else np.array([s0])
    out = np.zeros_like(hr)
    variance = np.zeros((H, W), np.float32)  # the blended kernel's second moment (exact, per pixel)
    if len(levels) == 1:
        out = blur(hr, gaussian_kernel(s0))
        variance += kernel_covariance(gaussian_kernel(s0))[0, 0]
    else:
        pos = np.clip((sigma_map - levels[0]) / (levels[1] - levels[0]), 0, len(levels) - 1)
        for j, sigma in enumerate(levels):  # hat-function weights: sum to 1 per pixel
            wj = np.clip(1 - np.abs(pos - j), 0, 1)
            if wj.max() > 0:
                kernel = gaussian_kernel(float(sigma))
                out += blur(hr, kernel) * wj[..., None]
                variance += wj * float(kernel_covariance(kernel)[0, 0])
    out = _resize(out, (w, h), "bicubic")
    noise = float(np.random.uniform(*cfg.mild_noise))
    out = np.clip(out + bsr_deg.generate_gaussian_noise(out, noise, False), 0, 1)
    quality = float(np.random.uniform(*cfg.mild_jpeg))
    out = _jpeg_rgb(out, quality)
    lr_sigma = np.sqrt(cv2.resize(variance, (w, h), interpolation=cv2.INTER_AREA)).astype(np.float32)
    maps = {"sigma_major": lr_sigma, "sigma_minor": lr_sigma.copy(), "theta": np.zeros((h, w), np.float32),
            "noise_level": np.full((h, w), noise, np.float32)}
    info = {"sigma_start": s0, "sigma_end": s1, "direction": angle, "resize": "bicubic", "noise": "gaussian",
            "noise_level": noise, "jpeg_quality": quality}
    return out.astype(np.float32), {"info": info, "maps": maps}


# The point values of the "mild" test degradation (the benchmark's mild row).
MILD_POINT = {"mild_sigma_start": (0.8, 0.8), "mild_sigma_end": (2.2, 2.2), "mild_noise": (5.0, 5.0),
              "mild_jpeg": (90.0, 90.0)}


def degrade_spatially_variant(hr: np.ndarray, scale: int, cfg: DegradationConfig) -> tuple[np.ndarray, dict]:
    """Per-pixel kernels (blend of 2–4 random kernels) and a per-pixel Gaussian noise level."""
    H, W = hr.shape[:2]
    h, w = H // scale, W // scale
    n = int(np.random.randint(cfg.sv_kernels[0], cfg.sv_kernels[1] + 1))
    # stratified widths: kernel j draws its σ from its own slice of the range, so they really differ
    edges = np.linspace(cfg.blur_sigma[0], cfg.blur_sigma[1], n + 1)
    slices = np.random.permutation(n)
    kernels = [random_kernel(cfg, False, (float(edges[j]), float(edges[j + 1]))) for j in slices]
    weights, mode = blend_weights(H, W, n, cfg)
    out = np.zeros_like(hr)
    for (kernel, _), wk in zip(kernels, weights):
        out += blur(hr, kernel) * wk[..., None]
    resize = random.choice(cfg.resize_modes)
    out = _resize(out, (w, h), resize)
    lr_weights = np.stack([cv2.resize(wk, (w, h), interpolation=cv2.INTER_AREA) for wk in weights])
    covs = [kernel_covariance(k) for k, _ in kernels]
    cxx = sum(wk * c[0, 0] for wk, c in zip(lr_weights, covs))
    cyy = sum(wk * c[1, 1] for wk, c in zip(lr_weights, covs))
    cxy = sum(wk * c[0, 1] for wk, c in zip(lr_weights, covs))
    maps = covariance_to_maps(cxx, cyy, cxy)
    # noise level: per region (same regions as the kernels) or its own smooth field
    n_lo, n_hi = cfg.noise_sigma
    span = np.random.uniform(0.3, 1.0) * (n_hi - n_lo)  # at least 30 % of the range across the image
    lo = np.random.uniform(n_lo, n_hi - span)
    hi = lo + span
    if np.random.uniform() < cfg.noise_prob:
        if mode == "regions":
            levels = np.random.uniform(lo, hi, size=n).astype(np.float32)
            level_map = (lr_weights * levels[:, None, None]).sum(axis=0)
        else:
            grid = int(np.random.randint(cfg.sv_grid[0], cfg.sv_grid[1] + 1))
            level_map = lo + (hi - lo) * smooth_field(h, w, grid)
        gray = bool(np.random.uniform() < cfg.gray_noise_prob)
        unit = bsr_deg.generate_gaussian_noise(out, 1.0, gray)  # σ = 1/255 noise, scaled per pixel
        out = out + unit * level_map[..., None]
    else:
        level_map = np.zeros((h, w), np.float32)
    maps["noise_level"] = level_map.astype(np.float32)
    out = np.clip(out, 0, 1)
    quality = None
    if np.random.uniform() < cfg.jpeg_prob:
        quality = float(np.random.uniform(*cfg.jpeg_quality))
        out = _jpeg_rgb(out, quality)
    info = {"kernels": [k for _, k in kernels], "blend": mode, "resize": resize, "jpeg_quality": quality,
            "noise": "gaussian-variant", "noise_range": [float(lo), float(hi)]}
    return out.astype(np.float32), {"info": info, "maps": maps}


def degrade(hr: np.ndarray, scale: int, kind: str, seed: int | None = None,
            cfg: DegradationConfig | None = None) -> tuple[np.ndarray, dict]:
    """Degrade a float RGB HR image (H, W multiples of ``scale``) into an LR image.

    Returns ``(lr, meta)``: ``lr`` float32 in [0, 1] of shape (H/scale, W/scale, 3), ``meta`` with
    ``info`` (what was drawn) and ``maps`` (per-LR-pixel ``sigma_major``, ``sigma_minor`` in HR
    pixels, ``theta`` radians, ``noise_level``; absent for ``bicubic``).
    """
    if kind not in KINDS:
        raise UsageError(f"unknown degradation kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if scale not in (2, 3, 4):
        raise UsageError(f"scale must be 2, 3 or 4, got {scale}")
    if hr.ndim != 3 or hr.shape[2] != 3:
        raise UsageError(f"degrade expects an (H, W, 3) RGB image, got shape {hr.shape}")
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise UsageError(f"image size {hr.shape[1]}x{hr.shape[0]} is not a multiple of scale {scale}")
    cfg = cfg or DegradationConfig()
    hr = np.ascontiguousarray(hr, dtype=np.float32)
    with seeded(seed):
        if kind == "bicubic":
            return degrade_bicubic(hr, scale), {"info": {"kind": "bicubic"}, "maps": {}}
        if kind == "blind":
            lr, meta = degrade_blind(hr, scale, cfg)
        elif kind == "mild":
            lr, meta = degrade_mild(hr, scale, cfg)
        else:
            lr, meta = degrade_spatially_variant(hr, scale, cfg)
    meta["info"]["kind"] = kind
    return lr, meta


def quantize(img: np.ndarray) -> np.ndarray:
    """float [0, 1] → uint8 with rounding (what is written to PNG and what the model sees)."""
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def describe_degradation(info: dict, scale: int) -> str:
    """One caption line for what ``degrade`` drew (its ``meta["info"]``), e.g.
    ``x4 mild: blur σ 0.8→2.2, noise σ 5.0, JPEG 90``."""
    kind = info.get("kind", "unknown")
    jpeg = f", JPEG {info['jpeg_quality']:.0f}" if info.get("jpeg_quality") is not None else ", no JPEG"
    if kind == "bicubic":
        return f"x{scale} bicubic (clean)"
    if kind == "mild":
        return (f"x{scale} mild: blur σ {info['sigma_start']:.1f}→{info['sigma_end']:.1f}, "
                f"noise σ {info['noise_level']:.1f}{jpeg}")
    if kind == "blind":
        noise = info.get("noise", "none")
        if noise == "gaussian":
            noise = f"Gaussian noise σ {info['noise_level']:.1f}"
        elif noise == "poisson":
            noise = f"Poisson noise ×{info['noise_level']:.2f}"
        else:
            noise = "no noise"
        return f"x{scale} blind: {info['kernel']} kernel, {info['resize']} resize, {noise}{jpeg}"
    if kind == "spatially-variant":
        lo, hi = info.get("noise_range", (0.0, 0.0))
        return (f"x{scale} spatially-variant: {len(info['kernels'])} kernels ({info['blend']}), "
                f"noise σ {lo:.0f}–{hi:.0f}{jpeg}")
    return f"x{scale} {kind}"
