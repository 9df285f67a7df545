"""Config loading/overrides and the top-level CLI's behaviour on good and bad input."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shared.config import load_config, save_config
from shared.engine import TrainConfig
from shared.errors import UsageError


@dataclass
class Inner:
    width: int = 8
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class AppConfig:
    method: str = "simclr"
    temperature: float = 0.5
    inner: Inner = field(default_factory=Inner)
    train: TrainConfig = field(default_factory=TrainConfig)
    weights: str | None = None


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: wmse\ninner:\n  width: 16\ntrain:\n  max_steps: 50\n")
    cfg = load_config(AppConfig, path, ["train.lr=3e-4", "inner.names=[x, y]", "weights=w.safetensors",
                                        "temperature=1"])
    assert cfg.method == "wmse" and cfg.inner.width == 16 and cfg.train.max_steps == 50
    assert cfg.train.lr == pytest.approx(3e-4) and cfg.inner.names == ["x", "y"]
    assert cfg.weights == "w.safetensors" and isinstance(cfg.temperature, float)
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(AppConfig, tmp_path / "saved.yaml") == cfg


@pytest.mark.parametrize("override,message", [
    ("train.max_stepz=3", "unknown config key"),
    ("inner.width=abc", "must be int"),
    ("train.resume=maybe", "true/false"),
    ("novalue", "key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(UsageError, match=message):
        load_config(AppConfig, None, [override])


def test_help_and_doctor(run_cli):
    code, out, _ = run_cli(["--help"])
    assert code == 0 and "doctor" in out and "demo" in out
    code, out, _ = run_cli(["doctor"])
    assert code == 0 and "torch 2.14.1" in out and "CUDA" in out and "apps:" in out


def test_bad_command_is_one_line(run_cli):
    code, out, err = run_cli(["frobnicate"])
    assert code == 2 and err.count("\n") == 1 and err.startswith("cvsuite: error:")
    assert "Traceback" not in err
