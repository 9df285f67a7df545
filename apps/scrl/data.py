"""Detection data in the official layouts (COCO json, Pascal VOC xml) and unlabelled image sets.

Every reader validates what it reads and raises one :class:`CvsuiteError` naming the file (and the
annotation / xml element) for: a bbox outside its image or with a non-positive size, an annotation
whose ``image_id`` is not in ``images``, an unknown ``category_id``, a listed image file that does
not exist, malformed json/xml. Category ids are mapped to contiguous labels ``1..K`` (0 = background,
torchvision's convention); :attr:`DetectionSet.category_ids` maps them back for COCO results.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.data.images import list_images, read_image
from shared.errors import CvsuiteError

BOX_TOLERANCE = 1.0  # pixels a bbox may exceed its image (rounding in other tools' exports)


@dataclass
class ImageRecord:
    """One image and its boxes (x0, y0, x1, y1 pixels) with contiguous labels (1..K)."""

    path: Path
    image_id: int
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    difficult: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))  # VOC <difficult>1</difficult>


@dataclass
class DetectionSet:
    """A labelled detection set: records, category names, contiguous label -> original category id."""

    records: list[ImageRecord]
    class_names: list[str]
    category_ids: list[int]
    source: Path
    coco_json: Path | None = None  # the file pycocotools evaluates against (COCO input or a written copy)

    def to_coco(self, difficult_as_crowd: bool = True) -> dict:
        """The set as a COCO dict (VOC input is converted; used as COCOeval ground truth).

        VOC ``difficult`` objects become ``iscrowd: 1``, COCOeval's only ignore mark: like the VOC
        devkit, they count neither as misses nor (when detected) as false positives. (COCOeval matches
        a detection to an ignore region by intersection / detection area, the VOC devkit by IoU.)
        ``difficult_as_crowd=False`` keeps them as ordinary objects (training sets: detectron2's VOC
        loader trains on difficult objects, and its COCO loader would drop crowd ones)."""
        images, annotations = [], []
        for record in self.records:
            images.append({"id": record.image_id, "file_name": str(record.path), "width": record.width,
                           "height": record.height})
            difficult = (record.difficult if difficult_as_crowd and len(record.difficult) == len(record.boxes)
                         else np.zeros(len(record.boxes), bool))
            for box, label, hard in zip(record.boxes, record.labels, difficult):
                w, h = float(box[2] - box[0]), float(box[3] - box[1])
                annotations.append({"id": len(annotations) + 1, "image_id": record.image_id,
                                    "category_id": self.category_ids[int(label) - 1],
                                    "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                                    "iscrowd": int(bool(hard))})
        categories = [{"id": cid, "name": name} for cid, name in zip(self.category_ids, self.class_names)]
        return {"images": images, "annotations": annotations, "categories": categories}


def read_json_file(path: Path, expected: str) -> Any:
    """Parsed JSON of ``path``; one error line naming the file (``expected`` says what it should be)."""
    if not path.is_file():
        raise CvsuiteError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CvsuiteError(f"{path}: not a UTF-8 text file (expected {expected})") from None
    except json.JSONDecodeError as exc:
        raise CvsuiteError(f"{path}: invalid json at line {exc.lineno}: {exc.msg}") from None


def _load_json(path: Path) -> dict:
    data = read_json_file(path, "COCO json")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CvsuiteError(f"{path}: not a COCO json (needs an 'images' list)")
    return data


def default_image_root(json_path: Path) -> Path:
    """COCO files keep images beside the json (``images/`` or the json's folder)."""
    candidate = json_path.parent / "images"
    return candidate if candidate.is_dir() else json_path.parent


def read_coco(json_path: str | Path, image_root: str | Path | None = None, check_files: bool = True) -> DetectionSet:
    """Read and validate a COCO detection json (``bbox`` = x, y, w, h)."""
    json_path = Path(json_path)
    data = _load_json(json_path)
    root = Path(image_root) if image_root else default_image_root(json_path)
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories:
        raise CvsuiteError(f"{json_path}: no 'categories' list")
    try:
        category_ids = [int(c["id"]) for c in categories]
        class_names = [str(c.get("name", c["id"])) for c in categories]
        label_of = {cid: i + 1 for i, cid in enumerate(category_ids)}
        records: dict[int, ImageRecord] = {}
        for entry in data["images"]:
            image_id = int(entry["id"])
            path = root / str(entry["file_name"])
            if check_files and not path.is_file():
                raise CvsuiteError(f"{json_path}: image {image_id} file {path} does not exist")
            records[image_id] = ImageRecord(path, image_id, int(entry["width"]), int(entry["height"]))
        boxes: dict[int, list[list[float]]] = {i: [] for i in records}
        labels: dict[int, list[int]] = {i: [] for i in records}
        for ann in data.get("annotations", []):
            where = f"{json_path}: annotation {ann.get('id', '?')}"
            image_id = int(ann["image_id"])
            if image_id not in records:
                raise CvsuiteError(f"{where}: image_id {image_id} is not in 'images'")
            category = int(ann["category_id"])
            if category not in label_of:
                raise CvsuiteError(f"{where}: unknown category_id {category}")
            bbox = ann.get("bbox")
            try:
                if isinstance(bbox, (str, bytes)) or len(bbox) != 4:
                    raise ValueError
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                raise CvsuiteError(f"{where}: bbox {bbox!r} is not four numbers [x, y, width, height]") from None
            if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
                raise CvsuiteError(f"{where}: bbox {ann['bbox']} has a non-positive or invalid size")
            record = records[image_id]
            if (x < -BOX_TOLERANCE or y < -BOX_TOLERANCE or x + w > record.width + BOX_TOLERANCE
                    or y + h > record.height + BOX_TOLERANCE):
                raise CvsuiteError(f"{where}: bbox {ann['bbox']} lies outside its {record.width}x{record.height} image")
            if int(ann.get("iscrowd", 0)):
                continue  # crowd regions are ignored by training; COCOeval reads them from the json
            boxes[image_id].append([max(x, 0.0), max(y, 0.0), min(x + w, record.width), min(y + h, record.height)])
            labels[image_id].append(label_of[category])
    except (KeyError, TypeError, ValueError) as exc:
        raise CvsuiteError(f"{json_path}: malformed COCO entry ({type(exc).__name__}: {exc})") from None
    for image_id, record in records.items():
        record.boxes = np.asarray(boxes[image_id], np.float32).reshape(-1, 4)
        record.labels = np.asarray(labels[image_id], np.int64)
    return DetectionSet(list(records.values()), class_names, category_ids, json_path, coco_json=json_path)


def read_voc(root: str | Path, split: str = "trainval", class_names: list[str] | None = None,
             check_files: bool = True) -> DetectionSet:
    """Pascal VOC layout: ``ROOT/Annotations/*.xml``, ``ROOT/JPEGImages``, ``ROOT/ImageSets/Main/SPLIT.txt``."""
    import xml.etree.ElementTree as ET

    root = Path(root)
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    if not ann_dir.is_dir():
        raise CvsuiteError(f"{root}: not a VOC folder (no Annotations/)")
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if split_file.is_file():
        names = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    else:
        names = sorted(p.stem for p in ann_dir.glob("*.xml"))
    if not names:
        raise CvsuiteError(f"{root}: no annotations found")
    parsed = []
    found: list[str] = []
    for name in names:
        xml_path = ann_dir / f"{name}.xml"
        try:
            tree = ET.parse(xml_path).getroot()
            size = tree.find("size")
            width, height = int(size.findtext("width")), int(size.findtext("height"))  # type: ignore[union-attr, arg-type]
            file_name = tree.findtext("filename") or f"{name}.jpg"
            objs = []
            for index, obj in enumerate(tree.findall("object")):
                cls = (obj.findtext("name") or "").strip()
                bb = obj.find("bndbox")
                x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr, arg-type]
                if not np.isfinite([x0, y0, x1, y1]).all():
                    raise CvsuiteError(f"{xml_path}: object {index} has a non-finite box "
                                       f"({x0:g}, {y0:g}, {x1:g}, {y1:g})")
                difficult_text = (obj.findtext("difficult") or "0").strip()
                if difficult_text not in ("0", "1"):
                    raise CvsuiteError(f"{xml_path}: object {index} has <difficult>{difficult_text}</difficult> "
                                       "(expected 0 or 1)")
                # VOC pixel indices are 1-based and inclusive
                x0, y0 = x0 - 1, y0 - 1
                if x1 <= x0 or y1 <= y0:
                    raise CvsuiteError(f"{xml_path}: object {index} has a non-positive box size")
                if x0 < -BOX_TOLERANCE or y0 < -BOX_TOLERANCE or x1 > width + BOX_TOLERANCE or y1 > height + BOX_TOLERANCE:
                    raise CvsuiteError(f"{xml_path}: object {index} box lies outside its {width}x{height} image")
                objs.append((cls, [x0, y0, x1, y1], difficult_text == "1"))
                if cls not in found:
                    found.append(cls)
        except ET.ParseError as exc:
            raise CvsuiteError(f"{xml_path}: invalid xml ({exc})") from None
        except FileNotFoundError:
            raise CvsuiteError(f"{xml_path}: no such file") from None
        except (AttributeError, TypeError, ValueError) as exc:
            raise CvsuiteError(f"{xml_path}: malformed VOC annotation ({type(exc).__name__})") from None
        path = img_dir / file_name
        if check_files and not path.is_file():
            raise CvsuiteError(f"{xml_path}: image {path} does not exist")
        parsed.append((path, width, height, objs))
    classes = list(class_names) if class_names else sorted(found)
    label_of = {c: i + 1 for i, c in enumerate(classes)}
    records = []
    for image_id, (path, width, height, objs) in enumerate(parsed, start=1):
        for cls, _, _ in objs:
            if cls not in label_of:
                raise CvsuiteError(f"{root}: unknown class {cls!r} in {path.stem}.xml")
        records.append(ImageRecord(path, image_id, width, height,
                                   np.asarray([b for _, b, _ in objs], np.float32).reshape(-1, 4),
                                   np.asarray([label_of[c] for c, _, _ in objs], np.int64),
                                   np.asarray([d for _, _, d in objs], bool)))
    return DetectionSet(records, classes, list(range(1, len(classes) + 1)), root)


def open_detection_set(path: str | Path, image_root: str | Path | None = None, check_files: bool = True,
                       voc_split: str = "trainval") -> DetectionSet:
    """A COCO json file or a VOC folder (its ``voc_split`` list); ``check_files=False``: annotations only,
    images need not exist."""
    path = Path(path)
    if path.is_dir():
        return read_voc(path, split=voc_split, check_files=check_files)
    return read_coco(path, image_root, check_files=check_files)


def load_rgb(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) through the suite's image reader (one clear error on bad files)."""
    return np.clip(read_image(path).rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def unlabelled_images(source: str | Path) -> list[Path]:
    """Pretraining images: an image folder (recursive) or the images listed in a COCO json."""
    source = Path(source)
    if source.is_dir():
        files = list_images(source, recursive=True)
        if not files:
            raise CvsuiteError(f"{source}: no images found in this folder (searched recursively)")
        return files
    if source.suffix.lower() == ".json":  # only the 'images' list: annotations are not needed here
        data = _load_json(source)
        root = default_image_root(source)
        files = []
        for index, entry in enumerate(data["images"]):
            if not isinstance(entry, dict) or "file_name" not in entry:
                raise CvsuiteError(f"{source}: images[{index}] has no 'file_name'")
            path = root / str(entry["file_name"])
            if not path.is_file():
                raise CvsuiteError(f"{source}: image {entry.get('id', index)} file {path} does not exist")
            files.append(path)
        if not files:
            raise CvsuiteError(f"{source}: lists no images")
        return files
    raise CvsuiteError(f"{source}: neither an image folder nor a COCO json")


def dataset_inputs(source: str | Path | None, image_root: str | Path | None = None) -> list[Path]:
    """What a command reading a detection set (COCO json or VOC folder) must never write: the file or
    folder itself and its images: the ``images/`` folder beside a json (or ``image_root``) as a whole,
    or, when the images sit in the json's own folder, each image the json lists."""
    if not source:
        return []
    source = Path(source)
    found = [source]
    if image_root:
        found.append(Path(image_root))
    elif source.is_file() and source.suffix.lower() == ".json":
        root = default_image_root(source)
        if root != source.parent:
            found.append(root)
        else:
            try:
                found += [r.path for r in read_coco(source, check_files=False).records]
            except CvsuiteError:
                pass  # the command itself reports the broken json
    return found


class DetectionDataset(Dataset):
    """``(image float (3, H, W) in [0, 1], {"boxes", "labels"})`` with optional horizontal flip."""

    def __init__(self, dataset: DetectionSet, flip: bool = True) -> None:
        self.dataset = dataset
        self.flip = flip

    def __len__(self) -> int:
        return len(self.dataset.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        record = self.dataset.records[index]
        image = torch.from_numpy(load_rgb(record.path)).permute(2, 0, 1).float() / 255.0
        if image.shape[1:] != (record.height, record.width):
            raise CvsuiteError(f"{record.path}: image is {image.shape[2]}x{image.shape[1]}, "
                               f"annotations say {record.width}x{record.height}")
        boxes = torch.from_numpy(record.boxes.copy())
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(-1)
            boxes = torch.stack([record.width - boxes[:, 2], boxes[:, 1], record.width - boxes[:, 0], boxes[:, 3]], 1)
        return image, {"boxes": boxes, "labels": torch.from_numpy(record.labels.copy())}


def collate_detection(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch)
    return list(images), list(targets)
