"""COCO / VOC readers read back exactly what was written, in the official layouts."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from apps.scrl.data import DetectionDataset, read_coco, read_voc, unlabelled_images
from apps.scrl.synth import CATEGORIES
from shared.errors import CvsuiteError


def test_synth_is_valid_coco_and_reads_back(tiny_coco):
    data = json.loads(tiny_coco.read_text())
    coco = COCO(str(tiny_coco))  # the official API accepts it
    assert len(coco.getImgIds()) == 12 and [c["name"] for c in data["categories"]] == list(CATEGORIES)
    dataset = read_coco(tiny_coco)
    for record in dataset.records:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[record.image_id]))
        expected = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                             for a in anns]).reshape(-1, 4)
        np.testing.assert_allclose(record.boxes, expected)
        assert [dataset.category_ids[label - 1] for label in record.labels] == [a["category_id"] for a in anns]
        assert all(0 < a["area"] <= a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0 for a in anns)
    image, target = DetectionDataset(dataset, flip=False)[0]
    assert image.shape == (3, 64, 64) and target["boxes"].shape[1] == 4


def test_flip_moves_boxes_with_the_image(tiny_coco):
    dataset = read_coco(tiny_coco)
    record = dataset.records[0]
    plain = DetectionDataset(dataset, flip=False)[0]
    import torch

    torch.manual_seed(0)
    flipped = None
    for _ in range(20):
        image, target = DetectionDataset(dataset, flip=True)[0]
        if not torch.equal(image, plain[0]):
            flipped = (image, target)
            break
    assert flipped is not None
    np.testing.assert_allclose(flipped[0].numpy(), plain[0].flip(-1).numpy())
    np.testing.assert_allclose(flipped[1]["boxes"][:, 0].numpy(), record.width - record.boxes[:, 2])


def test_voc_layout(tmp_path, tiny_coco):
    dataset = read_coco(tiny_coco)
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for record in dataset.records[:3]:
        (root / "JPEGImages" / record.path.name).write_bytes(record.path.read_bytes())
        objects = "".join(
            f"<object><name>{dataset.class_names[label - 1]}</name><bndbox><xmin>{b[0] + 1:g}</xmin>"
            f"<ymin>{b[1] + 1:g}</ymin><xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax></bndbox></object>"
            for b, label in zip(record.boxes, record.labels))
        (root / "Annotations" / f"{record.path.stem}.xml").write_text(
            f"<annotation><filename>{record.path.name}</filename><size><width>64</width><height>64</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    voc = read_voc(root, class_names=dataset.class_names)
    for a, b in zip(voc.records, dataset.records[:3]):
        np.testing.assert_allclose(a.boxes, b.boxes)
        assert a.labels.tolist() == b.labels.tolist()


def test_unlabelled_sources(tiny_coco, tmp_path):
    assert len(unlabelled_images(tiny_coco)) == 12
    assert len(unlabelled_images(tiny_coco.parent)) == 12  # recursive folder search
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(CvsuiteError, match="no images"):
        unlabelled_images(tmp_path / "empty")
