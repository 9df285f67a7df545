"""Bad input for ``cvsuite scrl``: malformed COCO sets, empty image folders, wrong weights, bad images."""
from __future__ import annotations

import json
from pathlib import Path

from .harness import BadCase, garbage, good_image, zero_byte


def coco_set(tmp: Path, bbox=(4.0, 4.0, 10.0, 10.0), image_id: int = 1, category_id: int = 1,
             with_image: bool = True) -> Path:
    """A one-image COCO set under tmp/in/coco (64x48 image) with one annotation as given."""
    root = tmp / "in" / "coco"
    if with_image:
        good_image(root / "images" / "a.png", size=(48, 64))
    else:
        (root / "images").mkdir(parents=True, exist_ok=True)
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
            "annotations": [{"id": 7, "image_id": image_id, "category_id": category_id, "bbox": list(bbox),
                             "area": 10.0, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "disc"}]}
    path = root / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def voc_set(tmp: Path, bndbox: str) -> Path:
    """A one-image VOC folder under tmp/in/voc whose single object has the given <bndbox> body."""
    root = tmp / "in" / "voc"
    good_image(root / "JPEGImages" / "a.jpg", size=(48, 64))
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height><depth>3</depth></size>"
        f"<object><name>cat</name><difficult>0</difficult><bndbox>{bndbox}</bndbox></object></annotation>")
    return root


def results_file(tmp: Path, image_id: int = 1, bbox=(4.0, 4.0, 10.0, 10.0)) -> Path:
    """A COCO results json with one detection."""
    path = tmp / "in" / "res.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"image_id": image_id, "category_id": 1, "bbox": list(bbox), "score": 0.5}]))
    return path


def finetune(tmp: Path, data: Path) -> list:
    return ["scrl", "finetune", "--data", data, "--out", tmp / "out" / "run", "--steps", "1"]


def other_architecture(path: Path) -> Path:
    """A safetensors file of a small CNN (not a ResNet)."""
    from safetensors.torch import save_file

    from shared.backbones import build_backbone

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"backbone.{k}": v.contiguous() for k, v in build_backbone("small_cnn", width=8).state_dict().items()},
              str(path))
    return path


CASES = [
    BadCase("scrl-coco-bbox-outside", lambda t: finetune(t, coco_set(t, bbox=(50.0, 4.0, 30.0, 10.0))),
            exit_code=1, match="outside"),
    BadCase("scrl-coco-negative-size", lambda t: finetune(t, coco_set(t, bbox=(4.0, 4.0, -3.0, 10.0))),
            exit_code=1, match="non-positive"),
    BadCase("scrl-coco-missing-image-id", lambda t: finetune(t, coco_set(t, image_id=99)),
            exit_code=1, match="image_id 99"),
    BadCase("scrl-coco-unknown-category", lambda t: finetune(t, coco_set(t, category_id=5)),
            exit_code=1, match="category_id 5"),
    BadCase("scrl-coco-image-file-missing", lambda t: finetune(t, coco_set(t, with_image=False)),
            exit_code=1, match="a.png"),
    BadCase("scrl-coco-garbage-json", lambda t: finetune(t, garbage(t / "in" / "annotations.json")),
            exit_code=1, match="annotations.json"),
    BadCase("scrl-pretrain-empty-folder",
            lambda t: ["scrl", "pretrain", "--data", _empty(t / "in" / "empty"), "--out", t / "out" / "p"],
            exit_code=1, match="no images"),
    BadCase("scrl-infer-empty-folder",
            lambda t: ["scrl", "infer", _empty(t / "in" / "empty"), "--weights", t / "in" / "none.safetensors",
                       "--out", t / "out"], exit_code=1, match="no images"),
    BadCase("scrl-infer-not-a-detector",
            lambda t: ["scrl", "infer", good_image(t / "in" / "a.png"), "--weights",
                       other_architecture(t / "in" / "w.safetensors"), "--out", t / "out"],
            exit_code=1, match="w.safetensors"),
    BadCase("scrl-export-other-architecture",
            lambda t: ["scrl", "export", "--weights", other_architecture(t / "in" / "w.safetensors"),
                       "--format", "detectron2", "--out", t / "out" / "x.pkl"], exit_code=1, match="not a ResNet"),
    BadCase("scrl-export-zero-byte",
            lambda t: ["scrl", "export", "--weights", zero_byte(t / "in" / "w.pth"), "--format", "torchvision",
                       "--out", t / "out" / "x.pth"], exit_code=1, match="w.pth"),
    BadCase("scrl-export-onto-input",
            lambda t: ["scrl", "export", "--weights", other_architecture(t / "in" / "w.safetensors"),
                       "--format", "torchvision", "--out", t / "in" / "w.safetensors"], exit_code=2, match="input"),
    BadCase("scrl-coco-bbox-three-numbers", lambda t: finetune(t, coco_set(t, bbox=(4.0, 4.0, 10.0))),
            exit_code=1, match="annotation 7"),
    BadCase("scrl-d2-finetune-garbage-json",
            lambda t: finetune(t, garbage(t / "in" / "annotations.json")) + ["--engine", "detectron2"],
            exit_code=1, match="annotations.json"),
    BadCase("scrl-d2-finetune-bbox-outside",
            lambda t: finetune(t, coco_set(t, bbox=(50.0, 4.0, 30.0, 10.0))) + ["--engine", "detectron2"],
            exit_code=1, match="outside"),
    BadCase("scrl-voc-nan-box", lambda t: finetune(t, voc_set(t, "<xmin>nan</xmin><ymin>2</ymin><xmax>9</xmax>"
                                                               "<ymax>9</ymax>")), exit_code=1, match="non-finite"),
    BadCase("scrl-export-d2-not-pkl",
            lambda t: ["scrl", "export", "--weights", other_architecture(t / "in" / "w.safetensors"),
                       "--format", "detectron2", "--out", t / "out" / "x.pth"], exit_code=2, match=".pkl"),
    BadCase("scrl-export-d2-yaml-name",
            lambda t: ["scrl", "export", "--weights", other_architecture(t / "in" / "w.safetensors"),
                       "--format", "detectron2", "--out", t / "out" / "x.yaml"], exit_code=2, match=".pkl"),
    BadCase("scrl-eval-results-garbage",
            lambda t: ["scrl", "eval", "--results", garbage(t / "in" / "res.json"), "--data", coco_set(t)],
            exit_code=1, match="res.json"),
    BadCase("scrl-eval-results-unknown-image",
            lambda t: ["scrl", "eval", "--results", results_file(t, image_id=5), "--data", coco_set(t)],
            exit_code=1, match="image_id 5"),
    BadCase("scrl-eval-results-nan-box",
            lambda t: ["scrl", "eval", "--results", results_file(t, bbox=[1, 1, float("nan"), 3]), "--data",
                       coco_set(t)], exit_code=1, match="detection 0"),
    BadCase("scrl-eval-no-source", lambda t: ["scrl", "eval", "--data", coco_set(t)], exit_code=2,
            match="--weights"),
    BadCase("scrl-synth-zero-images", lambda t: ["scrl", "synth", "--out", t / "out", "--images", "0"],
            exit_code=2, match="--images"),
]


def _empty(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("no images here\n")
    return folder
