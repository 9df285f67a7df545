"""``sr infer/eval`` options: captioned --compare, --tile/--overlap bounds and seam warning, help
text on every option, output guard (--force), and a batch that survives a huge-header PNG."""
from __future__ import annotations

import argparse

import numpy as np

from apps.sr import cli as sr_cli
from apps.sr.data import bundled_photo, read_image, write_image
from apps.sr.infer import side_by_side
from tests.badinput.harness import huge_header_png


def test_compare_has_captions_over_each_half(run_cli, tiny_weights, tmp_path):
    write_image(tmp_path / "in" / "a.png", bundled_photo("chelsea")[:60, :64])
    out = tmp_path / "out"
    code, _, err = run_cli(["sr", "infer", tmp_path / "in" / "a.png", "--scale", "2", "--out", out,
                            "--weights", tiny_weights, "--compare"])
    assert code == 0, err
    result = read_image(out / "a.png").rgb
    compare = read_image(out / "a_compare.png").rgb
    band = compare.shape[0] - result.shape[0]
    assert band >= 14 and compare.shape[1] == 2 * result.shape[1] + 8
    np.testing.assert_array_equal(compare[band:, -result.shape[1]:], result)  # right half = the SR output
    caption = compare[:band]
    left, right = caption[:, :result.shape[1]], caption[:, result.shape[1] + 8:]
    assert (left < 0.5).any() and (right < 0.5).any()  # dark text on both halves
    assert caption.mean() > 0.7  # on a white band


def test_caption_text_differs_and_keeps_dtype_and_alpha():
    img16 = np.full((40, 50, 4), 30000, np.uint16)
    both = side_by_side(img16, img16, labels=("bicubic", "CRL-SR"))
    assert both.dtype == np.uint16 and both.shape[2] == 4
    band = both.shape[0] - 40
    assert (both[:band, :, 3] == 65535).all()  # captions are opaque
    plain = side_by_side(img16, img16)
    assert plain.shape[0] == 40  # no labels: no band
    other = side_by_side(img16, img16, labels=("bicubic", "ablation"))
    assert not np.array_equal(both[:band], other[:band])  # the caption really is the text


def test_overlap_below_receptive_field_warns(run_cli, tiny_weights, tmp_path):
    write_image(tmp_path / "a.png", bundled_photo("chelsea")[:40, :40])
    code, _, err = run_cli(["sr", "infer", tmp_path / "a.png", "--scale", "2", "--out", tmp_path / "o",
                            "--weights", tiny_weights, "--tile", "16", "--overlap", "0"])
    assert code == 0, err
    assert "warning" in err and "seams" in err
    code, _, err = run_cli(["sr", "infer", tmp_path / "a.png", "--scale", "2", "--out", tmp_path / "o2",
                            "--weights", tiny_weights, "--tile", "16"])
    assert code == 0 and err == ""


def test_every_option_has_help():
    root = argparse.ArgumentParser()
    sr_cli.register(root.add_subparsers())
    sr_parser = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction)).choices["sr"]
    verbs = next(a for a in sr_parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(verbs) == {"degrade", "train", "infer", "eval"}
    for verb, parser in verbs.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"sr {verb} {action.option_strings or action.dest} has no help text"


def test_huge_header_first_in_folder_the_batch_goes_on(run_cli, tiny_weights, tmp_path):
    folder = tmp_path / "in"
    huge_header_png(folder / "a_huge.png")
    write_image(folder / "b.png", bundled_photo("coffee")[:20, :24])
    code, stdout, err = run_cli(["sr", "infer", folder, "--scale", "2", "--out", tmp_path / "out",
                                 "--weights", tiny_weights])
    assert code == 1
    assert err.count("\n") == 1 and "a_huge.png" in err
    assert read_image(tmp_path / "out" / "b.png").rgb.shape == (40, 48, 3)


def test_guard_reruns_own_outputs_and_needs_force_for_foreign_files(run_cli, tiny_weights, tmp_path):
    src = tmp_path / "a.png"
    write_image(src, bundled_photo("chelsea")[:20, :20])
    out = tmp_path / "out"
    args = ["sr", "infer", src, "--scale", "2", "--out", out, "--weights", tiny_weights]
    assert run_cli(args)[0] == 0
    assert run_cli(args)[0] == 0  # its own earlier output may be replaced
    (out / "a.png").write_bytes(b"a file cvsuite did not write")
    code, _, err = run_cli(args)
    assert code == 2 and "--force" in err
    assert (out / "a.png").read_bytes() == b"a file cvsuite did not write"
    assert run_cli(args + ["--force"])[0] == 0
    assert read_image(out / "a.png").rgb.shape == (40, 40, 3)
