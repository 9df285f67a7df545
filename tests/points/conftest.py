"""Tiny synthetic ShapeNetPart data for the points tests (both layouts, generated once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.points.synth import write_dataset

TINY_SHAPES, TINY_POINTS, TINY_SEED = 20, 128, 3


@pytest.fixture(scope="session")
def tiny_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("points_tiny")
    for layout in ("h5", "txt"):
        write_dataset(root / layout, layout, TINY_SHAPES, TINY_SEED, TINY_POINTS)
    return {"h5": root / "h5", "txt": root / "txt"}
