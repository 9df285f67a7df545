"""The photo split behind the benchmark: training, validation and held-out photos never overlap,
and every shipped training config reads training photos only (no test-set leakage). Also the
fetched real photos (``wallpaper:NAME``): pinned, training only, verified before use."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from apps.sr.data import HELDOUT_PHOTOS, TRAIN_PHOTOS, TRAIN_WALLPAPERS, VALIDATION_PHOTOS, load_hr_images
from apps.sr.photos import WALLPAPERS, install_from_tree, wallpaper_path
from apps.sr.train import SRConfig
from shared.config import load_config
from shared.data.images import BUNDLED_PHOTOS
from shared.errors import CvsuiteError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "apps" / "sr" / "configs").glob("*.yaml"))


def test_splits_are_disjoint_bundled_photos() -> None:
    train, val, test = set(TRAIN_PHOTOS), set(VALIDATION_PHOTOS), set(HELDOUT_PHOTOS)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test <= set(BUNDLED_PHOTOS)


def test_wallpapers_are_eight_pinned_training_photos_outside_the_bundled_sets() -> None:
    assert len(TRAIN_WALLPAPERS) == 8 and set(TRAIN_WALLPAPERS) == set(WALLPAPERS)
    assert not set(TRAIN_WALLPAPERS) & (set(BUNDLED_PHOTOS) | set(VALIDATION_PHOTOS) | set(HELDOUT_PHOTOS))
    shas = [sha for _, sha in WALLPAPERS.values()]
    assert len(set(shas)) == 8 and all(len(s) == 64 and int(s, 16) >= 0 for s in shas)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_train_on_training_photos_only(config: Path) -> None:
    cfg = load_config(SRConfig, config)
    sources = list(cfg.data.hr)
    if config.name.startswith("paper_"):  # the paper-scale config reads DIV2K/Flickr2K from disk
        assert not any(src.startswith(("photo:", "wallpaper:")) for src in sources)
        return
    bundled = [src.removeprefix("photo:") for src in sources if src.startswith("photo:")]
    fetched = [src.removeprefix("wallpaper:") for src in sources if src.startswith("wallpaper:")]
    assert len(bundled) + len(fetched) == len(sources), "a shipped recipe reads only bundled or pinned photos"
    assert set(bundled) <= set(TRAIN_PHOTOS), set(bundled) - set(TRAIN_PHOTOS)
    assert set(fetched) <= set(TRAIN_WALLPAPERS), set(fetched) - set(TRAIN_WALLPAPERS)


def _fake_tree(root: Path, payload: dict[str, bytes]) -> None:
    for name, data in payload.items():
        path = root / "usr" / "share" / "wallpapers" / name / "contents" / "images" / "2560x1600.jpg"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)


def test_install_refuses_a_photo_whose_sha256_differs(tmp_path) -> None:
    _fake_tree(tmp_path / "tree", {name: name.encode() for name in WALLPAPERS})
    with pytest.raises(CvsuiteError, match="sha256 differs"):
        install_from_tree(tmp_path / "tree", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written on a mismatch


def test_missing_or_altered_wallpaper_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CVSUITE_SR_PHOTOS", str(tmp_path))
    with pytest.raises(CvsuiteError, match="fetch_sr_photos.py"):
        load_hr_images(["wallpaper:Path"])
    (tmp_path / "Path.jpg").write_bytes(b"not the pinned photo")
    assert hashlib.sha256(b"not the pinned photo").hexdigest() != WALLPAPERS["Path"][1]
    with pytest.raises(CvsuiteError, match="sha256 differs"):
        wallpaper_path("Path")
    with pytest.raises(CvsuiteError, match="unknown wallpaper"):
        wallpaper_path("Konqi")


def test_wallpaper_is_read_at_half_size_after_the_sha_check(tmp_path, monkeypatch) -> None:
    import cv2
    import numpy as np

    from apps.sr import photos

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "Path.jpg"), img)
    sha = hashlib.sha256((tmp_path / "Path.jpg").read_bytes()).hexdigest()
    monkeypatch.setitem(photos.WALLPAPERS, "Path", ("test", sha))
    monkeypatch.setenv("CVSUITE_SR_PHOTOS", str(tmp_path))
    [loaded] = load_hr_images(["wallpaper:Path"])
    decoded = cv2.imread(str(tmp_path / "Path.jpg"))[..., ::-1]
    expected = cv2.resize(np.ascontiguousarray(decoded), (32, 20), interpolation=cv2.INTER_AREA)
    assert loaded.shape == (20, 32, 3) and loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, expected)  # RGB order kept through the area downscale


def test_fetch_script_installs_verified_photos_once(tmp_path, monkeypatch) -> None:
    """tools/fetch_sr_photos.py with a stand-in for apt-get/dpkg: the photos land in --out, a rerun
    keeps them, and a file cvsuite did not write there needs --force."""
    import importlib.util

    from apps.sr import photos

    spec = importlib.util.spec_from_file_location("fetch_sr_photos", Path(__file__).resolve().parents[2] / "tools" / "fetch_sr_photos.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    payload = {name: f"photo {name}".encode() for name in WALLPAPERS}
    monkeypatch.setattr(photos, "WALLPAPERS", {n: ("test", hashlib.sha256(d).hexdigest()) for n, d in payload.items()})
    monkeypatch.setattr(tool, "WALLPAPERS", photos.WALLPAPERS)
    calls = []

    def fake_run(cmd: list[str], cwd: Path) -> None:
        calls.append(cmd[0])
        if cmd[0] == "apt-get":
            (cwd / "plasma-workspace-wallpapers_5.27.5-2_all.deb").write_bytes(b"deb")
        else:  # dpkg -x DEB TREE
            _fake_tree(Path(cmd[3]), payload)

    monkeypatch.setattr(tool, "_run", fake_run)
    out = tmp_path / "photos"
    assert tool.main(["--out", str(out)]) == 0
    assert calls == ["apt-get", "dpkg"]
    assert {p.name: p.read_bytes() for p in out.glob("*.jpg")} == {f"{n}.jpg": d for n, d in payload.items()}
    assert tool.main(["--out", str(out)]) == 0 and calls == ["apt-get", "dpkg"]  # all present: nothing fetched
    (out / "Path.jpg").write_bytes(b"someone else's file")
    assert tool.main(["--out", str(out)]) == 2  # foreign file: refused without --force
    assert (out / "Path.jpg").read_bytes() == b"someone else's file"
    assert tool.main(["--out", str(out), "--force"]) == 0
    assert (out / "Path.jpg").read_bytes() == payload["Path"]
