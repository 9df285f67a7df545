"""The photo split behind the benchmark: training, validation and held-out photos never overlap,
and every shipped training config reads training photos only (no test-set leakage). Also the
fetched real photos (``wallpaper:NAME``): pinned, training only, verified before use."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from apps.sr.data import HELDOUT_PHOTOS, TRAIN_PHOTOS, TRAIN_WALLPAPERS, VALIDATION_PHOTOS, load_hr_images
from apps.sr.photos import FIRST_ROUND, PACKAGES, WALLPAPERS, install_from_tree, wallpaper_path
from apps.sr.train import SRConfig
from shared.config import load_config
from shared.data.images import BUNDLED_PHOTOS
from shared.errors import CvsuiteError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "apps" / "sr" / "configs").glob("*.yaml"))


def test_splits_are_disjoint_bundled_photos() -> None:
    train, val, test = set(TRAIN_PHOTOS), set(VALIDATION_PHOTOS), set(HELDOUT_PHOTOS)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test <= set(BUNDLED_PHOTOS)


def test_wallpapers_are_pinned_training_photos_outside_the_bundled_sets() -> None:
    assert len(TRAIN_WALLPAPERS) == 28 and set(TRAIN_WALLPAPERS) == set(WALLPAPERS)
    assert len(FIRST_ROUND) == 8 and {WALLPAPERS[n].package for n in FIRST_ROUND} == {"plasma-workspace-wallpapers"}
    assert not set(TRAIN_WALLPAPERS) & (set(BUNDLED_PHOTOS) | set(VALIDATION_PHOTOS) | set(HELDOUT_PHOTOS))
    shas = [photo.sha256 for photo in WALLPAPERS.values()]
    assert len(set(shas)) == len(shas) and all(len(s) == 64 and int(s, 16) >= 0 for s in shas)
    members = {(photo.package, photo.member) for photo in WALLPAPERS.values()}
    assert len(members) == len(WALLPAPERS)  # no file taken twice under two names
    for photo in WALLPAPERS.values():
        assert photo.package in PACKAGES and photo.reduce in (1, 2, 3, 4) and photo.licence and photo.author
    assert {photo.package for photo in WALLPAPERS.values()} == set(PACKAGES)


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


def _fake_tree(root: Path, payload: dict[str, bytes], package: str | None = None) -> None:
    """A stand-in ``dpkg -x`` tree: each named photo's bytes at its member path (of ``package`` only, if given)."""
    for name, data in payload.items():
        if package is not None and WALLPAPERS[name].package != package:
            continue
        path = root / WALLPAPERS[name].member
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_install_refuses_a_photo_whose_sha256_differs(tmp_path, package: str) -> None:
    _fake_tree(tmp_path / "tree", {name: name.encode() for name in WALLPAPERS}, package)
    with pytest.raises(CvsuiteError, match="sha256 differs"):
        install_from_tree(tmp_path / "tree", tmp_path / "out", package)
    assert not (tmp_path / "out").exists()  # nothing written on a mismatch


def test_install_takes_only_the_packages_own_photos(tmp_path, monkeypatch) -> None:
    from apps.sr import photos

    payload = {name: f"photo {name}".encode() for name in WALLPAPERS}
    pinned = {n: replace(w, sha256=hashlib.sha256(payload[n]).hexdigest()) for n, w in WALLPAPERS.items()}
    monkeypatch.setattr(photos, "WALLPAPERS", pinned)
    _fake_tree(tmp_path / "tree", payload, "mate-backgrounds")
    written = install_from_tree(tmp_path / "tree", tmp_path / "out", "mate-backgrounds")
    assert sorted(p.stem for p in written) == sorted(n for n, w in pinned.items() if w.package == "mate-backgrounds")
    with pytest.raises(CvsuiteError, match="not in the extracted package"):  # another package's tree lacks them
        install_from_tree(tmp_path / "tree", tmp_path / "out2", "lomiri-wallpapers-16.04")
    with pytest.raises(CvsuiteError, match="unknown photo package"):
        install_from_tree(tmp_path / "tree", tmp_path / "out3", "gnome-backgrounds")


def test_missing_or_altered_wallpaper_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CVSUITE_SR_PHOTOS", str(tmp_path))
    with pytest.raises(CvsuiteError, match="fetch_sr_photos.py"):
        load_hr_images(["wallpaper:Path"])
    (tmp_path / "Path.jpg").write_bytes(b"not the pinned photo")
    assert hashlib.sha256(b"not the pinned photo").hexdigest() != WALLPAPERS["Path"].sha256
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
    monkeypatch.setitem(photos.WALLPAPERS, "Path", replace(photos.WALLPAPERS["Path"], sha256=sha))
    monkeypatch.setenv("CVSUITE_SR_PHOTOS", str(tmp_path))
    [loaded] = load_hr_images(["wallpaper:Path"])
    decoded = cv2.imread(str(tmp_path / "Path.jpg"))[..., ::-1]
    expected = cv2.resize(np.ascontiguousarray(decoded), (32, 20), interpolation=cv2.INTER_AREA)
    assert loaded.shape == (20, 32, 3) and loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, expected)  # RGB order kept through the area downscale


def test_wallpaper_is_read_at_its_own_reduction(tmp_path, monkeypatch) -> None:
    import cv2
    import numpy as np

    from apps.sr import photos

    img = np.random.default_rng(1).integers(0, 256, (31, 47, 3), dtype=np.uint8)
    for name, factor in (("Brushes", 1), ("Dragonfly", 3), ("Kleiber", 4)):
        assert photos.WALLPAPERS[name].reduce == factor
        cv2.imwrite(str(tmp_path / f"{name}.png"), img)  # lossless stand-in, stored under the .jpg name
        (tmp_path / f"{name}.jpg").write_bytes((tmp_path / f"{name}.png").read_bytes())
        sha = hashlib.sha256((tmp_path / f"{name}.jpg").read_bytes()).hexdigest()
        monkeypatch.setitem(photos.WALLPAPERS, name, replace(photos.WALLPAPERS[name], sha256=sha))
    monkeypatch.setenv("CVSUITE_SR_PHOTOS", str(tmp_path))
    full, third, quarter = load_hr_images(["wallpaper:Brushes", "wallpaper:Dragonfly", "wallpaper:Kleiber"], min_size=1)
    np.testing.assert_array_equal(full, img[..., ::-1])
    np.testing.assert_array_equal(third, cv2.resize(img, (15, 10), interpolation=cv2.INTER_AREA)[..., ::-1])
    assert quarter.shape == (7, 11, 3)


def _load_fetch_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_sr_photos", Path(__file__).resolve().parents[2] / "tools" / "fetch_sr_photos.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _stand_in_packages(monkeypatch, tool) -> tuple[dict[str, bytes], list[str]]:
    """Pin stand-in photo bytes and replace apt-get/dpkg: ``apt-get download PKG=V`` writes ``PKG_V_all.deb``,
    ``dpkg -x PKG_....deb TREE`` writes that package's stand-in tree. Returns the payload and the call log."""
    from apps.sr import photos

    payload = {name: f"photo {name}".encode() for name in WALLPAPERS}
    pinned = {n: replace(w, sha256=hashlib.sha256(payload[n]).hexdigest()) for n, w in WALLPAPERS.items()}
    monkeypatch.setattr(photos, "WALLPAPERS", pinned)
    monkeypatch.setattr(tool, "WALLPAPERS", pinned)
    calls: list[str] = []

    def fake_run(cmd: list[str], cwd: Path) -> None:
        if cmd[0] == "apt-get":
            package, version = cmd[2].split("=")
            calls.append(f"apt-get {package}")
            (cwd / f"{package}_{version.split(':')[-1]}_all.deb").write_bytes(b"deb")
        else:  # dpkg -x DEB TREE
            package = Path(cmd[2]).name.split("_")[0]
            calls.append(f"dpkg {package}")
            _fake_tree(Path(cmd[3]), payload, package)

    monkeypatch.setattr(tool, "_run", fake_run)
    return payload, calls


def test_fetch_script_installs_verified_photos_once(tmp_path, monkeypatch) -> None:
    """tools/fetch_sr_photos.py with a stand-in for apt-get/dpkg: every package's photos land in --out, a
    rerun keeps them, and a file cvsuite did not write there needs --force (only its package is fetched again)."""
    tool = _load_fetch_tool()
    payload, calls = _stand_in_packages(monkeypatch, tool)
    out = tmp_path / "photos"
    assert tool.main(["--out", str(out)]) == 0
    assert calls == [f"{tool_cmd} {p}" for p in PACKAGES for tool_cmd in ("apt-get", "dpkg")]
    assert {p.name: p.read_bytes() for p in out.glob("*.jpg")} == {f"{n}.jpg": d for n, d in payload.items()}
    calls.clear()
    assert tool.main(["--out", str(out)]) == 0 and calls == []  # all present: nothing fetched
    (out / "Wood.jpg").write_bytes(b"someone else's file")
    assert tool.main(["--out", str(out)]) == 2  # foreign file: refused without --force
    assert (out / "Wood.jpg").read_bytes() == b"someone else's file" and calls == []
    assert tool.main(["--out", str(out), "--force"]) == 0
    assert (out / "Wood.jpg").read_bytes() == payload["Wood"]
    assert calls == ["apt-get mate-backgrounds", "dpkg mate-backgrounds"]


def test_fetch_script_takes_given_debs_and_refuses_unknown_ones(tmp_path, monkeypatch, capsys) -> None:
    tool = _load_fetch_tool()
    payload, calls = _stand_in_packages(monkeypatch, tool)
    deb = tmp_path / "mate-backgrounds_1.26.0-1_all.deb"
    deb.write_bytes(b"deb")
    out = tmp_path / "photos"
    assert tool.main(["--out", str(out), "--deb", str(deb)]) == 0
    assert "dpkg mate-backgrounds" in calls and "apt-get mate-backgrounds" not in calls
    other = tmp_path / "gnome-backgrounds_43.1-1_all.deb"
    other.write_bytes(b"deb")
    capsys.readouterr()
    assert tool.main(["--out", str(tmp_path / "p2"), "--deb", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cvsuite: error: --deb") and "gnome-backgrounds" in err[0]
