"""Tiled inference, image formats, and bad inputs through ``cvsuite sr infer``."""
from __future__ import annotations

import numpy as np
import pytest

from apps.sr.data import bundled_photo, read_image, write_image
from apps.sr.infer import upscale_rgb


def test_tiled_equals_whole_image_when_overlap_covers_receptive_field(tiny_model):
    rgb = bundled_photo("chelsea")[100:170, 150:240].astype(np.float32) / 255.0  # 70 x 90
    radius = tiny_model.receptive_radius
    whole = upscale_rgb(tiny_model, rgb, 2, tile=0, dtype=np.uint16).astype(np.int64)
    tiled = upscale_rgb(tiny_model, rgb, 2, tile=24, overlap=2 * radius, dtype=np.uint16).astype(np.int64)
    assert np.abs(whole - tiled).max() <= 65535 / 255  # within 1/255
    tiled8 = upscale_rgb(tiny_model, rgb, 2, tile=24, overlap=2 * radius).astype(np.int64)
    whole8 = upscale_rgb(tiny_model, rgb, 2, tile=0).astype(np.int64)
    assert np.abs(whole8 - tiled8).max() <= 1
    # the model really differs from its bicubic skip, and tiles without context really differ
    no_context = upscale_rgb(tiny_model, rgb, 2, tile=24, overlap=0).astype(np.int64)
    assert np.abs(whole8 - no_context).max() > 1


def test_formats_grey_rgba_16bit(run_cli, tiny_weights, tmp_path):
    src = tmp_path / "in"
    photo = bundled_photo("coffee")[:40, :48]
    write_image(src / "grey.png", photo[..., 0])
    rgba = np.concatenate([photo, np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (40, 1))[..., None]], axis=2)
    write_image(src / "rgba.png", rgba)
    write_image(src / "deep.png", photo.astype(np.uint16) * 257)
    out = tmp_path / "out"
    code, _, err = run_cli(["sr", "infer", str(src), "--scale", "2", "--out", out, "--weights", tiny_weights,
                            "--compare", "--tile", "16"])
    assert code == 0, err
    grey = read_image(out / "grey.png")
    assert grey.grey and grey.rgb.shape == (80, 96, 3)
    rgba_out = read_image(out / "rgba.png")
    assert rgba_out.alpha is not None and rgba_out.rgb.shape == (80, 96, 3)
    # alpha is upscaled on its own: a horizontal ramp stays a horizontal ramp
    assert np.allclose(rgba_out.alpha[0], rgba_out.alpha[-1], atol=1 / 255)
    assert rgba_out.alpha[0, -1] > rgba_out.alpha[0, 0] + 0.9
    deep = read_image(out / "deep.png")
    assert deep.bit_depth == 16 and deep.rgb.shape == (80, 96, 3)
    compare = read_image(out / "grey_compare.png")
    assert compare.rgb.shape[1] == 2 * 96 + 8


def test_corrupt_file_one_line_rest_processed(run_cli, tiny_weights, tmp_path):
    src = tmp_path / "in"
    write_image(src / "good.png", bundled_photo("chelsea")[:20, :20])
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    out = tmp_path / "out"
    code, _, err = run_cli(["sr", "infer", src, notes, "--scale", "2", "--out", out, "--weights", tiny_weights])
    assert code == 1
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 2 and all(line.startswith("cvsuite: error:") for line in lines)
    assert "broken.png" in lines[0] and "notes.txt" in lines[1]
    assert (out / "good.png").is_file()


def test_output_equal_to_input_is_refused(run_cli, tiny_weights, tmp_path):
    photo = bundled_photo("chelsea")[:20, :20]
    write_image(tmp_path / "a.png", photo)
    before = (tmp_path / "a.png").read_bytes()
    code, _, err = run_cli(["sr", "infer", tmp_path / "a.png", "--scale", "2", "--out", tmp_path,
                            "--weights", tiny_weights])
    assert code == 2 and "is the input" in err and err.count("\n") == 1
    assert (tmp_path / "a.png").read_bytes() == before


def test_wrong_scale_for_weights_is_one_line(run_cli, tiny_weights, tmp_path):
    write_image(tmp_path / "a.png", bundled_photo("chelsea")[:20, :20])
    code, _, err = run_cli(["sr", "infer", tmp_path / "a.png", "--scale", "4", "--out", tmp_path / "o",
                            "--weights", tiny_weights])
    assert code == 1 and "x2 weights" in err and err.count("\n") == 1


def test_tiled_equals_whole_image_with_the_colour_lock(tiny_model):
    """The lock's Gaussian widens the receptive radius; tiles with the default overlap still match."""
    rgb = bundled_photo("chelsea")[100:196, 150:246].astype(np.float32) / 255.0  # 96 x 96
    tiny_model.colour_lock = 8.0
    try:
        radius = tiny_model.receptive_radius
        assert radius == tiny_model.network_radius + 12  # ceil(ceil(3 * 8) / 2)
        whole = upscale_rgb(tiny_model, rgb, 2, tile=0).astype(np.int64)
        tiled = upscale_rgb(tiny_model, rgb, 2, tile=32, overlap=2 * radius).astype(np.int64)
        short = upscale_rgb(tiny_model, rgb, 2, tile=32, overlap=2 * tiny_model.network_radius).astype(np.int64)
    finally:
        tiny_model.colour_lock = 0.0
    assert np.abs(whole - tiled).max() <= 1
    assert np.abs(whole - short).max() > 1  # the network's own radius alone is not enough with the lock


def _dihedral(x, k: int, flip: bool):
    import torch

    t = torch.rot90(x, k, dims=(-2, -1))
    return torch.flip(t, dims=(-1,)) if flip else t


def test_self_ensemble_is_the_mean_of_the_eight_mapped_back_outputs_and_equivariant(tiny_model):
    import torch

    x = torch.from_numpy(bundled_photo("coffee")[60:84, 80:108].astype(np.float32).transpose(2, 0, 1) / 255.0)[None]
    with torch.no_grad():
        plain = tiny_model(x)
        # explicit reference: undo each transform by its own inverse (rotate back first when flipped)
        outputs = []
        for k in range(4):
            for flip in (False, True):
                y = tiny_model(_dihedral(x, k, flip))
                if flip:
                    y = torch.flip(y, dims=(-1,))
                outputs.append(torch.rot90(y, -k, dims=(-2, -1)))
        reference = torch.stack(outputs).mean(0)
        tiny_model.self_ensemble = True
        try:
            ensemble = tiny_model(x)
            rotated = tiny_model(_dihedral(x, 1, True))
        finally:
            tiny_model.self_ensemble = False
    assert ensemble.shape == plain.shape
    assert torch.allclose(ensemble, reference, atol=1e-6)
    assert (ensemble - plain).abs().max() > 1e-3  # the plain model is not equivariant; the ensemble differs
    # the ensemble is equivariant: transforming the input transforms the output the same way
    assert torch.allclose(rotated, _dihedral(ensemble, 1, True), atol=1e-5)


def test_self_ensemble_tiles_exactly_and_runs_from_the_cli(tiny_model, run_cli, tiny_weights, tmp_path):
    rgb = bundled_photo("chelsea")[100:164, 150:214].astype(np.float32) / 255.0
    tiny_model.self_ensemble = True
    try:
        radius = tiny_model.receptive_radius
        whole = upscale_rgb(tiny_model, rgb, 2, tile=0).astype(np.int64)
        tiled = upscale_rgb(tiny_model, rgb, 2, tile=24, overlap=2 * radius).astype(np.int64)
    finally:
        tiny_model.self_ensemble = False
    assert np.abs(whole - tiled).max() <= 1
    write_image(tmp_path / "a.png", bundled_photo("chelsea")[:20, :24])
    code, _, err = run_cli(["sr", "infer", tmp_path / "a.png", "--scale", "2", "--out", tmp_path / "o",
                            "--weights", tiny_weights, "--self-ensemble"])
    assert code == 0, err
    assert read_image(tmp_path / "o" / "a.png").rgb.shape == (40, 48, 3)
