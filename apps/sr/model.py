"""CRL-SR network: decoupling encoder (invariant | variant split) → restorer → refinement stage.

Everything runs at LR resolution except the bicubic skip and two pixel-shuffle heads, so the
network is cheap enough for CPU training and for 4096² tiled outputs. Architectures are kept in
the ``SR_ARCHS`` registry so users can plug their own (``@SR_ARCHS.register("mine")``); an arch
takes ``scale`` plus its own keyword arguments and returns a module whose ``forward(x)`` maps
``(B, 3, h, w)`` in [0, 1] to ``(B, 3, h·s, w·s)`` and, with ``return_all=True``, a dict with at
least ``sr``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import CvsuiteError
from shared.registry import Registry

SR_ARCHS: Registry[nn.Module] = Registry("SR architecture")


def conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    """conv-ReLU-conv with identity skip (no batch norm: SR statistics vary per image)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv3(width, width), conv3(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


def res_stack(width: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(width) for _ in range(blocks)])


class UpHead(nn.Module):
    """conv to 3·s² channels + pixel shuffle: an RGB residual at HR resolution."""

    def __init__(self, width: int, scale: int) -> None:
        super().__init__()
        self.conv = conv3(width, 3 * scale * scale)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class DegradationFiLM(nn.Module):
    """Per-pixel FiLM from the degradation embedding: ``g ↦ g ⊙ (1 + γ(d)) + β(d)``.

    γ, β are a 1×1 conv of ``d``, zero-initialised, so the layer starts as the identity.
    """

    def __init__(self, cond: int, width: int) -> None:
        super().__init__()
        self.affine = nn.Conv2d(cond, 2 * width, 1)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, g: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(d).chunk(2, dim=1)
        return g * (1 + gamma) + beta


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (σ in pixels, support ±⌈3σ⌉, replicated borders), per channel."""
    radius = int(math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def lock_low_frequencies(sr: torch.Tensor, base: torch.Tensor, sigma: float) -> torch.Tensor:
    """``sr − G_σ * (sr − base)``: the output keeps the low frequencies (σ HR px Gaussian) of the
    bicubic ``base`` and the learned correction only adds detail above them.

    Why: blur, noise and JPEG barely change an image's local mean, so the correction a restorer
    should add has ~zero local mean; a network trained on a few photos instead learns small
    colour-specific offsets (up to 1 level on a saturated flat patch). On a flat patch the
    locked output's mean equals the input's exactly.
    """
    return sr - gaussian_blur(sr - base, sigma)


@SR_ARCHS.register("crlsr")
class CRLSR(nn.Module):
    """Decoupling encoder, degradation-conditioned restorer, feature refinement stage.

    ``forward`` computes: ``f = E(x)``, ``[u | v] = f`` (first ``invariant`` channels are the
    resolution-invariant content ``u``, the rest the resolution-variant part ``v``, i.e. what the
    degradation did). With ``condition`` the restorer adapts to the input: a per-pixel degradation
    embedding ``d = D(v)`` modulates the restorer and the refinement stage by FiLM,
    ``g0 = FiLM_0(B_in(u), d)``, ``g = g0 + R(g0)``, coarse ``y0 = bicubic(x) + H0(g)``, refined
    ``y = y0 + H1(FiLM_1(g + Φ(g), d))``. The heads H0, H1 are zero-initialised, so the untrained
    network *is* bicubic interpolation (a global residual over bicubic); everything is local
    (receptive radius ``receptive_radius``), so tiled inference equals whole-image inference.

    ``colour_lock`` (σ in HR pixels, 0 = off; an inference setting, not stored in weight files) makes
    the output keep bicubic's low frequencies (:func:`lock_low_frequencies`); it widens the
    receptive radius by ⌈⌈3σ⌉ / s⌉ LR pixels.

    ``self_ensemble`` (inference setting, default off) averages the outputs for the eight flips and
    90° rotations of the input, each mapped back (the "+" models of EDSR/RCAN): 8× the compute, the
    same receptive radius (every transform is a symmetry of the pixel grid), so tiling stays exact.
    """

    def __init__(self, scale: int = 4, width: int = 32, invariant: int = 24, enc_blocks: int = 2,
                 body_blocks: int = 5, refine_blocks: int = 2, condition: bool = True, cond_dim: int = 16) -> None:
        super().__init__()
        if not 0 < invariant < width:
            raise CvsuiteError(f"model.invariant must be between 1 and width-1 ({width - 1}), got {invariant}")
        self.scale, self.invariant, self.condition = scale, invariant, condition
        self.head = conv3(3, width)
        self.encoder = res_stack(width, enc_blocks)
        self.body_in = conv3(invariant, width)
        self.body = nn.Sequential(res_stack(width, body_blocks), conv3(width, width))
        self.up0 = UpHead(width, scale)
        self.refine = nn.Sequential(res_stack(width, refine_blocks), conv3(width, width))
        self.up1 = UpHead(width, scale)
        for head in (self.up0, self.up1):  # start as bicubic: the learned part is a residual over it
            nn.init.zeros_(head.conv.weight)
            nn.init.zeros_(head.conv.bias)
        cond_radius = 0
        if condition:
            self.degradation = nn.Sequential(conv3(width - invariant, cond_dim), nn.ReLU(inplace=True),
                                             nn.Conv2d(cond_dim, cond_dim, 1), nn.ReLU(inplace=True))
            self.film_body = DegradationFiLM(cond_dim, width)
            self.film_refine = DegradationFiLM(cond_dim, width)
            cond_radius = 0  # D adds 1 px, but runs beside body_in (also 1 px): the longest path is unchanged
        # 3x3 convs on the longest input→output path, +2 for the bicubic skip's support
        self.network_radius = (1 + 2 * enc_blocks + 1 + 2 * body_blocks + 1 + 2 * refine_blocks + 1 + 1 + 2
                               + cond_radius)
        self.colour_lock = 0.0
        self.self_ensemble = False

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context that fix one output pixel (network + the colour lock's Gaussian)."""
        lock = math.ceil(math.ceil(3 * self.colour_lock) / self.scale) if self.colour_lock > 0 else 0
        return self.network_radius + lock

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.encoder(self.head(x - 0.5))
        return feats[:, :self.invariant], feats[:, self.invariant:]

    def forward(self, x: torch.Tensor, return_all: bool = False) -> Any:
        if self.self_ensemble and not return_all:
            return dihedral_mean(self._forward, x)
        return self._forward(x, return_all)

    def _forward(self, x: torch.Tensor, return_all: bool = False) -> Any:
        invariant, variant = self.encode(x)
        g0 = self.body_in(invariant)
        d = self.degradation(variant) if self.condition else None
        if d is not None:
            g0 = self.film_body(g0, d)
        g = g0 + self.body(g0)
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        coarse = base + self.up0(g)
        refined = g + self.refine(g)
        if d is not None:
            refined = self.film_refine(refined, d)
        sr = coarse + self.up1(refined)
        if self.colour_lock > 0:
            sr = lock_low_frequencies(sr, base, self.colour_lock)
        if return_all:
            return {"sr": sr, "coarse": coarse, "base": base, "invariant": invariant, "variant": variant,
                    "degradation": d}
        return sr


def dihedral_mean(fn: Any, x: torch.Tensor) -> torch.Tensor:
    """Mean of ``T⁻¹(fn(T(x)))`` over the 8 flips/90° rotations ``T`` of the (h, w) grid."""
    total = None
    for k in range(4):
        for flip in (False, True):
            t = torch.rot90(x, k, dims=(-2, -1))
            t = torch.flip(t, dims=(-1,)) if flip else t
            y = fn(t)
            y = torch.flip(y, dims=(-1,)) if flip else y
            y = torch.rot90(y, -k, dims=(-2, -1))
            total = y if total is None else total + y
    return total / 8


def build_model(arch: str = "crlsr", **kwargs: Any) -> nn.Module:
    return SR_ARCHS.build(arch, **kwargs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


META_KEY = "cvsuite_sr_model"


def model_metadata(arch: str, kwargs: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata from which :func:`load_model` rebuilds the network.

    One key only: safetensors stores the metadata map in hash order, which varies between
    processes, so a multi-key header would make two bit-identical trainings write different bytes.
    """
    return {META_KEY: json.dumps({"arch": arch, "model_kwargs": kwargs}, sort_keys=True)}


COLOUR_LOCK_SIGMA = 16.0  # HR px; chosen on the validation photos (apps/sr/README.md)


def model_record(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The arch and its keyword arguments recorded for a weight file: its safetensors metadata (current or
    pre-single-key header), else the run's ``config.yaml`` next to it."""
    from safetensors import safe_open

    path = Path(path)
    meta: dict[str, str] = {}
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
        except Exception:  # noqa: BLE001 - unreadable header: fall back to config.yaml (load_model validates the file first)
            meta = {}
    if META_KEY in meta:
        record = json.loads(meta[META_KEY])
        arch, kwargs = record["arch"], dict(record.get("model_kwargs", {}))
    elif "arch" in meta:  # files written before the single-key header
        arch, kwargs = meta["arch"], json.loads(meta.get("model_kwargs", "{}"))
    elif (path.parent / "config.yaml").is_file():
        import yaml

        model_cfg = dict((yaml.safe_load((path.parent / "config.yaml").read_text()) or {}).get("model", {}))
        arch = model_cfg.pop("arch", "crlsr")
        kwargs = model_cfg
    else:
        raise CvsuiteError(f"{path}: no architecture metadata and no config.yaml next to it")
    return arch, kwargs


def load_model(path: str | Path, scale: int | None = None, colour_lock: float = COLOUR_LOCK_SIGMA,
               self_ensemble: bool = False) -> nn.Module:
    """Build the arch recorded in a weight file's metadata (or the run's ``config.yaml``) and load it,
    for inference: ``colour_lock`` (σ, HR px; 0 = off) and ``self_ensemble`` (x8 flips/rotations) are
    set on archs that have them."""
    from shared.weights import load_into, load_state_dict

    path = Path(path)
    state = load_state_dict(path)
    arch, kwargs = model_record(path)
    if scale is not None and int(kwargs.get("scale", scale)) != scale:
        raise CvsuiteError(f"{path} holds x{kwargs.get('scale')} weights, but --scale {scale} was requested")
    model = build_model(arch, **kwargs)
    load_into(model, state, path)
    if hasattr(model, "colour_lock"):
        model.colour_lock = float(colour_lock)
    if self_ensemble:
        if not hasattr(model, "self_ensemble"):
            raise CvsuiteError(f"{path}: arch {arch!r} has no self-ensemble mode")
        model.self_ensemble = True
    return model.eval()
