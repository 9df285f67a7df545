"""No colour shift: on flat colour patches the output's mean per channel equals the input's within
0.5 levels, for the six permutations of each colour — with the shipped weights as users run them
(``sr infer`` / ``sr eval``: colour lock on), and exactly for any network with the lock."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from apps.sr.infer import upscale_rgb
from apps.sr.model import COLOUR_LOCK_SIGMA, lock_low_frequencies, load_model
from shared.weights import shipped_weight

# saturated, dark, bright and mid colours (the earlier model's failures were saturated ones)
COLOURS = [(240, 200, 20), (10, 128, 250), (200, 120, 40), (30, 60, 140)]
PERMUTED = sorted({tuple(np.asarray(c)[list(p)]) for c in COLOURS for p in itertools.permutations(range(3))})


def channel_mean_error(model: torch.nn.Module, colour: tuple[int, int, int], size: int = 32) -> np.ndarray:
    lr = np.broadcast_to(np.asarray(colour, np.float32) / 255.0, (size, size, 3)).copy()
    out = upscale_rgb(model, lr, 4, tile=0)
    return out.reshape(-1, 3).astype(np.float64).mean(axis=0) - np.asarray(colour, np.float64)


@pytest.mark.parametrize("arm", ["sr_crl_x4", "sr_ablation_x4"])
def test_shipped_weights_keep_flat_colours(arm: str) -> None:
    torch.set_num_threads(1)
    model = load_model(shipped_weight(arm), 4)
    assert model.colour_lock == COLOUR_LOCK_SIGMA  # what sr infer / sr eval run
    assert len(PERMUTED) == 24  # 4 colours x 6 permutations
    errors = np.array([channel_mean_error(model, c) for c in PERMUTED])
    worst = np.abs(errors).max()
    assert worst <= 0.5, f"{arm}: mean channel shift {worst:.2f} levels at {PERMUTED[int(np.abs(errors).max(1).argmax())]}"


def test_lock_keeps_flat_patch_means_for_a_random_network(tiny_model) -> None:
    """A random network adds offsets of many levels; with the lock the flat output's channel means
    (inside, away from the zero-padded image border) equal the input's."""
    colour = torch.tensor([0.9, 0.3, 0.6]).view(1, 3, 1, 1)
    x = colour.expand(1, 3, 64, 64).contiguous()
    inner = slice(48, 80)  # HR px (x2) beyond the network's and the lock's radius from every border
    tiny_model.colour_lock = 0.0
    with torch.no_grad():
        free = tiny_model(x)
        tiny_model.colour_lock = 4.0
        locked = tiny_model(x)
    tiny_model.colour_lock = 0.0

    def shift(y: torch.Tensor) -> torch.Tensor:
        return 255 * (y[..., inner, inner].mean(dim=(2, 3)) - colour.view(1, 3)).abs().max()

    assert shift(free) > 5  # the unlocked random network does shift colour
    assert shift(locked) < 0.05


def test_lock_is_the_explicit_formula() -> None:
    """``sr − G*(sr − base)`` against a direct 2-D Gaussian sum (replicated borders)."""
    torch.manual_seed(0)
    sr, base = torch.rand(1, 3, 20, 24), torch.rand(1, 3, 20, 24)
    sigma = 1.5
    radius = 5
    t = np.arange(-radius, radius + 1)
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    diff = (sr - base)[0].numpy()
    padded = np.pad(diff, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    blurred = np.zeros_like(diff)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            blurred += g[dy + radius, dx + radius] * padded[:, radius + dy:radius + dy + 20, radius + dx:radius + dx + 24]
    expected = sr[0].numpy() - blurred
    np.testing.assert_allclose(lock_low_frequencies(sr, base, sigma)[0].numpy(), expected, atol=1e-5)
