"""The scrl verbs end to end through the CLI (tiny), including the output guard."""
from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from shared.backbones import build_backbone


def test_synth_export_finetune_infer(tmp_path, tiny_coco, tiny_val, run_cli):
    code, out, err = run_cli(["scrl", "synth", "--out", tmp_path / "s", "--images", "3", "--seed", "5", "--size", "64"])
    assert code == 0, err
    data = json.loads((tmp_path / "s" / "annotations.json").read_text())
    assert len(data["images"]) == 3 and (tmp_path / "s" / "images" / "000002.png").is_file()
    # a re-run over its own outputs is fine; a foreign file in the way needs --force
    assert run_cli(["scrl", "synth", "--out", tmp_path / "s", "--images", "3", "--size", "64"])[0] == 0
    (tmp_path / "s" / "images" / "000000.png").write_bytes(b"user data")
    code, _, err = run_cli(["scrl", "synth", "--out", tmp_path / "s", "--images", "3", "--size", "64"])
    assert code == 2 and "--force" in err

    torch.manual_seed(0)
    backbone = build_backbone("resnet18_slim", width=8)
    weights = tmp_path / "enc.safetensors"
    save_file({f"backbone.{k}": v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    code, out, err = run_cli(["scrl", "export", "--weights", weights, "--format", "torchvision", "--out", tmp_path / "bb.pth"])
    assert code == 0, err
    exported = torch.load(tmp_path / "bb.pth", weights_only=True)
    torch.testing.assert_close(exported["layer4.1.conv2.weight"], backbone.layer4[1].conv2.weight)
    code, _, err = run_cli(["scrl", "export", "--weights", weights, "--format", "detectron2", "--out", tmp_path / "bb.pkl"])
    assert code == 1 and "width 8" in err and len(err.strip().splitlines()) == 1

    run = tmp_path / "ft"
    code, out, err = run_cli(["scrl", "finetune", "--data", tiny_coco, "--val", tiny_val, "--weights", weights,
                              "--out", run, "--steps", "2", "backbone.width=8", "train.batch_size=2",
                              "detector.min_size=64", "detector.max_size=64", "detector.fpn_channels=16",
                              "detector.representation=32", "train.progress=false", "train.tensorboard=false"])
    assert code == 0, err
    assert "box AP" in out
    code, out, err = run_cli(["scrl", "eval", "--weights", run / "detector.safetensors", "--data", tiny_val,
                              "--json", tmp_path / "m.json"])
    assert code == 0, err
    assert set(json.loads((tmp_path / "m.json").read_text())) >= {"AP", "AP50", "AP75"}
    code, out, err = run_cli(["scrl", "infer", tiny_val.parent / "images", "--weights", run / "detector.safetensors",
                              "--out", tmp_path / "inf", "--score", "0.0"])
    assert code == 0, err
    results = json.loads((tmp_path / "inf" / "detections.json").read_text())
    images = json.loads((tmp_path / "inf" / "images.json").read_text())
    assert len(images) == 4 and len(list((tmp_path / "inf").glob("*_det.png"))) == 4
    assert all(set(r) == {"image_id", "category_id", "category_name", "bbox", "score"} for r in results)
    names = {1: "disc", 2: "square", 3: "triangle", 4: "ring"}
    assert results and all(names[r["category_id"]] == r["category_name"] for r in results)
    assert "classes: disc, square, triangle, ring" in out and "synthetic" not in out  # own weights: no note


def test_infer_with_the_shipped_detector_says_what_it_knows(tmp_path, tiny_val, run_cli):
    code, out, err = run_cli(["scrl", "infer", tiny_val.parent / "images" / "000000.png", "--out", tmp_path / "inf"])
    assert code == 0, err
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "synthetic" in notes[0] and "disc, square, triangle, ring" in notes[0]


def test_labels_stay_legible_at_any_image_size():
    import numpy as np

    from apps.scrl.infer import draw_detections

    for height, width in ((64, 64), (480, 640), (3000, 4000)):
        canvas = draw_detections(np.zeros((height, width, 3), np.uint8), [[width * 0.3, height * 0.3, width * 0.6,
                                 height * 0.6]], ["triangle"], [0.85], [(0, 130, 200)])
        tag = np.all(canvas == (0, 130, 200), axis=-1)
        rows = np.flatnonzero(tag[: int(height * 0.3)].any(axis=1))  # the tag sits above the box
        assert len(rows) >= max(11, 0.02 * min(height, width)), (height, width, len(rows))
        text = canvas[rows.min():rows.max() + 1, : width] == 255  # white text on the dark tag
        assert text.any(), (height, width)
