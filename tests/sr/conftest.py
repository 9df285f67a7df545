"""A tiny random CRL-SR weight file (with arch metadata) shared by the SR CLI/inference tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from apps.sr.model import build_model, model_metadata
from shared.weights import save_safetensors

TINY = {"scale": 2, "width": 8, "invariant": 6, "enc_blocks": 1, "body_blocks": 1, "refine_blocks": 1}


@pytest.fixture(scope="session")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("crlsr", **TINY).eval()
    with torch.no_grad():  # the heads and FiLM start at zero (= bicubic): make the learned residual visible
        for name, p in model.named_parameters():
            if p.abs().max() == 0:
                p.normal_(0, 0.1)
            else:
                p.mul_(3.0)
    return model


@pytest.fixture(scope="session")
def tiny_weights(tiny_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w") / "tiny_x2.safetensors"
    save_safetensors(tiny_model.state_dict(), path, model_metadata("crlsr", TINY))
    return path
