"""The detectron2 fine-tuning engine: export our backbone, register the COCO sets, train with
detectron2's ``DefaultTrainer`` and evaluate with its ``COCOEvaluator`` (pycocotools underneath).

This is what a detectron2 user does with ``tools/train_net.py`` and the exported config; here it
runs in-process so ``cvsuite scrl finetune --engine detectron2`` and the tests exercise it.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from shared.errors import CvsuiteError
from shared.guard import write_atomic

from .data import DetectionSet, default_image_root, open_detection_set
from .export import detectron2_config, torchvision_state, write_detectron2
from .model import BackboneConfig


def _coco_files(dataset: DetectionSet, images: str, out_dir: Path, name: str, claim) -> tuple[str, str]:
    """(json, image root) for ``register_coco_instances``; a VOC set is written as COCO json first."""
    if dataset.coco_json is not None:
        root = Path(images) if images else default_image_root(dataset.coco_json)
        return str(dataset.coco_json), str(root)
    path = claim(out_dir / f"{name}_coco.json")
    write_atomic(path, json.dumps(dataset.to_coco()))  # absolute file names: the root is ignored
    return str(path), "/"


def build_d2_config(cfg: Any, num_classes: int, out_dir: Path, claim) -> tuple[Any, BackboneConfig]:
    """Export ``cfg.weights`` (or start from random) and set data-independent solver/input options."""
    if cfg.weights:
        state, arch = torchvision_state(cfg.weights)
        pkl, yaml_path = claim(out_dir / "backbone.pkl"), claim(out_dir / "backbone.yaml")
        write_detectron2(state, arch, Path(pkl), Path(yaml_path), num_classes, "BN", Path(cfg.weights).name)
        d2cfg = detectron2_config(str(Path(pkl).resolve()), arch, num_classes, "BN")
    else:
        arch = cfg.backbone
        d2cfg = detectron2_config("", arch, num_classes, "BN")
    det, train = cfg.detector, cfg.train
    d2cfg.MODEL.DEVICE = "cuda" if train.device.startswith("cuda") or train.device == "auto" and _cuda() else "cpu"
    d2cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[s] for s in (det.anchor_sizes or [8, 16, 32, 64, 128])]
    d2cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = det.rpn_batch
    d2cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = det.box_batch
    d2cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = det.score_thresh
    d2cfg.TEST.DETECTIONS_PER_IMAGE = det.detections
    d2cfg.INPUT.MIN_SIZE_TRAIN = (det.min_size,)
    d2cfg.INPUT.MAX_SIZE_TRAIN = det.max_size
    d2cfg.INPUT.MIN_SIZE_TEST = det.min_size
    d2cfg.INPUT.MAX_SIZE_TEST = det.max_size
    d2cfg.INPUT.RANDOM_FLIP = "horizontal" if cfg.flip else "none"
    d2cfg.SOLVER.IMS_PER_BATCH = train.batch_size
    d2cfg.SOLVER.BASE_LR = train.lr
    d2cfg.SOLVER.MOMENTUM = train.momentum
    d2cfg.SOLVER.WEIGHT_DECAY = train.weight_decay
    d2cfg.SOLVER.MAX_ITER = train.max_steps
    d2cfg.SOLVER.STEPS = (int(train.max_steps * 0.75),)
    d2cfg.SOLVER.WARMUP_ITERS = min(train.warmup_steps, train.max_steps)
    d2cfg.SOLVER.CHECKPOINT_PERIOD = 10 ** 9  # only model_final.pth
    d2cfg.SOLVER.CLIP_GRADIENTS.ENABLED = train.grad_clip > 0
    d2cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
    d2cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = train.grad_clip or 1.0
    d2cfg.DATALOADER.NUM_WORKERS = train.num_workers
    d2cfg.SEED = train.seed
    d2cfg.TEST.EVAL_PERIOD = 0
    return d2cfg, arch


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_d2_finetune(cfg: Any, claim=None) -> dict[str, Any]:
    """Train ``cfg.train.max_steps`` iterations with detectron2 and evaluate ``cfg.val`` (COCOEvaluator)."""
    try:
        from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
        from detectron2.data.datasets import register_coco_instances
        from detectron2.engine import DefaultTrainer
        from detectron2.evaluation import COCOEvaluator, inference_on_dataset
    except ImportError:
        raise CvsuiteError("detectron2 is not installed (run `make install`, which runs "
                           "tools/install_detectron2.py)") from None
    claim = claim or (lambda p: p)
    out_dir = Path(cfg.train.out_dir)
    train_set = open_detection_set(cfg.data, cfg.images or None)
    val_set = open_detection_set(cfg.val, cfg.val_images or None) if cfg.val else None
    d2cfg, _ = build_d2_config(cfg, len(train_set.class_names), out_dir, claim)
    tag = uuid.uuid4().hex[:8]
    names = {"train": f"cvsuite_train_{tag}", "val": f"cvsuite_val_{tag}"}
    register_coco_instances(names["train"], {}, *_coco_files(train_set, cfg.images, out_dir, "train", claim))
    if val_set is not None:
        register_coco_instances(names["val"], {}, *_coco_files(val_set, cfg.val_images, out_dir, "val", claim))
    d2cfg.DATASETS.TRAIN = (names["train"],)
    d2cfg.DATASETS.TEST = (names["val"],) if val_set is not None else ()
    d2cfg.OUTPUT_DIR = str(out_dir / "detectron2")
    Path(d2cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    claim(out_dir / "config.yaml")
    write_atomic(out_dir / "config.yaml", d2cfg.dump())
    try:
        trainer = DefaultTrainer(d2cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
        summary: dict[str, Any] = {"engine": "detectron2", "iterations": cfg.train.max_steps,
                                   "output_dir": d2cfg.OUTPUT_DIR}
        if val_set is not None:
            evaluator = COCOEvaluator(names["val"], output_dir=str(out_dir / "detectron2" / "eval"))
            loader = build_detection_test_loader(d2cfg, names["val"])
            results = inference_on_dataset(trainer.model, loader, evaluator)
            box = results.get("bbox", {})
            # detectron2 reports percentages, NaN when nothing was detected
            metrics = {k: (float(box.get(k, 0.0)) / 100.0 if box.get(k, 0.0) == box.get(k, 0.0) else 0.0)
                       for k in ("AP", "AP50", "AP75")}
            claim(out_dir / "metrics.json")
            write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
            summary["eval"] = metrics
    finally:
        for name in names.values():
            if name in DatasetCatalog.list():
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
    return summary
