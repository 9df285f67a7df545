"""Bad input common to every command: unknown apps/verbs/options, config files and ``key=value``
overrides (issue 12 rows 7 and 13 and the overrides-after-options extra, issue 13's doubled name).

Config rows use ``pretrain train`` (and ``sr``/``mot train`` for row 7): the config is read and
checked before any data, so these cases cost no training. Each case below failed on the code
before the fix; the comment says how.
"""
from __future__ import annotations

from pathlib import Path

from .harness import BadCase, good_image, random_bytes, text_file

QUIET = ["train.progress=false", "train.tensorboard=false"]


def _pretrain_train(t: Path, *overrides: str) -> list:
    return ["pretrain", "train", "--data", "digits", f"train.out_dir={t / 'out' / 'run'}", *QUIET, *overrides]


CASES = [
    # before: "cvsuite: error: cvsuite: argument COMMAND: invalid choice" (program named twice)
    BadCase("core-unknown-app", lambda t: ["nosuchapp"], exit_code=2,
            match="cvsuite: error: argument COMMAND: invalid choice: 'nosuchapp'"),
    BadCase("core-unknown-option", lambda t: ["doctor", "--frobnicate"], exit_code=2, match="--frobnicate"),
    BadCase("core-unknown-verb", lambda t: ["pretrain", "fly"], exit_code=2,
            match="cvsuite: error: pretrain: argument VERB: invalid choice: 'fly'"),
    # row 7: a negative batch made steps/epoch negative and the loop spun forever at 100 % CPU
    BadCase("core-row7-pretrain-batch-negative", lambda t: _pretrain_train(t, "train.batch_size=-4"),
            exit_code=2, match="train.batch_size' must be positive"),
    BadCase("core-row7-sr-batch-negative",
            lambda t: ["sr", "train", f"train.out_dir={t / 'out' / 'sr'}", "train.batch_size=-4", *QUIET],
            exit_code=2, match="train.batch_size' must be positive"),
    BadCase("core-row7-mot-batch-negative",
            lambda t: ["mot", "train", f"train.out_dir={t / 'out' / 'mot'}", "train.batch_size=-4", *QUIET],
            exit_code=2, match="train.batch_size' must be positive"),
    # extra: batch 0 reached the user as a bare "ZeroDivisionError: integer division or modulo by zero"
    BadCase("core-pretrain-batch-zero", lambda t: _pretrain_train(t, "train.batch_size=0"),
            exit_code=2, match="train.batch_size' must be positive"),
    # row 13: 1.5 steps was silently truncated to 1 and the run "succeeded"
    BadCase("core-row13-max-steps-fraction", lambda t: _pretrain_train(t, "train.max_steps=1.5"),
            exit_code=2, match="train.max_steps' must be an integer, got 1.5"),
    # finite learning rates: NaN trained one step, then stopped on a NaN loss (exit 1, no key named)
    BadCase("core-lr-nan", lambda t: _pretrain_train(t, "train.lr=nan", "train.max_steps=3"),
            exit_code=2, match="train.lr' must be a finite number"),
    BadCase("core-lr-inf", lambda t: _pretrain_train(t, "train.lr=.inf", "train.max_steps=3"),
            exit_code=2, match="train.lr' must be a finite number"),
    BadCase("core-log-every-zero", lambda t: _pretrain_train(t, "train.log_every=0"),
            exit_code=2, match="train.log_every' must be positive"),
    # extra: an override after an option taking several values was swallowed by it
    # (before: "HR folder not found: train.max_steps=1.5"; the key never reached the config)
    BadCase("core-override-after-multi-value-option",
            lambda t: ["sr", "train", "--hr", good_image(t / "in" / "hr" / "a.png").parent,
                       "train.max_steps=1.5", f"train.out_dir={t / 'out' / 'sr'}"],
            exit_code=2, match="train.max_steps' must be an integer"),
    BadCase("core-override-not-key-value", lambda t: _pretrain_train(t, "steps"),
            exit_code=2, match="key=value"),
    BadCase("core-override-unknown-key", lambda t: _pretrain_train(t, "train.max_stpes=5"),
            exit_code=2, match="max_stpes"),
    # config files: binary (before: "UnicodeDecodeError: 'utf-8' codec can't decode ..." without the
    # file), broken YAML (now with the line), wrong layout (a list instead of a mapping)
    BadCase("core-config-binary",
            lambda t: ["pretrain", "train", "--config", random_bytes(t / "in" / "cfg.yaml"),
                       f"train.out_dir={t / 'out' / 'run'}"], exit_code=2, match="cfg.yaml"),
    BadCase("core-config-broken-yaml",
            lambda t: ["pretrain", "train", "--config", text_file(t / "in" / "cfg.yaml", ["train:", "  lr: [1,"]),
                       f"train.out_dir={t / 'out' / 'run'}"], exit_code=2, match="cfg.yaml:"),
    BadCase("core-config-wrong-layout",
            lambda t: ["pretrain", "train", "--config", text_file(t / "in" / "cfg.yaml", ["- method: simclr"]),
                       f"train.out_dir={t / 'out' / 'run'}"], exit_code=2, match="mapping"),
    BadCase("core-config-section-not-mapping",
            lambda t: ["pretrain", "train", "--config", text_file(t / "in" / "cfg.yaml", ["train: 5"]),
                       f"train.out_dir={t / 'out' / 'run'}"], exit_code=2, match="'train' must be a mapping"),
    BadCase("core-config-nan-in-file",
            lambda t: ["pretrain", "train", "--config", text_file(t / "in" / "cfg.yaml", ["train:", "  lr: .nan"]),
                       f"train.out_dir={t / 'out' / 'run'}"], exit_code=2, match="finite"),
    BadCase("core-config-missing", lambda t: ["pretrain", "train", "--config", t / "in" / "nope.yaml"],
            exit_code=2, match="nope.yaml"),
]
