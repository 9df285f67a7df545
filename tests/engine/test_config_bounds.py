"""Declared config bounds (``shared.config.bounded``) are enforced on every read, naming the key."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shared.config import bounded, check_bounds, load_config
from shared.errors import UsageError


@dataclass
class _Inner:
    rate: float = bounded(0.5, ge=0.0, lt=1.0)
    sizes: list[int] = bounded(default_factory=lambda: [3, 5], ge=1, min_len=1, max_len=3)
    maybe: int | None = bounded(None, gt=0)


@dataclass
class _Outer:
    steps: int = bounded(10, ge=1)
    inner: _Inner = field(default_factory=_Inner)


def test_defaults_pass_and_in_range_overrides_pass() -> None:
    cfg = load_config(_Outer, None, ["steps=3", "inner.rate=0.0", "inner.sizes=[1,2,3]", "inner.maybe=4"])
    assert (cfg.steps, cfg.inner.rate, cfg.inner.sizes, cfg.inner.maybe) == (3, 0.0, [1, 2, 3], 4)


@pytest.mark.parametrize("override, key", [
    ("steps=0", "'steps' must be >= 1"),
    ("inner.rate=1.0", "'inner.rate' must be < 1.0"),
    ("inner.rate=-0.1", "'inner.rate' must be >= 0.0"),
    ("inner.sizes=[]", "'inner.sizes' needs at least 1"),
    ("inner.sizes=[1,2,3,4]", "'inner.sizes' takes at most 3"),
    ("inner.sizes=[2,0]", "'inner.sizes' must be >= 1"),
    ("inner.maybe=0", "'inner.maybe' must be > 0"),
])
def test_out_of_range_is_one_usage_error_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(UsageError) as info:
        load_config(_Outer, None, [override])
    assert key in str(info.value) and "\n" not in str(info.value)


def test_yaml_values_are_checked_too(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  rate: 2.0\n")
    with pytest.raises(UsageError, match="inner.rate"):
        load_config(_Outer, path)


def test_check_bounds_on_a_constructed_config() -> None:
    check_bounds(_Outer())
    with pytest.raises(UsageError, match="'steps'"):
        check_bounds(_Outer(steps=-5))
