"""One convention for option names across apps: every training verb takes --data and --out."""
from __future__ import annotations

import argparse

from shared.cli import build_parser

TRAINING_VERBS = ("train", "pretrain", "finetune")
NO_DATASET = {("rl", "train")}  # environments, not datasets: --env instead of --data


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_training_verb_takes_data_and_out() -> None:
    parser, modules, _ = build_parser()
    checked = []
    for app, app_parser in _subparsers(parser).items():
        for verb, verb_parser in _subparsers(app_parser).items():
            if verb not in TRAINING_VERBS:
                continue
            options = {opt for action in verb_parser._actions for opt in action.option_strings}
            assert "--out" in options, f"cvsuite {app} {verb} lacks --out"
            if (app, verb) not in NO_DATASET:
                assert "--data" in options, f"cvsuite {app} {verb} lacks --data"
            checked.append(f"{app} {verb}")
    assert {"sr train", "mot train", "points train", "hand train", "scrl pretrain", "pretrain train"} <= set(checked)
