"""Install a pure-Python detectron2 (``pb1-detectron2==0.6``) into the current venv, repeatably.

Why this script: detectron2 is not on the package index under its own name. ``pb1-detectron2==0.6``
is an sdist of detectron2 0.6 that builds offline once 14 files are patched for today's stack
(torch 2.x without the C++ extension, NumPy 2, Pillow >= 10, setuptools without ``pkg_resources``).
See ``shared/docs/PACKAGING.md`` of the project notes. Steps:

1. ``pip download`` the pinned sdist (``setup.py`` imports torch even for a download, hence
   ``--no-build-isolation`` after torch is installed), check its sha256.
2. Unpack into a temporary folder and apply the exact text substitutions in ``PATCHES``; every
   substitution asserts that its target text occurs the expected number of times, so an upstream
   change fails loudly instead of installing a half-patched package.
3. ``pip install --no-build-isolation --no-deps`` the patched tree (runtime deps come from
   ``requirements.txt``).
4. Smoke-check: import, model-zoo config present, Faster R-CNN R50-FPN config loads.

Usage: ``python tools/install_detectron2.py`` (``make install`` runs it after the requirements).
Users with internet access can instead install detectron2 from its official source.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

SDIST_NAME = "pb1-detectron2"
SDIST_VERSION = "0.6"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"

_GUARDED_C_IMPORT = (
    "try:  # cvsuite patch: pure-Python build, no C++ extension\n"
    "    from detectron2 import _C\n"
    "except ImportError:  # rotated boxes / deformable conv backward need it; R-CNN R50-FPN does not\n"
    "    _C = None\n"
)

# (file relative to the unpacked sdist, old text, new text, expected number of occurrences)
PATCHES: list[tuple[str, str, str, int]] = [
    # No C++ extension: the sdist ships no detectron2/layers/csrc sources.
    ("setup.py", "    ext_modules=get_extensions(),\n", "    ext_modules=[],\n", 1),
    # Model-zoo configs already live inside the package; ship them (else 0 config files).
    ("setup.py",
     'package_data={"detectron2.model_zoo": get_model_zoo_configs()},',
     'package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},', 1),
    ("detectron2/layers/deform_conv.py", "from detectron2 import _C\n", _GUARDED_C_IMPORT, 1),
    ("detectron2/layers/rotated_boxes.py", "from detectron2 import _C\n", _GUARDED_C_IMPORT, 1),
    ("detectron2/layers/roi_align_rotated.py", "from detectron2 import _C\n", _GUARDED_C_IMPORT, 1),
    # COCOEvaluator's fast path needs _C: fall back to the official pycocotools COCOeval.
    ("detectron2/evaluation/fast_eval_api.py", "from detectron2 import _C\n", _GUARDED_C_IMPORT, 1),
    ("detectron2/evaluation/fast_eval_api.py",
     "\nclass COCOeval_opt(COCOeval):\n",
     "\nclass _COCOevalCpp(COCOeval):\n", 1),
    ("detectron2/evaluation/fast_eval_api.py",
     'logger.info("COCOeval_opt.accumulate() finished in {:0.2f} seconds.".format(toc - tic))\n',
     'logger.info("COCOeval_opt.accumulate() finished in {:0.2f} seconds.".format(toc - tic))\n'
     "\n\n# cvsuite patch: without _C the 'fast' evaluator is the official pycocotools one.\n"
     "COCOeval_opt = _COCOevalCpp if _C is not None else COCOeval\n", 1),
    # Pillow >= 10 removed Image.LINEAR.
    ("detectron2/data/transforms/transform.py", "interp=Image.LINEAR", "interp=Image.BILINEAR", 1),
    # NumPy 2 removed the np.bool/int/float/str aliases.
    ("detectron2/evaluation/pascal_voc_evaluation.py", ".astype(np.bool)", ".astype(bool)", 2),
    ("detectron2/evaluation/sem_seg_evaluation.py", "dtype=np.int)", "dtype=int)", 2),
    ("detectron2/evaluation/sem_seg_evaluation.py", "np.float)", "float)", 5),
    ("detectron2/structures/masks.py", ".astype(np.bool)", ".astype(bool)", 2),
    ("detectron2/structures/masks.py", "dtype=np.bool)", "dtype=bool)", 1),
    ("detectron2/data/datasets/pascal_voc.py", "dtype=np.str)", "dtype=str)", 1),
    ("detectron2/data/build.py", "dtype=np.int)", "dtype=int)", 1),
    ("detectron2/utils/visualizer.py", ".astype(np.bool)", ".astype(bool)", 3),
    ("detectron2/utils/video_visualizer.py", "dtype=np.bool)", "dtype=bool)", 1),
    # setuptools >= 81 has no pkg_resources: resolve model-zoo configs relative to the module.
    ("detectron2/model_zoo/model_zoo.py", "import pkg_resources\n", "", 1),
    ("detectron2/model_zoo/model_zoo.py",
     'cfg_file = pkg_resources.resource_filename(\n'
     '        "detectron2.model_zoo", os.path.join("configs", config_path)\n'
     '    )\n',
     'cfg_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", config_path)\n',
     1),
]


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def apply_patches(root: Path) -> None:
    """Apply every substitution in ``PATCHES``; raise if a target text is missing or ambiguous."""
    for relative, old, new, expected in PATCHES:
        path = root / relative
        text = path.read_text(encoding="utf-8")
        found = text.count(old)
        if found != expected:
            raise SystemExit(
                f"install_detectron2: patch target not found as expected in {relative}: "
                f"{old.strip()!r} occurs {found} times, expected {expected}")
        path.write_text(text.replace(old, new), encoding="utf-8")
    leftovers = subprocess.run(
        ["grep", "-rnE", r"np\.(bool|int|float|str|object)\b[^_]|pkg_resources|Image\.LINEAR",
         "--include=*.py", str(root / "detectron2")], capture_output=True, text=True).stdout
    if leftovers.strip():
        raise SystemExit(f"install_detectron2: unpatched code left:\n{leftovers}")


def smoke_check() -> None:
    """Import detectron2 in a fresh interpreter and build the config the exporter writes."""
    code = (
        "from detectron2 import model_zoo; from detectron2.config import get_cfg;"
        "from detectron2.evaluation import COCOEvaluator;"
        "cfg = get_cfg(); cfg.merge_from_file(model_zoo.get_config_file("
        "'COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml'));"
        "import detectron2; print('detectron2', detectron2.__version__, 'OK')"
    )
    _run([sys.executable, "-c", code])


def main() -> None:
    start = time.perf_counter()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory(prefix="cvsuite-d2-") as tmp:
        tmp_dir = Path(tmp)
        _run(pip + ["download", "-q", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                    "-d", str(tmp_dir), f"{SDIST_NAME}=={SDIST_VERSION}"])
        archives = list(tmp_dir.glob("*.tar.gz"))
        if len(archives) != 1:
            raise SystemExit(f"install_detectron2: expected one sdist, got {archives}")
        digest = sha256_of(archives[0])
        if digest != SDIST_SHA256:
            raise SystemExit(f"install_detectron2: sha256 mismatch for {archives[0].name}: "
                             f"{digest} != {SDIST_SHA256}")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(tmp_dir, filter="data")
        source = tmp_dir / f"{SDIST_NAME}-{SDIST_VERSION}"
        apply_patches(source)
        _run(pip + ["install", "-q", "--no-build-isolation", "--no-deps", "--force-reinstall",
                    str(source)])
    smoke_check()
    print(f"install_detectron2: done in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
