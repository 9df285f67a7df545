"""tools/install_detectron2.py fails loudly when a patch target is missing (upstream changed)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "install_detectron2.py"


def _load():
    spec = importlib.util.spec_from_file_location("install_detectron2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_missing_patch_target_stops_the_install(tmp_path):
    module = _load()
    assert len({p[0] for p in module.PATCHES}) == 14  # the 14 files of PACKAGING.md
    for relative, _, _, _ in module.PATCHES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("# upstream rewrote this file\n")
    with pytest.raises(SystemExit, match="setup.py"):
        module.apply_patches(tmp_path)


def test_patched_install_is_importable():
    import detectron2.evaluation.fast_eval_api as fast
    from detectron2 import model_zoo
    from pycocotools.cocoeval import COCOeval

    assert fast.COCOeval_opt is COCOeval  # no C++ extension: the official pycocotools evaluator
    assert Path(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")).is_file()
