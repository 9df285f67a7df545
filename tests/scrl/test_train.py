"""SCRL / BYOL pretraining and torchvision fine-tuning through the shared engine (tiny runs)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from apps.scrl.losses import box_byol_loss
from apps.scrl.model import BackboneConfig, RegionEncoder, build_resnet
from apps.scrl.train import FinetuneConfig, PretrainConfig, RegionBYOLTask, run_finetune, run_pretraining
from apps.scrl.views import ViewConfig
from shared.engine import TrainConfig
from shared.weights import load_backbone, load_state_dict


def _quiet(out_dir, steps, batch, **kw) -> TrainConfig:
    return TrainConfig(out_dir=str(out_dir), max_steps=steps, batch_size=batch, progress=False, tensorboard=False,
                       log_every=1, ckpt_every=steps, **kw)


def test_box_loss_matches_explicit_loop():
    torch.manual_seed(0)
    p0, z1, p1, z0 = (torch.randn(7, 5) for _ in range(4))
    expected = 0.0
    for k in range(7):
        expected += 0.5 * ((2 - 2 * F.cosine_similarity(p0[k], z1[k], dim=0))
                           + (2 - 2 * F.cosine_similarity(p1[k], z0[k], dim=0))) / 7
    torch.testing.assert_close(box_byol_loss(p0, z1, p1, z0), expected)


def test_region_encoder_pools_each_box_from_the_last_feature_map():
    torch.manual_seed(0)
    encoder = RegionEncoder(build_resnet(BackboneConfig(width=8)), 16, 8, roi_aligned=True, roi_sampling_ratio=2).eval()
    images = torch.randn(2, 3, 64, 64)
    fmap = encoder.backbone(images)  # (2, 64, 2, 2): stride 32
    # a whole-view box samples the 2x2 map at the four cell centres (aligned RoIAlign, 2x2 samples)
    whole = [torch.tensor([[0.0, 0.0, 64.0, 64.0]]), torch.tensor([[0.0, 0.0, 64.0, 64.0], [0.0, 0.0, 64.0, 64.0]])]
    pooled = encoder.pooled(images, whole)
    assert pooled.shape == (3, fmap.shape[1])
    torch.testing.assert_close(pooled[0], fmap[0].mean(dim=(1, 2)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled[2], fmap[1].mean(dim=(1, 2)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(encoder.pooled(images, None), fmap.mean(dim=(2, 3)))


def test_scrl_and_byol_pretrain_and_the_backbone_loads(tiny_coco, tmp_path):
    for method in ("scrl", "byol"):
        cfg = PretrainConfig(data=str(tiny_coco), method=method, max_side=64,
                             backbone=BackboneConfig(width=8), views=ViewConfig(size=64, min_box=8),
                             proj_hidden=32, proj_dim=16, pred_hidden=32,
                             train=_quiet(tmp_path / method, 2, 4, lr=1e-3))
        summary = run_pretraining(cfg)
        assert summary["step"] == 2 and torch.isfinite(torch.tensor(summary["metrics"]["loss"]))
        if method == "scrl":
            assert summary["metrics"]["pairs"] > 4  # several boxes per image
        else:
            assert summary["metrics"]["pairs"] == 4  # one "box" (the view) per image
        tensors = load_state_dict(summary["encoder"])
        assert {"backbone.conv1.weight", "projector.0.weight", "predictor.0.weight"} <= set(tensors)
        model, report = load_backbone(summary["encoder"], arch="resnet18_slim", strict=True, width=8)
        torch.testing.assert_close(model.conv1.weight, tensors["backbone.conv1.weight"])


def test_ema_target_moves_slowly():
    cfg = PretrainConfig(backbone=BackboneConfig(width=8), proj_hidden=16, proj_dim=8, pred_hidden=16,
                         base_momentum=0.9, train=TrainConfig(max_steps=10))
    task = RegionBYOLTask(cfg)
    before = task.target.projector[0].weight.clone()
    with torch.no_grad():
        task.online.projector[0].weight.add_(1.0)
    task.on_step_end(0, {})
    m = 1 - (1 - 0.9) * (torch.cos(torch.tensor(torch.pi * 0.1)) + 1) / 2
    torch.testing.assert_close(task.target.projector[0].weight, m * before + (1 - m) * task.online.projector[0].weight)


def test_finetune_writes_a_detector_and_coco_ap(tiny_coco, tiny_val, tmp_path):
    from apps.scrl.model import DetectorConfig

    cfg = FinetuneConfig(data=str(tiny_coco), val=str(tiny_val), backbone=BackboneConfig(width=8),
                         detector=DetectorConfig(min_size=64, max_size=64, fpn_channels=16, representation=32,
                                                 rpn_batch=32, box_batch=32),
                         train=_quiet(tmp_path / "ft", 2, 2, optimizer="sgd", lr=0.01))
    summary = run_finetune(cfg)
    assert set(summary["eval"]) >= {"AP", "AP50", "AP75"}
    assert (tmp_path / "ft" / "detector.safetensors").is_file() and (tmp_path / "ft" / "metrics.json").is_file()


def test_pair_dataset_streams_from_disk(tiny_coco, monkeypatch):
    """Construction decodes nothing and holds only the paths; each sample is read when it is drawn."""
    import apps.scrl.train as train_module
    from apps.scrl.data import unlabelled_images
    from apps.scrl.train import PairDataset

    files = unlabelled_images(tiny_coco) * 500  # 6000 entries, the same 12 files
    calls = []
    real = train_module.load_rgb
    monkeypatch.setattr(train_module, "load_rgb", lambda path: calls.append(path) or real(path))
    dataset = PairDataset(files, ViewConfig(size=32, min_box=4), max_side=48)
    assert calls == [] and len(dataset) == 6000
    assert dataset.paths.nbytes < 200 * len(files)  # bytes per image: the path only, no pixels
    sample = dataset[5999]
    assert calls == [files[5999]] and sample["views"].shape == (2, 3, 32, 32)
    assert max(dataset.load(0).shape[1:]) <= 48
