"""Concurrent commands writing one folder (issue 25 item 6): before, 10 ``hand eval`` runs writing
one folder lost ledger entries in 2 of 5 rounds (the read-modify-write was not locked), and later
reruns were refused. The ledger update now holds an ``fcntl.flock``; every entry survives."""
from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
from pathlib import Path

from shared.guard import LEDGER_NAME, is_own_output

from .cases_guard import _hand_pred

WRITERS = 8
ROUNDS = 3  # the race lost entries in about 1 round of 3 before the lock


def _eval_into(argv: list[str]) -> None:
    from shared.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    raise SystemExit(code)


def test_concurrent_hand_eval_writers_keep_every_ledger_entry(tmp_path: Path) -> None:
    gt, pred = _hand_pred(tmp_path)
    for round_ in range(ROUNDS):
        _one_round(gt, pred, tmp_path / f"out{round_}")


def _one_round(gt: Path, pred: Path, out: Path) -> None:
    argvs = [["hand", "eval", "--gt", str(gt), "--pred", str(pred), "--json", str(out / f"s{k}.json")]
             for k in range(WRITERS)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_eval_into, args=(argv,)) for argv in argvs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    ledger = json.loads((out / LEDGER_NAME).read_text())
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert sorted(ledger) == written and len(written) == 2 * WRITERS  # s<k>.json + s<k>_pck.png each
    assert all(is_own_output(out / name) for name in written)
    # so a rerun of any of them needs no --force
    from shared.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argvs[0]) == 0
