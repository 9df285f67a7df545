"""Helpers every app's ``cli.py`` uses, so all ``train`` verbs read configs the same way.

Example::

    p = sub.add_parser("train", help="train the model")
    add_config_args(p)                       # --config FILE and key=value overrides
    p.add_argument("--data", help="dataset root")
    ...
    cfg = config_from_args(SRConfig, args, flag_map={"data": "data.root"})

A training verb whose config has ``data`` and ``train.{out_dir,max_steps,resume}`` takes the common run
options from ``add_run_args`` and lists only its own flags (see that function).
"""
from __future__ import annotations

import argparse
from typing import Any, TypeVar

from .config import load_config

C = TypeVar("C")


def add_app_parser(subparsers: argparse._SubParsersAction, app: str, help: str,
                   metavar: str = "VERB") -> argparse._SubParsersAction:
    """The ``cvsuite <app>`` parser; returns its verbs' subparsers (same parser class as the app's, so
    errors stay one line). ``cvsuite <app>`` without a verb prints the app's help and exits 2. E.g.::

        sub = add_app_parser(subparsers, "mot", help="multi-object tracking")
        p = sub.add_parser("train", help="train the embedding")
    """
    parser = subparsers.add_parser(app, help=help)
    sub = parser.add_subparsers(dest=f"{app}_command", metavar=metavar, parser_class=type(parser))
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    return sub


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``key=value`` overrides. The overrides may stand anywhere on the command
    line, also right after an option that takes several values: ``shared.cli.OneLineParser`` pulls
    every ``dotted.key=value`` token out before argparse runs (a token that is the value of a
    one-value option, e.g. ``--out a=b``, stays that option's value)."""
    parser.add_argument("--config", metavar="FILE", help="YAML config (defaults come from the dataclass)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides anywhere on the line, e.g. train.max_steps=200 train.lr=3e-4")


def config_from_args(cls: type[C], args: argparse.Namespace, flag_map: dict[str, str] | None = None) -> C:
    """Defaults < ``--config`` file < convenience flags (when given) < ``key=value`` overrides."""
    overrides: list[str] = []
    for flag, key in (flag_map or {}).items():
        value: Any = getattr(args, flag, None)
        if value is None or value is False and not isinstance(value, bool):
            continue
        if isinstance(value, bool):
            if not value:
                continue
            value = "true"
        overrides.append(f"{key}={value}")
    overrides += list(getattr(args, "overrides", None) or [])
    return load_config(cls, getattr(args, "config", None), overrides)


def add_force_arg(parser: argparse.ArgumentParser) -> None:
    """``--force``: allow overwriting existing files cvsuite did not write (inputs are never overwritten)."""
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing output files that cvsuite did not write (never an input)")


# ``config_from_args`` flag map of the options ``add_run_args`` adds (an absent flag is skipped).
RUN_FLAGS: dict[str, str] = {"data": "data", "out": "train.out_dir", "steps": "train.max_steps",
                             "resume": "train.resume"}


def add_run_args(parser: argparse.ArgumentParser, data_help: str, resume: bool = True) -> None:
    """The options every training verb shares: ``--config`` + overrides, ``--data``, ``--out``
    (train.out_dir), ``--steps`` (train.max_steps), ``--resume`` (unless ``resume=False``) and ``--force``.
    Map them with ``RUN_FLAGS`` and add only the verb's own flags, e.g.::

        p = sub.add_parser("train", help="train the embedding")
        add_run_args(p, data_help="root of training sequences (data=)")
        p.add_argument("--labels", help="full | none (labels=)")
        ...
        cfg = config_from_args(TrainConfig, args, flag_map={**RUN_FLAGS, "labels": "labels"})
    """
    add_config_args(parser)
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--out", help="run folder (train.out_dir=)")
    parser.add_argument("--steps", type=int, help="optimizer steps (train.max_steps=)")
    if resume:
        parser.add_argument("--resume", action="store_true", help="continue the run in --out (train.resume=true)")
    add_force_arg(parser)
