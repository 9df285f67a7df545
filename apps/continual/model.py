"""The CURL model (Rao et al. 2019): shared encoder, q(y|x), per-component q(z|x,y), p(z|y), p(x|z).

All ``n_y`` components are allocated up front, as in the official code; ``n_active`` (a buffer, so
it is checkpointed) says how many are in use. ``q(y|x)`` is a softmax over the active columns of
one linear layer; each component has its own linear head for ``q(z|x,y)`` (mean and softplus
variance); ``p(z|y)`` is a linear map of the one-hot ``y`` (mean and softplus variance); the
decoder is one MLP shared by all components (``decoder_type='single'`` of the official configs)
with a Bernoulli output. Initialisation follows Sonnet 1's ``Linear`` default: truncated normal
weights with std ``1/sqrt(fan_in)`` and zero biases.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shared.config import bounded
from shared.losses import MixtureELBO, bernoulli_log_prob, diag_gaussian_kl


@dataclass
class ModelConfig:
    """Sizes; the defaults are the official ``train_main.py`` (sequential MNIST) values."""

    n_enc: list[int] = bounded(default_factory=lambda: [1200, 600, 300, 150], ge=1, min_len=1)
    n_dec: list[int] = bounded(default_factory=lambda: [500, 500], ge=1, min_len=0)
    n_z: int = bounded(32, ge=1, le=4096)
    n_y: int = bounded(30, ge=1, le=1000)  # maximum number of components
    n_y_active: int = bounded(1, ge=1, le=1000)  # components active at the start


def sonnet_linear_init(layer: nn.Linear) -> nn.Linear:
    """Sonnet 1 ``snt.Linear`` default: truncated normal (±2 std) with std 1/sqrt(fan_in), zero bias."""
    std = 1.0 / math.sqrt(layer.in_features)
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def mlp(sizes: list[int], activate_final: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(sonnet_linear_init(nn.Linear(a, b)))
        if activate_final or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """p(z|y) (linear in one-hot y) and p(x|z) (MLP, Bernoulli logits): the generative half."""

    def __init__(self, n_x: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.prior_mu = sonnet_linear_init(nn.Linear(cfg.n_y, cfg.n_z))
        self.prior_sigma = sonnet_linear_init(nn.Linear(cfg.n_y, cfg.n_z))
        self.data = mlp([cfg.n_z, *cfg.n_dec, n_x], activate_final=False)

    def prior(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of p(z|y) for components 0..k-1: two (k, n_z) tensors."""
        onehot = torch.eye(k, self.prior_mu.in_features, device=self.prior_mu.weight.device,
                           dtype=self.prior_mu.weight.dtype)
        return self.prior_mu(onehot), F.softplus(self.prior_sigma(onehot))

    @torch.no_grad()
    def sample(self, y: torch.Tensor, generator: torch.Generator | None = None, mean: bool = True) -> torch.Tensor:
        """Images (B, n_x) in [0, 1] for components ``y``: z ~ p(z|y), then the Bernoulli mean (or a draw)."""
        mu, var = self.prior(self.prior_mu.in_features)
        device = generator.device if generator is not None else mu.device
        eps = torch.randn(len(y), mu.shape[1], generator=generator, device=device, dtype=mu.dtype).to(mu.device)
        y = y.to(mu.device)
        z = mu[y] + var[y].sqrt() * eps
        probs = torch.sigmoid(self.data(z))
        if mean:
            return probs
        uniform = torch.rand(probs.shape, generator=generator, device=device, dtype=probs.dtype).to(probs.device)
        return (uniform < probs).to(probs.dtype)


class CurlModel(nn.Module):
    """CURL: ``forward``-free; use :meth:`elbo_terms`, :meth:`cluster_probs`, :meth:`latent_mean`."""

    def __init__(self, n_x: int, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.n_y_active > cfg.n_y:
            from shared.errors import UsageError

            raise UsageError(f"config key 'model.n_y_active' ({cfg.n_y_active}) must be <= model.n_y ({cfg.n_y})")
        self.n_x, self.cfg = n_x, cfg
        self.encoder = mlp([n_x, *cfg.n_enc], activate_final=True)
        hidden = cfg.n_enc[-1]
        self.cluster = sonnet_linear_init(nn.Linear(hidden, cfg.n_y))
        # per-component heads for q(z|x,y): (n_y, hidden, 2 n_z) weights, as n_y separate snt.Linear
        std = 1.0 / math.sqrt(hidden)
        self.latent_w = nn.Parameter(nn.init.trunc_normal_(torch.empty(cfg.n_y, hidden, 2 * cfg.n_z),
                                                           std=std, a=-2 * std, b=2 * std))
        self.latent_b = nn.Parameter(torch.zeros(cfg.n_y, 2 * cfg.n_z))
        self.decoder = Decoder(n_x, cfg)
        self.register_buffer("n_active", torch.tensor(cfg.n_y_active, dtype=torch.long))
        self.elbo = MixtureELBO()

    @property
    def active(self) -> int:
        return int(self.n_active)

    def component_parameters(self) -> list[nn.Parameter]:
        """What an expansion trains on its buffer (official: cluster head, latent heads, latent prior)."""
        return [self.cluster.weight, self.cluster.bias, self.latent_w, self.latent_b,
                *self.decoder.prior_mu.parameters(), *self.decoder.prior_sigma.parameters()]

    def cluster_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.cluster(h)[:, :self.active]

    def latent_params(self, h: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(z|x,y) for the first ``k`` (default: active) components: (k, B, n_z)."""
        k = self.active if k is None else k
        out = torch.einsum("bh,khd->kbd", h, self.latent_w[:k]) + self.latent_b[:k, None, :]
        mu, sigma = out.chunk(2, dim=-1)
        return mu, F.softplus(sigma)

    def elbo_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample ELBO pieces of binarised ``x`` (B, n_x), marginalised over the active components.

        Also returns ``log_px_all``/``kl_z_all`` (K, B) and ``qy_logits`` for the supervised loss.
        """
        h = self.encoder(x)
        logits = self.cluster_logits(h)
        k = logits.shape[1]
        mu_q, var_q = self.latent_params(h, k)
        mu_p, var_p = self.decoder.prior(k)
        eps = torch.randn(mu_q.shape, device=mu_q.device, dtype=mu_q.dtype)  # (K, B, n_z), K-major
        z = mu_q + var_q.sqrt() * eps  # one reparameterised sample per component
        kl_z = diag_gaussian_kl(mu_q, var_q, mu_p[:, None, :], var_p[:, None, :])  # (K, B)
        log_px = bernoulli_log_prob(self.decoder.data(z), x)  # (K, B)
        terms = self.elbo(logits, log_px, kl_z)
        terms.update(log_px_all=log_px, kl_z_all=kl_z, qy_logits=logits)
        return terms

    @torch.no_grad()
    def cluster_probs(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) over the active components: (B, K)."""
        return torch.softmax(self.cluster_logits(self.encoder(x)), dim=1)

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(q(y|x), mean of q(z|x, y=argmax q(y|x))): the official ``classify_with_samples=False`` latents."""
        h = self.encoder(x)
        probs = torch.softmax(self.cluster_logits(h), dim=1)
        mu, _ = self.latent_params(h)
        best = probs.argmax(1)
        return probs, mu[best, torch.arange(len(x))]

    def copy_component(self, source: int, target: int) -> None:
        """Initialise component ``target`` from ``source`` (official ``copy_component_params``): latent
        head, cluster-head column and the prior's weight column (the prior biases are shared)."""
        with torch.no_grad():
            self.latent_w[target].copy_(self.latent_w[source])
            self.latent_b[target].copy_(self.latent_b[source])
            self.cluster.weight[target].copy_(self.cluster.weight[source])
            self.cluster.bias[target].copy_(self.cluster.bias[source])
            self.decoder.prior_mu.weight[:, target].copy_(self.decoder.prior_mu.weight[:, source])
            self.decoder.prior_sigma.weight[:, target].copy_(self.decoder.prior_sigma.weight[:, source])


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Official ``binarize_fn``: pixel > 0.5."""
    return (x > 0.5).to(torch.float32)


# ------------------------------------------------------------------------------------ weight files
APP_TAG = "continual"


def save_curl(model: CurlModel, path: str, info: dict) -> None:
    """``curl.safetensors``: the model's tensors + metadata (app tag, sizes, image shape, threshold)."""
    import json

    from shared.weights import save_safetensors

    meta = {"app": APP_TAG, "format": "cvsuite-continual-1", "model": json.dumps(vars(model.cfg)),
            "n_x": str(model.n_x), "info": json.dumps(info)}
    save_safetensors(model.state_dict(), path, metadata=meta)


def load_curl(path: str) -> tuple[CurlModel, dict]:
    """Load a ``curl.safetensors``; one clear error for files of other apps or other formats."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    from shared.errors import CvsuiteError
    from shared.weights import load_into, load_state_dict

    file = Path(path)
    if not file.is_file():
        raise CvsuiteError(f"weights not found: {path}")
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception:  # safetensors raises its own error types for non-safetensors bytes
        raise CvsuiteError(f"{path} is not a safetensors file written by 'cvsuite continual train'") from None
    if meta.get("app") != APP_TAG:
        raise CvsuiteError(f"{path} holds weights of another app ({meta.get('app') or meta.get('format') or 'unknown'}),"
                           f" not a 'cvsuite continual' model")
    try:
        cfg = ModelConfig(**json.loads(meta["model"]))
        n_x, info = int(meta["n_x"]), json.loads(meta["info"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CvsuiteError(f"{path}: unreadable continual metadata ({exc})") from None
    model = CurlModel(n_x, cfg)
    load_into(model, load_state_dict(file), path)
    model.eval()
    return model, info
