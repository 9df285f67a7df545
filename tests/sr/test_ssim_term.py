"""The optional SSIM term of the SR objective (``loss.ssim_weight``, stage 3): it is one minus the SSIM the
benchmark reports (basicsr's ``calculate_ssim`` on BT.601 Y), it is absent by default, and the stage-3 configs
continue stage 2 identically for both arms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from apps.sr.data import bundled_photo
from apps.sr.evaluate import ssim_y
from apps.sr.losses import CRLObjective, luma
from apps.sr.train import SRConfig
from shared.config import load_config
from shared.errors import CvsuiteError

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "sr" / "configs"


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float64) / 255).permute(2, 0, 1)[None]


def test_ssim_term_is_one_minus_the_benchmark_ssim_on_a_real_photo():
    hr = bundled_photo("chelsea")[:96, :120]
    rng = np.random.default_rng(0)
    out = np.clip(hr.astype(np.float64) + rng.normal(0, 12, hr.shape), 0, 255).round().astype(np.uint8)
    objective = CRLObjective(scale=4, width=8, invariant=6, contrastive=False, ssim_weight=0.3).double()
    terms = objective({"sr": _tensor(out)}, _tensor(hr))
    want = ssim_y(out, hr, crop_border=0)
    assert abs((1 - terms["ssim"].item()) - want) < 1e-6  # basicsr converts to Y in float32
    l1 = F.l1_loss(_tensor(out), _tensor(hr)).item()
    assert abs(terms["loss"].item() - (l1 + 0.3 * (1 - want))) < 1e-6


def test_luma_is_bt601_y():
    rgb = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64).T.reshape(1, 3, 1, 3)
    y = luma(rgb).flatten() * 255
    assert torch.allclose(y, torch.tensor([16.0, 235.0, 16 + 65.481], dtype=torch.float64))


def test_no_ssim_term_by_default():
    objective = CRLObjective(scale=4, width=8, invariant=6, contrastive=False)
    assert not hasattr(objective, "ssim") and SRConfig().loss.ssim_weight == 0.0
    sr, hr = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    terms = objective({"sr": sr}, hr)
    assert "ssim" not in terms and torch.equal(terms["loss"], F.l1_loss(sr, hr))


def test_negative_ssim_weight_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("loss: {ssim_weight: -0.1}\n")
    with pytest.raises(CvsuiteError, match="ssim_weight"):
        load_config(SRConfig, path)


@pytest.mark.parametrize("arm", ["crl", "ablation"])
def test_stage3_configs_continue_stage2(arm):
    stage2 = load_config(SRConfig, CONFIGS / f"{arm}_x4_stage2.yaml")
    stage3 = load_config(SRConfig, CONFIGS / f"{arm}_x4_stage3.yaml")
    assert stage3.init_from == f"runs/sr_{arm}_x4_stage2_s0/sr_model.safetensors"
    assert stage3.model == stage2.model
    # the shipped stage 3: stage 2's photos and patches, the mix moved towards mild, L1 only
    assert stage3.data.hr == stage2.data.hr and stage3.data.patch_size == stage2.data.patch_size
    assert stage3.data.kinds == stage2.data.kinds
    assert list(stage3.data.kind_probs) == [0.45, 0.35, 0.10, 0.10]
    assert not stage3.loss.contrastive and stage3.loss.ssim_weight == 0
