"""Networks of the two agents: CURL's pixel SAC (DMC) and data-efficient Rainbow with CURL (Atari).

Pixel SAC (MishaLaskin/curl ``encoder.py`` + ``curl_sac.py``): encoder of 4 convs × 32 filters (3×3,
first stride 2, no padding) on ``obs / 255`` → linear 50 → LayerNorm (the official actor and critic
build it with ``output_logits=True``, so no tanh follows); actor and twin-Q critic MLPs of width
``hidden_dim``; the actor's convs are tied to the critic's; orthogonal / delta-orthogonal init.

DER (aravindsrinivas/curl_rainbow ``model.py``, "data-efficient" architecture): convs 32×5×5 s5 and
64×5×5 s5 → 576 features; dueling noisy-linear heads over 51 atoms; CURL head 576 → 256 → LN → ReLU
→ 128 → LN (LayerNorms without affine parameters, as the official code builds them per call).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def weight_init(module: nn.Module) -> None:
    """Orthogonal linear weights, delta-orthogonal conv kernels (only the centre tap), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        module.bias.data.fill_(0.0)
    elif isinstance(module, nn.Conv2d):
        module.weight.data.fill_(0.0)
        module.bias.data.fill_(0.0)
        mid = module.weight.size(2) // 2
        nn.init.orthogonal_(module.weight.data[:, :, mid, mid], nn.init.calculate_gain("relu"))


def conv_out_size(size: int, num_layers: int) -> int:
    size = (size - 3) // 2 + 1
    return size - 2 * (num_layers - 1)


class PixelEncoder(nn.Module):
    """uint8-valued (B, C, H, W) stack → (B, feature_dim) LayerNorm feature (tanh optional)."""

    def __init__(self, channels: int, image_size: int, feature_dim: int = 50, num_layers: int = 4,
                 num_filters: int = 32, tanh: bool = False) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels, num_filters, 3, stride=2)])
        self.convs.extend(nn.Conv2d(num_filters, num_filters, 3, stride=1) for _ in range(num_layers - 1))
        out = conv_out_size(image_size, num_layers)
        if out < 1:
            raise ValueError(f"image size {image_size} is too small for {num_layers} conv layers")
        self.fc = nn.Linear(num_filters * out * out, feature_dim)
        self.ln = nn.LayerNorm(feature_dim)
        self.feature_dim, self.tanh = feature_dim, tanh

    def forward_conv(self, obs: torch.Tensor) -> torch.Tensor:
        h = obs / 255.0
        for conv in self.convs:
            h = torch.relu(conv(h))
        return h.flatten(1)

    def forward(self, obs: torch.Tensor, detach: bool = False) -> torch.Tensor:
        h = self.forward_conv(obs)
        if detach:
            h = h.detach()
        out = self.ln(self.fc(h))
        return torch.tanh(out) if self.tanh else out

    def tie_convs_to(self, source: "PixelEncoder") -> None:
        """Share the conv layers' parameters with ``source`` (the actor uses the critic's convs)."""
        for mine, theirs in zip(self.convs, source.convs):
            mine.weight = theirs.weight
            mine.bias = theirs.bias


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy; ``log_std`` mapped into [log_std_min, log_std_max] by tanh."""

    def __init__(self, encoder: PixelEncoder, action_dim: int, hidden_dim: int, log_std_min: float = -10.0,
                 log_std_max: float = 2.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.trunk = nn.Sequential(nn.Linear(encoder.feature_dim, hidden_dim), nn.ReLU(),
                                   nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                   nn.Linear(hidden_dim, 2 * action_dim))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor, detach_encoder: bool = False, sample: bool = True,
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """(tanh μ, tanh sample, log π of the sample, log σ)."""
        from shared.losses import squashed_gaussian_log_prob

        mu, log_std = self.trunk(self.encoder(obs, detach=detach_encoder)).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        if not sample:
            return torch.tanh(mu), None, None, log_std
        noise = torch.randn_like(mu)
        pi = torch.tanh(mu + noise * log_std.exp())
        return torch.tanh(mu), pi, squashed_gaussian_log_prob(noise, log_std, pi), log_std


class QFunction(nn.Module):
    def __init__(self, feature_dim: int, action_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(feature_dim + action_dim, hidden_dim), nn.ReLU(),
                                   nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))

    def forward(self, feature: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.trunk(torch.cat([feature, action], dim=1))


class Critic(nn.Module):
    """Encoder + twin Q heads."""

    def __init__(self, encoder: PixelEncoder, action_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.Q1 = QFunction(encoder.feature_dim, action_dim, hidden_dim)
        self.Q2 = QFunction(encoder.feature_dim, action_dim, hidden_dim)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_encoder: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.encoder(obs, detach=detach_encoder)
        return self.Q1(feature, action), self.Q2(feature, action)


class SACNetworks(nn.Module):
    """Actor, critic, critic target (its encoder is CURL's momentum key encoder), log α and CURL's W."""

    def __init__(self, channels: int, image_size: int, action_dim: int, hidden_dim: int = 1024,
                 feature_dim: int = 50, num_layers: int = 4, num_filters: int = 32, encoder_tanh: bool = False,
                 init_temperature: float = 0.1, log_std_min: float = -10.0, log_std_max: float = 2.0) -> None:
        super().__init__()
        from shared.losses import CURLLoss

        def encoder() -> PixelEncoder:
            return PixelEncoder(channels, image_size, feature_dim, num_layers, num_filters, tanh=encoder_tanh)

        self.actor = Actor(encoder(), action_dim, hidden_dim, log_std_min, log_std_max)
        self.critic = Critic(encoder(), action_dim, hidden_dim)
        self.critic_target = Critic(encoder(), action_dim, hidden_dim)
        self.actor.apply(weight_init)
        self.critic.apply(weight_init)
        self.critic_target.load_state_dict(self.critic.state_dict())
        for p in self.critic_target.parameters():
            p.requires_grad_(False)
        self.actor.encoder.tie_convs_to(self.critic.encoder)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_temperature)))
        self.curl = CURLLoss(feature_dim)  # W ~ U[0, 1), as the official torch.rand
        self.action_dim = action_dim


class NoisyLinear(nn.Module):
    """Factorised-Gaussian noisy linear layer (Fortunato et al.); noise off in eval mode."""

    def __init__(self, in_features: int, out_features: int, std_init: float = 0.1) -> None:
        super().__init__()
        self.in_features, self.out_features, self.std_init = in_features, out_features, std_init
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.register_buffer("weight_epsilon", torch.zeros(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.register_buffer("bias_epsilon", torch.zeros(out_features))
        bound = 1 / math.sqrt(in_features)
        self.weight_mu.data.uniform_(-bound, bound)
        self.weight_sigma.data.fill_(std_init / math.sqrt(in_features))
        self.bias_mu.data.uniform_(-bound, bound)
        self.bias_sigma.data.fill_(std_init / math.sqrt(out_features))
        self.reset_noise()

    @staticmethod
    def _scaled(size: int) -> torch.Tensor:
        x = torch.randn(size)
        return x.sign() * x.abs().sqrt()

    @torch.no_grad()
    def reset_noise(self) -> None:
        eps_in, eps_out = self._scaled(self.in_features), self._scaled(self.out_features)
        self.weight_epsilon.copy_(torch.outer(eps_out, eps_in))
        self.bias_epsilon.copy_(eps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return F.linear(x, self.weight_mu + self.weight_sigma * self.weight_epsilon,
                            self.bias_mu + self.bias_sigma * self.bias_epsilon)
        return F.linear(x, self.weight_mu, self.bias_mu)


class DERNetwork(nn.Module):
    """Data-efficient Rainbow: (B, 4, 84, 84) → per-action atom probabilities (B, A, atoms) + CURL feature."""

    def __init__(self, channels: int, num_actions: int, atoms: int = 51, hidden: int = 256, noisy_std: float = 0.1,
                 curl_dim: int = 128) -> None:
        super().__init__()
        from shared.losses import CURLLoss

        self.convs = nn.Sequential(nn.Conv2d(channels, 32, 5, stride=5), nn.ReLU(),
                                   nn.Conv2d(32, 64, 5, stride=5), nn.ReLU())
        self.conv_out = 64 * 3 * 3
        self.fc_h_v = NoisyLinear(self.conv_out, hidden, noisy_std)
        self.fc_h_a = NoisyLinear(self.conv_out, hidden, noisy_std)
        self.fc_z_v = NoisyLinear(hidden, atoms, noisy_std)
        self.fc_z_a = NoisyLinear(hidden, num_actions * atoms, noisy_std)
        self.W_h = nn.Parameter(torch.rand(self.conv_out, hidden))
        self.b_h = nn.Parameter(torch.zeros(hidden))
        self.W_c = nn.Parameter(torch.rand(hidden, curl_dim))
        self.b_c = nn.Parameter(torch.zeros(curl_dim))
        self.curl = CURLLoss(curl_dim)
        self.num_actions, self.atoms = num_actions, atoms

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.convs(obs / 255.0).flatten(1)

    def curl_feature(self, h: torch.Tensor) -> torch.Tensor:
        z = F.relu(F.layer_norm(h @ self.W_h + self.b_h, (self.b_h.numel(),)))
        return F.layer_norm(z @ self.W_c + self.b_c, (self.b_c.numel(),))

    def forward(self, obs: torch.Tensor, log: bool = False, with_curl: bool = False,
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = self.features(obs)
        v = self.fc_z_v(F.relu(self.fc_h_v(h))).view(-1, 1, self.atoms)
        a = self.fc_z_a(F.relu(self.fc_h_a(h))).view(-1, self.num_actions, self.atoms)
        q = v + a - a.mean(1, keepdim=True)
        probs = F.log_softmax(q, dim=2) if log else F.softmax(q, dim=2)
        return (probs, self.curl_feature(h)) if with_curl else probs

    def reset_noise(self) -> None:
        for module in (self.fc_h_v, self.fc_h_a, self.fc_z_v, self.fc_z_a):
            module.reset_noise()
