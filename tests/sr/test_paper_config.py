"""The paper-scale config (DF2K layout, DASR-size network, DASR's x4 degradation) runs: 2 steps on
stand-in photos written in the official DIV2K / Flickr2K folder layout, with the config's own data
paths, network, patch size and degradation (only the batch size, workers and logging made small)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from apps.sr.data import SRTrainDataset, bundled_photo, resolve_hr_dirs, write_image
from apps.sr.degradations import KERNEL_SIZE, random_kernel
from apps.sr.model import load_model
from apps.sr.train import SRConfig, build_dataset
from shared.config import load_config

PAPER = Path(__file__).resolve().parents[2] / "apps" / "sr" / "configs" / "paper_x4_df2k.yaml"


def _stand_in_df2k(root: Path) -> None:
    photo = bundled_photo("astronaut")  # 512², larger than a 192-px patch + its blur margin
    write_image(root / "datasets" / "DIV2K" / "DIV2K_train_HR" / "0001.png", photo[:240, :256])
    write_image(root / "datasets" / "DIV2K" / "DIV2K_train_HR" / "0002.png", photo[200:460, 100:360])
    write_image(root / "datasets" / "Flickr2K" / "Flickr2K_HR" / "000001.png", photo[250:500, 250:500])


def test_paper_config_is_dasr_scale() -> None:
    cfg = load_config(SRConfig, PAPER)
    assert (cfg.model.width, cfg.model.body_blocks, cfg.data.patch_size // cfg.model.scale) == (64, 25, 48)
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.max_steps) == (32, 1e-4, 600_000)
    deg = cfg.data.degradation
    assert cfg.data.kinds == ["blind"] and deg.kernel_list == ["aniso"] and deg.kernel_sizes == [KERNEL_SIZE]
    assert deg.blur_sigma == (0.2, 4.0) and deg.noise_sigma == (0.0, 25.0) and deg.jpeg_prob == 0.0
    assert deg.resize_modes == ["bicubic"] and deg.sinc_prob == 0.0 and deg.gaussian_noise_prob == 1.0


def test_paper_degradation_draws_only_full_size_anisotropic_gaussians() -> None:
    import random

    deg = load_config(SRConfig, PAPER).data.degradation
    random.seed(0)  # random_kernel draws from both generators
    np.random.seed(0)
    for _ in range(20):
        kernel, kind = random_kernel(deg)
        assert kind == "aniso" and kernel.shape == (KERNEL_SIZE, KERNEL_SIZE)
        # a wide kernel reaches the border only if drawn at 21² (a smaller one zero-padded would not);
        # narrow ones (sigma near 0.2) underflow to 0 there in float32, so they cannot show it
        wide, _ = random_kernel(deg, sigma_range=(3.9, 4.0))
        assert wide[0].max() > 0 and wide[:, 0].max() > 0


def test_paper_config_runs_two_steps_on_df2k_layout(run_cli, tmp_path, monkeypatch) -> None:
    _stand_in_df2k(tmp_path)
    monkeypatch.chdir(tmp_path)  # the config's relative dataset paths now point at the stand-ins
    cfg = load_config(SRConfig, PAPER)
    assert [p.name for src in cfg.data.hr for p in resolve_hr_dirs(src)] == ["DIV2K_train_HR", "Flickr2K_HR"]
    dataset = build_dataset(cfg)
    assert isinstance(dataset, SRTrainDataset) and len(dataset.hr) == 3
    sample = dataset[0]
    assert sample["hr"].shape == (3, 192, 192) and sample["lr"].shape == (3, 48, 48)
    code, _, err = run_cli(["sr", "train", "--config", PAPER, "--out", tmp_path / "run", "--steps", "2",
                            "train.batch_size=2", "train.num_workers=0", "train.tensorboard=false",
                            "train.progress=false", "train.log_every=1"])
    assert code == 0, err
    model = load_model(tmp_path / "run" / "sr_model.safetensors", 4)
    assert sum(p.numel() for p in model.parameters()) > 2_500_000
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count('"step"') == 2
