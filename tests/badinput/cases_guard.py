"""Guard cases common to every app (issue 25): outputs hard-linked to inputs (also with ``--force``),
planted temporary files in the output folder, dataset folders as inputs.

Every case here failed on the code before issue 25: the guard compared resolved paths only (a hard
link passed), and temp files had fixed names that were opened through a planted link.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .harness import BadCase, good_image


def hard_link(path: Path, target: Path) -> Path:
    """``path`` becomes a second name (hard link) of ``target``: same inode, no symlink to resolve."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.link(target, path)
    return path


def _hand_pred(t: Path, n: int = 3) -> tuple[Path, Path]:
    from .cases_hand import _fh_gt

    gt = _fh_gt(t, n)
    rng = np.random.default_rng(1)
    pred = t / "in" / "my.json"
    pred.write_text(json.dumps([rng.normal(0, 0.03, (n, 21, 3)).tolist(), rng.normal(0, 0.03, (n, 778, 3)).tolist()]))
    return gt, pred


def hand_eval_own_output_linked_as_input(t: Path) -> list:
    """The issue's case without --force: res/pred.json is in the ledger as ours; the user hard-links it
    as my.json and evaluates my.json with --json res/pred.json (before: my.json was overwritten)."""
    from shared.guard import OutputGuard

    gt, pred = _hand_pred(t)
    own = t / "out" / "res" / "pred.json"
    guard = OutputGuard()
    guard.write(own, pred.read_text())
    guard.record()
    pred.unlink()
    hard_link(pred, own)
    return ["hand", "eval", "--gt", gt, "--pred", pred, "--json", own]


def sr_eval_json_linked_to_hr_image(t: Path) -> list:
    from .cases_sr import eval_args, hr_folder

    hr = hr_folder(t)
    return eval_args(t, "--json", hard_link(t / "out" / "r.json", hr / "a.png"), "--force")


def sr_eval_json_linked_to_weights(t: Path) -> list:
    from .cases_sr import eval_args

    argv = eval_args(t, "--json", t / "out" / "r.json", "--force")  # writes in/tiny_x2.safetensors
    hard_link(t / "out" / "r.json", t / "in" / "tiny_x2.safetensors")
    return argv


def mot_eval_json_linked_to_gt(t: Path) -> list:
    from .cases_mot import _gt_res

    gt, res, seq = _gt_res(t)
    return ["mot", "eval", "--gt", gt, "--res", res, "--json", hard_link(t / "out" / "m.json", seq / "gt" / "gt.txt"),
            "--force"]


def pretrain_infer_out_linked_to_weights(t: Path) -> list:
    from .cases_pretrain import encoder, images

    weights = encoder(t / "in" / "e.safetensors")
    return ["pretrain", "infer", "--weights", weights, "--input", images(t / "in" / "imgs"),
            "--out", hard_link(t / "out" / "f.safetensors", weights), "--force"]


def scrl_export_out_linked_to_weights(t: Path) -> list:
    from .cases_scrl import other_architecture

    weights = other_architecture(t / "in" / "w.safetensors")
    return ["scrl", "export", "--weights", weights, "--format", "torchvision",
            "--out", hard_link(t / "out" / "w.pth", weights), "--force"]


def _ledger_unchanged_input(t: Path) -> None:
    """check(): the planted link's target (an input) is intact — the runner's snapshot checks the
    bytes; here also that the output folder holds a real ledger file, not a link."""
    from shared.guard import LEDGER_NAME

    ledgers = list((t / "out").rglob(LEDGER_NAME))
    assert ledgers and all(not p.is_symlink() and p.stat().st_nlink == 1 for p in ledgers), ledgers


def hand_eval_planted_ledger_temp(t: Path, kind: str) -> list:
    gt, pred = _hand_pred(t)
    out = t / "out"
    out.mkdir(parents=True)
    planted = out / ".cvsuite-outputs.json.tmp"
    if kind == "symlink":
        planted.symlink_to(pred)
    else:
        os.link(pred, planted)
    return ["hand", "eval", "--gt", gt, "--pred", pred, "--json", out / "scores.json"]


def pretrain_infer_planted_weights_temp(t: Path) -> list:
    """A symlink at the old fixed temp name of a safetensors output (before: the features were
    written into its target, the input encoder)."""
    from .cases_pretrain import encoder, images

    weights = encoder(t / "in" / "e.safetensors")
    out = t / "out"
    out.mkdir(parents=True)
    (out / ".f.safetensors.tmp").symlink_to(weights)
    return ["pretrain", "infer", "--weights", weights, "--input", images(t / "in" / "imgs"), "--out", out / "f.safetensors"]


def scrl_eval_json_into_images(t: Path, beside: bool) -> list:
    """The images of a COCO set are inputs: ``images/`` beside the json as a folder, or (no images/
    folder) each listed image in the json's own folder (before: --force replaced the image)."""
    from .cases_scrl import coco_set, other_architecture

    ann = coco_set(t)
    if beside:
        (ann.parent / "images" / "a.png").rename(ann.parent / "a.png")
        (ann.parent / "images").rmdir()
    target = ann.parent / "a.png" if beside else ann.parent / "images" / "a.png"
    return ["scrl", "eval", "--weights", other_architecture(t / "in" / "w.safetensors"), "--data", ann,
            "--json", target, "--force"]


def scrl_finetune_out_is_image_folder(t: Path) -> list:
    from .cases_scrl import coco_set

    ann = coco_set(t)
    return ["scrl", "finetune", "--data", ann, "--out", ann.parent / "images", "--steps", "1", "--force"]


def pretrain_config_inside_out(t: Path) -> list:
    """``--config X/config.yaml --out X --force`` (before: the run's config.yaml replaced the user's)."""
    run = t / "in" / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("train:\n  max_steps: 1\n")
    return ["pretrain", "train", "--data", "digits", "--config", run / "config.yaml", "--out", run, "--force",
            "train.progress=false", "train.tensorboard=false"]


def sr_train_force_over_foreign_metrics(t: Path) -> list:
    """--force reaches the training engine (before: a foreign run/metrics.csv was refused even so)."""
    from .cases_sr import hr_folder, train_args

    (t / "out" / "run").mkdir(parents=True)
    (t / "out" / "run" / "metrics.csv").write_text("someone else's file\n")
    return [*train_args(t, hr_folder(t)), "--force"]


def hand_train_force_over_foreign_metrics(t: Path) -> list:
    from .cases_hand import _hanco, _train

    (t / "out" / "run").mkdir(parents=True)
    (t / "out" / "run" / "metrics.csv").write_text("someone else's file\n")
    return [*_train(t, _hanco(t)), "--force"]


def _metrics_replaced(t: Path) -> None:
    assert "someone else" not in (t / "out" / "run" / "metrics.csv").read_text()


def demo_foreign_file(t: Path, app: str, name: str) -> list:
    """``demo`` claims its files through the guard (before: sr/mot demos replaced a user's file)."""
    target = t / "out" / app / name
    target.parent.mkdir(parents=True)
    target.write_text("the user's own file\n")
    return ["demo", "--out", t / "out", "--apps", app]


def _demo_file_kept(app: str, name: str):
    def check(t: Path) -> None:
        assert (t / "out" / app / name).read_text() == "the user's own file\n"
    return check


CASES = [
    BadCase("guard-hand-eval-own-output-hard-linked-as-input", hand_eval_own_output_linked_as_input,
            exit_code=2, match="same file as the input"),
    BadCase("guard-sr-eval-json-hard-link-to-hr-image-force", sr_eval_json_linked_to_hr_image,
            exit_code=2, match="a.png"),
    BadCase("guard-sr-eval-json-hard-link-to-weights-force", sr_eval_json_linked_to_weights,
            exit_code=2, match="same file as the input"),
    BadCase("guard-mot-eval-json-hard-link-to-gt-force", mot_eval_json_linked_to_gt,
            exit_code=2, match="gt.txt"),
    BadCase("guard-pretrain-infer-out-hard-link-to-weights-force", pretrain_infer_out_linked_to_weights,
            exit_code=2, match="same file as the input"),
    BadCase("guard-scrl-export-out-hard-link-to-weights-force", scrl_export_out_linked_to_weights,
            exit_code=2, match="same file as the input"),
    BadCase("guard-planted-ledger-temp-symlink", lambda t: hand_eval_planted_ledger_temp(t, "symlink"),
            exit_code=0, check=_ledger_unchanged_input),
    BadCase("guard-planted-ledger-temp-hard-link", lambda t: hand_eval_planted_ledger_temp(t, "hard"),
            exit_code=0, check=_ledger_unchanged_input),
    BadCase("guard-planted-weights-temp-symlink", pretrain_infer_planted_weights_temp, exit_code=0),
    # dataset folders and config files are inputs (item 2)
    BadCase("guard-scrl-eval-json-into-images-folder-force", lambda t: scrl_eval_json_into_images(t, False),
            exit_code=2, match="inside the input folder"),
    BadCase("guard-scrl-eval-json-onto-image-beside-json-force", lambda t: scrl_eval_json_into_images(t, True),
            exit_code=2, match="a.png"),
    BadCase("guard-scrl-finetune-out-is-image-folder", scrl_finetune_out_is_image_folder,
            exit_code=2, match="images"),
    BadCase("guard-pretrain-train-config-inside-out-force", pretrain_config_inside_out,
            exit_code=2, match="config.yaml"),
    # --force reaches the Trainer (item 5)
    BadCase("guard-sr-train-force-honoured", sr_train_force_over_foreign_metrics, exit_code=0, check=_metrics_replaced),
    BadCase("guard-hand-train-force-honoured", hand_train_force_over_foreign_metrics, exit_code=0,
            check=_metrics_replaced),
    # demo goes through the guard (item 4)
    BadCase("guard-demo-sr-foreign-file-needs-force", lambda t: demo_foreign_file(t, "sr", "chelsea_x4_lr.png"),
            exit_code=1, match="--force", check=_demo_file_kept("sr", "chelsea_x4_lr.png")),
    BadCase("guard-demo-mot-foreign-video-needs-force", lambda t: demo_foreign_file(t, "mot", "tracks.mp4"),
            exit_code=1, match="--force", check=_demo_file_kept("mot", "tracks.mp4")),
]
