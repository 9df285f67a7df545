"""Stage 2 (``init_from``): the network starts from an earlier run's weights; the stage-2 configs
continue the photos recipe with the same network and photos, and both arms get the same stage."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from apps.sr.data import bundled_photo, write_image
from apps.sr.train import SRConfig, run_training
from shared.config import load_config
from shared.errors import CvsuiteError
from shared.weights import load_state_dict

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "sr" / "configs"


def _cfg(hr: Path, out: Path, width: int = 8) -> SRConfig:
    cfg = SRConfig()
    cfg.model.scale, cfg.model.width, cfg.model.invariant = 2, width, 6
    cfg.model.enc_blocks = cfg.model.body_blocks = cfg.model.refine_blocks = 1
    cfg.data.hr, cfg.data.patch_size, cfg.data.length = [str(hr)], 32, 8
    cfg.loss.contrastive = False
    cfg.train.out_dir, cfg.train.max_steps, cfg.train.batch_size = str(out), 1, 2
    cfg.train.progress, cfg.train.tensorboard, cfg.train.lr = False, False, 1e-12
    return cfg


@pytest.fixture()
def hr(tmp_path: Path) -> Path:
    write_image(tmp_path / "hr" / "cat.png", bundled_photo("chelsea")[:80, :80])
    return tmp_path / "hr"


def test_init_from_starts_from_the_file(hr, tmp_path, tiny_weights):
    start = load_state_dict(tiny_weights)
    cfg = _cfg(hr, tmp_path / "stage2")
    cfg.init_from = str(tiny_weights)
    run_training(cfg)  # one step at lr 1e-12: the weights stay where init_from put them
    after = load_state_dict(tmp_path / "stage2" / "sr_model.safetensors")
    assert after.keys() == start.keys()
    for key in start:
        assert torch.allclose(after[key], start[key], atol=1e-6), key
    run_training(_cfg(hr, tmp_path / "fresh"))  # without init_from: the seeded initialisation, far from the file
    fresh = load_state_dict(tmp_path / "fresh" / "sr_model.safetensors")
    assert any((fresh[k] - start[k]).abs().max() > 1e-2 for k in start)


def test_init_from_with_another_network_is_refused(hr, tmp_path, tiny_weights):
    cfg = _cfg(hr, tmp_path / "stage2", width=12)
    cfg.init_from = str(tiny_weights)
    with pytest.raises(CvsuiteError, match="shape mismatch"):
        run_training(cfg)


@pytest.mark.parametrize("arm", ["crl", "ablation"])
def test_stage2_configs_continue_the_photos_recipe(arm):
    stage1 = load_config(SRConfig, CONFIGS / f"{arm}_x4_photos.yaml")
    stage2 = load_config(SRConfig, CONFIGS / f"{arm}_x4_stage2.yaml")
    assert stage2.init_from == f"runs/sr_{arm}_x4_photos_s0/sr_model.safetensors"
    assert stage2.model == stage1.model and stage2.data.hr == stage1.data.hr
    assert stage2.data.kinds == stage1.data.kinds and stage2.data.kind_probs == stage1.data.kind_probs
    assert not stage2.loss.contrastive  # stage 1's contrastive weight has decayed to 0: L1 finishes, both arms


@pytest.mark.parametrize("stage", ["stage2", "stage3", "stage4", "stage4_control"])
def test_later_stages_are_the_same_for_both_arms(stage):
    crl = load_config(SRConfig, CONFIGS / f"crl_x4_{stage}.yaml")
    ablation = load_config(SRConfig, CONFIGS / f"ablation_x4_{stage}.yaml")
    crl.init_from = ablation.init_from = ""
    crl.train.out_dir = ablation.train.out_dir = ""
    assert crl == ablation


@pytest.mark.parametrize("arm", ["crl", "ablation"])
def test_stage4_arms_differ_only_in_the_new_photos(arm):
    stage3 = load_config(SRConfig, CONFIGS / f"{arm}_x4_stage3.yaml")
    control = load_config(SRConfig, CONFIGS / f"{arm}_x4_stage4_control.yaml")
    more = load_config(SRConfig, CONFIGS / f"{arm}_x4_stage4.yaml")
    assert control.init_from == more.init_from == f"runs/sr_{arm}_x4_stage3_mild35_s0/sr_model.safetensors"
    assert control.data.hr == stage3.data.hr and control.loss == stage3.loss and control.model == stage3.model
    assert more.data.hr[:len(control.data.hr)] == control.data.hr and len(more.data.hr) == 40
    more.data.hr, more.train.out_dir = control.data.hr, control.train.out_dir
    assert more == control


def test_init_grow_adds_identity_body_blocks(hr, tmp_path, tiny_weights, tiny_model):
    """A 1-body-block file grown to 3 blocks: same output before training, new blocks x + 0, and the
    new blocks train (their zero conv2 gets a gradient)."""
    from apps.sr.model import build_model
    from apps.sr.train import grow_body_state, model_kwargs

    cfg = _cfg(hr, tmp_path / "grown")
    cfg.model.body_blocks, cfg.init_from, cfg.init_grow = 3, str(tiny_weights), True
    torch.manual_seed(0)
    net = build_model("crlsr", **model_kwargs(cfg.model))
    state = grow_body_state(load_state_dict(tiny_weights), net, "tiny")
    net.load_state_dict(state)
    assert torch.count_nonzero(state["body.0.2.conv2.weight"]) == 0 and torch.count_nonzero(state["body.0.1.conv1.weight"]) > 0
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), tiny_model.eval()(x))
    net.train()
    net(x).mean().backward()
    assert net.body[0][2].conv2.weight.grad.abs().sum() > 0
    run_training(cfg)  # the whole stage runs with the grown network and writes a 3-block file
    assert "body.0.2.conv2.weight" in load_state_dict(tmp_path / "grown" / "sr_model.safetensors")


def test_init_grow_refuses_another_difference(hr, tmp_path, tiny_weights):
    cfg = _cfg(hr, tmp_path / "grown")
    cfg.model.refine_blocks, cfg.init_from, cfg.init_grow = 2, str(tiny_weights), True
    with pytest.raises(CvsuiteError, match="init_grow needs a file whose network differs only by fewer body blocks"):
        run_training(cfg)
