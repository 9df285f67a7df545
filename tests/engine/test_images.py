"""Shared image helpers: listing, 8/16-bit grey/RGB/RGBA round trips, bundled photos, clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from shared.data.images import BUNDLED_PHOTOS, bundled_photo, list_images, read_image, write_image
from shared.errors import CvsuiteError


def test_round_trips_and_listing(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    write_image(tmp_path / "a.png", rgb)
    write_image(tmp_path / "b.png", rgba)
    write_image(tmp_path / "sub" / "c.png", grey16)
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.png"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.png", "b.png", "c.png"]
    a, b, c = read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png"), read_image(tmp_path / "sub/c.png")
    np.testing.assert_array_equal(np.round(a.rgb * 255).astype(np.uint8), rgb)
    np.testing.assert_array_equal(np.round(b.alpha * 255).astype(np.uint8), rgba[..., 3])
    assert c.grey and c.bit_depth == 16
    np.testing.assert_array_equal(np.round(c.rgb[..., 0] * 65535).astype(np.uint16), grey16)


def test_bad_files_are_clear(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CvsuiteError, match="broken.png: cannot decode"):
        read_image(tmp_path / "broken.png")
    with pytest.raises(CvsuiteError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(CvsuiteError, match="not a folder"):
        list_images(tmp_path / "nope")


def test_bundled_photos_are_real_rgb_and_copies():
    for name in ("chelsea", "camera", "stereo_motorcycle", "grace_hopper"):
        img = bundled_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 10
    first = bundled_photo("chelsea")
    first[:] = 0
    assert bundled_photo("chelsea").any()  # the cache is not mutated through a returned copy
    assert "grace_hopper" in BUNDLED_PHOTOS
    with pytest.raises(CvsuiteError, match="unknown bundled photo"):
        bundled_photo("eagle")


def test_extra_training_photos_come_from_their_packages():
    """The right stereo view, coins (scikit-image) and scikit-learn's two sample photos."""
    from sklearn.datasets import load_sample_image
    import skimage.data

    left, right = bundled_photo("stereo_motorcycle"), bundled_photo("stereo_motorcycle_right")
    assert left.shape == right.shape and not np.array_equal(left, right)
    np.testing.assert_array_equal(right, skimage.data.stereo_motorcycle()[1])
    np.testing.assert_array_equal(bundled_photo("china"), load_sample_image("china.jpg"))
    np.testing.assert_array_equal(bundled_photo("flower"), load_sample_image("flower.jpg"))
    coins = bundled_photo("coins")
    assert coins.shape == (*skimage.data.coins().shape, 3) and (coins[..., 0] == coins[..., 2]).all()
