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


def _voc(root, objects: str, size=(64, 48)) -> None:
    from PIL import Image

    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    Image.new("RGB", size).save(root / "JPEGImages" / "a.jpg")
    (root / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>a.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size>{objects}</annotation>")


def _obj(name: str, box, difficult: int | None = None) -> str:
    hard = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    return (f"<object><name>{name}</name>{hard}<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
            f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>")


def test_voc_difficult_objects_are_ignored_by_the_evaluation(tmp_path):
    """The VOC devkit ignores difficult objects: a perfect detection of the other object scores AP 1.0."""
    from apps.scrl.evaluate import coco_box_ap, coco_ground_truth

    _voc(tmp_path / "VOC", _obj("cat", (5, 5, 30, 40), 0) + _obj("cat", (35, 10, 60, 30), 1))
    voc = read_voc(tmp_path / "VOC")
    assert voc.records[0].difficult.tolist() == [False, True]
    assert len(voc.records[0].boxes) == 2  # kept for training, as detectron2's VOC loader does
    gt = coco_ground_truth(voc)
    x0, y0, x1, y1 = voc.records[0].boxes[0].tolist()
    perfect = [{"image_id": 1, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": 0.9}]
    assert coco_box_ap(gt, perfect)["AP"] == pytest.approx(1.0)  # 0.505 if the difficult object counted
    # and a detection of the difficult object is not a false positive either
    x0, y0, x1, y1 = voc.records[0].boxes[1].tolist()
    both = perfect + [{"image_id": 1, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": 0.95}]
    assert coco_box_ap(gt, both)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("box,match", [(("nan", 5, 30, 40), "non-finite"), ((5, 5, "inf", 40), "non-finite"),
                                       ((5, 5, 30, 40, "2"), "difficult")])
def test_voc_bad_values_name_the_object(tmp_path, box, match):
    difficult = int(box[4]) if len(box) == 5 else 0
    _voc(tmp_path / "VOC", _obj("cat", box[:4], difficult))
    with pytest.raises(CvsuiteError, match=match) as info:
        read_voc(tmp_path / "VOC")
    assert "a.xml" in str(info.value) and "object 0" in str(info.value)


@pytest.mark.parametrize("bbox", [[1, 2, 3], None, "1,2,3,4", [1, 2, "x", 4], [1, 2, 3, 4, 5]])
def test_malformed_coco_bbox_names_the_annotation(tmp_path, bbox):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (64, 48)).save(tmp_path / "images" / "a.png")
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 42, "image_id": 1, "category_id": 1, "bbox": bbox}],
            "categories": [{"id": 1, "name": "disc"}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(CvsuiteError, match="annotation 42") as info:
        read_coco(tmp_path / "a.json")
    assert "bbox" in str(info.value)


def test_voc_splits_choose_the_image_lists(tmp_path):
    from apps.scrl.data import open_detection_set

    _voc(tmp_path / "VOC", _obj("cat", (5, 5, 30, 40)))
    (tmp_path / "VOC" / "Annotations" / "b.xml").write_text(
        (tmp_path / "VOC" / "Annotations" / "a.xml").read_text().replace("a.jpg", "b.jpg"))
    (tmp_path / "VOC" / "JPEGImages" / "b.jpg").write_bytes((tmp_path / "VOC" / "JPEGImages" / "a.jpg").read_bytes())
    (tmp_path / "VOC" / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "VOC" / "ImageSets" / "Main" / "trainval.txt").write_text("a\n")
    (tmp_path / "VOC" / "ImageSets" / "Main" / "test.txt").write_text("b\n")
    assert [r.path.name for r in open_detection_set(tmp_path / "VOC").records] == ["a.jpg"]
    assert [r.path.name for r in open_detection_set(tmp_path / "VOC", voc_split="test").records] == ["b.jpg"]
