"""Runs every app's bad-input cases (``tests/badinput/cases_<app>.py``) through the shared runner."""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

from . import harness


def _collect() -> list[harness.BadCase]:
    cases: list[harness.BadCase] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("cases_"):
            cases += importlib.import_module(f"{__package__}.{info.name}").CASES
    ids = [c.id for c in cases]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicated, f"duplicate case ids: {duplicated}"
    return cases


CASES = _collect()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: harness.BadCase, tmp_path: Path) -> None:
    harness.run_case(case, tmp_path)
