"""Tiny runs of both suites through the CLI; exact resume after a kill; eval JSON + H.264 video; infer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import apps.rl.train as rl_train

QUIET = ["train.progress=false", "train.tensorboard=false", "train.threads=1"]
DMC_TINY = ["sac.batch_size=8", "sac.init_steps=8", "sac.hidden_dim=16", "sac.num_filters=4", "sac.feature_dim=8",
            "env_cfg.time_limit=0.5", "train.replay_capacity=64", "train.eval_episodes=1", "train.eval_every=0",
            "train.log_every=5", "train.ckpt_every=5", *QUIET]
ATARI_TINY = ["der.batch_size=8", "der.init_steps=8", "der.hidden=16", "der.multi_step=3", "der.target_update=5",
              "env_cfg.max_episode_frames=48", "train.replay_capacity=64", "train.eval_episodes=1",
              "train.eval_every=0", "train.log_every=5", "train.ckpt_every=5", *QUIET]


def _train(run_cli, env: str, agent: str, out: Path, steps: int, extra: list[str]) -> tuple[int, str, str]:
    return run_cli(["rl", "train", "--env", env, "--agent", agent, "--steps", steps, "--out", out, *extra])


@pytest.mark.parametrize("env,agent,extra", [("dmc:cartpole-swingup", "curl-sac", DMC_TINY),
                                             ("atari:Pong", "curl-der", ATARI_TINY)])
def test_killed_run_resumes_exactly(run_cli, tmp_path: Path, monkeypatch, env: str, agent: str, extra: list[str]) -> None:
    code, _, err = _train(run_cli, env, agent, tmp_path / "straight", 30, extra)
    assert code == 0, err
    saves = []
    real_save = rl_train.save_atomic

    def save_then_die(obj, path):
        real_save(obj, path)
        saves.append(obj["step"])
        if len(saves) == 2:
            raise KeyboardInterrupt  # killed right after the second checkpoint

    monkeypatch.setattr(rl_train, "save_atomic", save_then_die)
    code, _, _ = _train(run_cli, env, agent, tmp_path / "killed", 30, extra)
    assert code == 130 and 0 < saves[-1] < 30
    monkeypatch.setattr(rl_train, "save_atomic", real_save)
    code, out, err = _train(run_cli, env, agent, tmp_path / "killed", 30, [*extra, "--resume"])
    assert code == 0, err
    straight = (tmp_path / "straight" / "model.safetensors").read_bytes()
    resumed = (tmp_path / "killed" / "model.safetensors").read_bytes()
    assert straight == resumed
    a = json.loads((tmp_path / "straight" / "eval.json").read_text())["final"]
    b = json.loads((tmp_path / "killed" / "eval.json").read_text())["final"]
    assert a["returns"] == b["returns"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # the resumed run dropped what the killed one logged after its checkpoint


def test_dmc_eval_json_video_and_infer(run_cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = _train(run_cli, "dmc:cartpole-swingup", "sac", run, 12, DMC_TINY)
    assert code == 0, err
    assert "agent steps" in out and (run / "checkpoints" / "last.pt").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("env_steps_per_s" in r for r in rows) and any("eval_mean_return" in r for r in rows)
    import csv

    with (run / "metrics.csv").open() as handle:
        header = next(csv.reader(handle))
    assert {"critic_loss", "actor_loss", "alpha", "eval_mean_return", "env_steps_per_s"} <= set(header)
    weights = run / "model.safetensors"
    code, out, err = run_cli(["rl", "eval", "--weights", weights, "--env", "dmc:cartpole-swingup", "--episodes", 2,
                              "--json", tmp_path / "e.json", "--video", tmp_path / "v.mp4"])
    assert code == 0, err
    result = json.loads((tmp_path / "e.json").read_text())
    assert len(result["returns"]) == 2 and result["mean_return"] == pytest.approx(np.mean(result["returns"]))
    assert result["std_return"] == pytest.approx(np.std(result["returns"]))
    import imageio_ffmpeg

    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(tmp_path / "v.mp4")], capture_output=True, text=True)
    assert "h264" in probe.stderr and "yuv420p" in probe.stderr and "300x300" in probe.stderr
    code, out, err = run_cli(["rl", "infer", "--weights", weights, "--env", "dmc:cartpole-swingup", "--steps", 20,
                              "--out", tmp_path / "i.json"])
    assert code == 0, err
    played = json.loads((tmp_path / "i.json").read_text())
    assert len(played["actions"]) == 20 and len(played["actions"][0]) == 1 and len(played["rewards"]) == 20
    assert all(-1.0 <= a[0] <= 1.0 for a in played["actions"])


def test_atari_der_baseline_and_infer(run_cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = _train(run_cli, "atari:Pong", "der", run, 20, ATARI_TINY)
    assert code == 0, err
    code, out, err = run_cli(["rl", "infer", "--weights", run / "model.safetensors", "--env", "atari:Pong",
                              "--steps", 15, "--out", tmp_path / "i.json"])
    assert code == 0, err
    played = json.loads((tmp_path / "i.json").read_text())
    assert all(0 <= a < 6 for a in played["actions"])
    # a demo video cut to its first frames (the shipping tool's --video-seconds)
    import imageio_ffmpeg

    from apps.rl.evaluate import evaluate_file

    result = evaluate_file(run / "model.safetensors", "atari:Pong", episodes=1, video=tmp_path / "v.mp4",
                           video_max_frames=5)
    assert result["episode_lengths"][0] + 1 > 5  # the episode has more frames than the video keeps
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "v.mp4"))[0] == 5
    from apps.rl.evaluate import constant_action_returns

    constant = constant_action_returns("atari:Pong", episodes=1, seed=0, max_steps=3)
    assert len(constant["per_action_mean_return"]) == 6
    assert constant["best_mean_return"] == max(constant["per_action_mean_return"])


def test_paper_and_cpu_configs_run_an_update(run_cli, tmp_path: Path) -> None:
    configs = Path(rl_train.__file__).parent / "configs"
    for name in sorted(p.name for p in configs.glob("*.yaml")):
        # the recipe as written, on short episodes, with the warm-up cut so 1 update runs at full size
        code, _, err = run_cli(["rl", "train", "--config", configs / name, "--steps", 4, "--out", tmp_path / name,
                                "train.replay_capacity=256", "train.eval_episodes=1", "env_cfg.time_limit=0.2",
                                "env_cfg.max_episode_frames=8", "sac.init_steps=3", "der.init_steps=3", *QUIET])
        assert code == 0, f"{name}: {err}"


def test_unrenderable_backend_is_one_line() -> None:
    """MUJOCO_GL naming a backend this machine lacks: one error line that names MUJOCO_GL and the packages."""
    env = {**os.environ, "MUJOCO_GL": "osmesa", "PYTHONPATH": str(Path(rl_train.__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-m", "shared.cli", "rl", "infer", "--weights", "none.safetensors",
                           "--env", "dmc:cartpole-swingup", "--out", "/nonexistent/x.json"],
                          capture_output=True, text=True, env=env, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("cvsuite: error:"), proc.stderr
    assert "MUJOCO_GL" in lines[0] and "libegl1" in lines[0]


def test_rendering_status_reports_ok_here() -> None:
    from apps.rl.envs import rendering_status

    ok, why = rendering_status()
    assert ok, why
    assert "MUJOCO_GL=egl" in why
