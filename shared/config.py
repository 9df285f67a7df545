"""One config style for every app: dataclasses, loadable from YAML, overridable with ``key=value``.

Example::

    @dataclass
    class MyConfig:
        lr: float = 1e-3
        train: TrainConfig = field(default_factory=TrainConfig)

    cfg = load_config(MyConfig, "configs/x.yaml", ["lr=0.01", "train.max_steps=200"])
    save_config(cfg, "runs/x/config.yaml")

Unknown keys and values that do not parse as the field's type are errors (no silent typos): an
``int`` field refuses ``1.5``, numbers must be finite. Value ranges are declared where the field is
declared, with :func:`bounded`; one validator (:func:`check_bounds`, run whenever a config is read
from YAML or overrides) enforces them, so a new app gets the checks by declaring them::

    @dataclass
    class ModelConfig:
        width: int = bounded(64, ge=1, le=4096)
        dropout: float = bounded(0.1, ge=0.0, lt=1.0)
        sizes: list[int] = bounded(default_factory=lambda: [3, 5], ge=1, min_len=1)

Cross-field rules still go in ``__post_init__`` (:func:`check_positive` and friends), so a bad value
stops the command while the config is read, before any data is touched.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import UsageError

C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or a CLI string) to ``annotation``; raise UsageError if impossible."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(f"config key {key!r}: cannot use {value!r} ({'; '.join(errors)})")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise UsageError(f"config key {key!r} must be a mapping, got {value!r}")
        return _from_dict(annotation, value, prefix=key + ".")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise UsageError(f"config key {key!r} must be a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise UsageError(f"config key {key!r} must be one of {list(args)}, got {value!r}")
        return value
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise UsageError(f"config key {key!r} must be true/false, got {value!r}")
    if annotation in (int, float):
        return _number(value, annotation, key)
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise UsageError(f"config key {key!r} must be a string, got {value!r}")
        return str(value)
    return value


def _number(value: Any, annotation: type, key: str) -> int | float:
    """``value`` as a finite int or float; an int field never silently drops a fraction (1.5 is an error)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"config key {key!r} must be {annotation.__name__}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"config key {key!r} must be {annotation.__name__}, got {value!r}") from None
    if not math.isfinite(number):
        raise UsageError(f"config key {key!r} must be a finite number, got {value!r}")
    if annotation is float:
        return number
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    if not number.is_integer():
        raise UsageError(f"config key {key!r} must be an integer, got {value!r}")
    return int(number)


def check_positive(section: str, cfg: Any, *names: str) -> None:
    """UsageError unless every named field of ``cfg`` is > 0 (``section`` prefixes the key in the message)."""
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            raise UsageError(f"config key '{section}{name}' must be positive, got {value!r}")


def check_non_negative(section: str, cfg: Any, *names: str) -> None:
    """UsageError unless every named field of ``cfg`` is >= 0."""
    for name in names:
        value = getattr(cfg, name)
        if not value >= 0:
            raise UsageError(f"config key '{section}{name}' must be >= 0, got {value!r}")


def check_finite(section: str, cfg: Any, *names: str) -> None:
    """UsageError unless every named field of ``cfg`` is a finite number (no NaN / inf)."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"config key '{section}{name}' must be a finite number, got {value!r}")


_BOUNDS_KEY = "cvsuite_bounds"


def bounded(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, min_len: int | None = None, max_len: int | None = None) -> Any:
    """A dataclass field with declared bounds (checked by :func:`check_bounds` on every config read).

    Numbers are compared directly; for a list/tuple field the bounds apply to every item and
    ``min_len`` / ``max_len`` to its length. ``None`` values (Optional fields) are not checked.
    """
    bounds = {k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt, min_len=min_len, max_len=max_len).items()
              if v is not None}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={_BOUNDS_KEY: bounds})
    return dataclasses.field(default=default, metadata={_BOUNDS_KEY: bounds})


def _check_value(key: str, value: Any, bounds: dict[str, float]) -> None:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        if "min_len" in bounds and len(value) < bounds["min_len"]:
            raise UsageError(f"config key {key!r} needs at least {bounds['min_len']} item(s), got {list(value)!r}")
        if "max_len" in bounds and len(value) > bounds["max_len"]:
            raise UsageError(f"config key {key!r} takes at most {bounds['max_len']} item(s), got {len(value)}")
        for item in value:
            _check_value(key, item, {k: v for k, v in bounds.items() if k not in ("min_len", "max_len")})
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"config key {key!r} must be a finite number, got {value!r}")
    checks = (("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
              ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<"))
    for name, ok, symbol in checks:
        if name in bounds and not ok(value, bounds[name]):
            raise UsageError(f"config key {key!r} must be {symbol} {bounds[name]}, got {value!r}")


def check_bounds(cfg: Any, prefix: str = "") -> None:
    """UsageError naming the key when a field declared with :func:`bounded` is out of its range (recursive)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_bounds(value, prefix + f.name + ".")
        bounds = f.metadata.get(_BOUNDS_KEY)
        if bounds:
            _check_value(prefix + f.name, value, bounds)


def _from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    types_ = _field_types(cls)
    unknown = set(data) - set(types_)
    if unknown:
        raise UsageError(f"unknown config key {prefix + sorted(unknown)[0]!r}; known: {', '.join(sorted(types_))}")
    base = cls()
    values = {}
    for name, annotation in types_.items():
        if name in data:
            current = getattr(base, name)
            if dataclasses.is_dataclass(current) and isinstance(data[name], dict):
                merged = {**to_dict(current), **data[name]}
                values[name] = _from_dict(type(current), merged, prefix + name + ".")
            else:
                values[name] = _coerce(data[name], annotation, prefix + name)
    return dataclasses.replace(base, **values)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (YAML-safe) of a config dataclass."""
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: C, overrides: list[str]) -> C:
    """Return a copy of ``cfg`` with ``a.b=value`` strings applied (values parsed as YAML scalars)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise UsageError(f"unknown config key {key!r}")
            node = node[part]
        if parts[-1] not in node:
            raise UsageError(f"unknown config key {key!r}; known here: {', '.join(sorted(node))}")
        try:
            parsed = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            parsed = raw
        # keep strings that YAML would turn into dates etc. as written
        node[parts[-1]] = parsed if isinstance(parsed, (bool, int, float, list, dict, type(None))) else raw
    return _from_dict(type(cfg), data)


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Defaults of ``cls``, then the YAML file (if any), then ``overrides``."""
    cfg = cls()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise UsageError(f"config file {path} is not UTF-8 text (byte {exc.start}): not a YAML config") from None
        except OSError as exc:
            raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise UsageError(f"config file {path}{where} is not valid YAML: {problem}") from None
        if not isinstance(data, dict):
            raise UsageError(f"config file {path} must hold a mapping at the top level")
        cfg = _from_dict(cls, data)
    cfg = apply_overrides(cfg, overrides or [])
    check_bounds(cfg)
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the full resolved config as YAML (saved next to every run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .guard import write_atomic

    write_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
