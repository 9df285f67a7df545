"""``cvsuite rl {train,eval,infer}`` on bad input (issue 17: unknown env/task, steps ≤ 0, action repeat 0,
replay capacity below the batch, weights of another agent or app, guard rules)."""
from __future__ import annotations

from pathlib import Path

from .harness import BadCase, garbage, zero_byte

QUIET = ["train.progress=false", "train.tensorboard=false"]


def policy(path: Path, env: str = "dmc:cartpole-swingup", agent: str = "curl-sac") -> Path:
    """A real (untrained, tiny) policy file as ``rl train`` writes it."""
    import torch

    from apps.rl.train import RLConfig, build_agent, policy_meta
    from apps.rl.envs import make_env
    from shared.weights import save_safetensors

    cfg = RLConfig(env=env, agent=agent)
    cfg.sac.hidden_dim, cfg.sac.num_filters, cfg.der.hidden = 8, 4, 8
    env_obj = make_env(env, 0)
    agent_obj = build_agent(cfg, env_obj, torch.device("cpu"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(agent_obj.policy_state(), path, metadata=policy_meta(cfg, env_obj))
    return path


def other_app_weights(path: Path) -> Path:
    import torch

    from shared.weights import save_safetensors

    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors({"conv.weight": torch.zeros(4, 3, 3, 3)}, path, metadata={"format": "cvsuite"})
    return path


def _train(t: Path, *extra: object) -> list:
    return ["rl", "train", "--out", t / "out" / "run", "--steps", 5, *QUIET, *extra]


CASES = [
    BadCase("rl-train-unknown-task", lambda t: _train(t, "--env", "dmc:cartpole-flyaway"), exit_code=2,
            match="unknown DeepMind Control task"),
    BadCase("rl-train-unknown-suite", lambda t: _train(t, "--env", "gym:CartPole-v1"), exit_code=2,
            match="unknown environment suite"),
    BadCase("rl-train-no-suite", lambda t: _train(t, "--env", "cartpole"), exit_code=2, match="dmc:"),
    BadCase("rl-train-unknown-game", lambda t: _train(t, "--env", "atari:NotAGame", "--agent", "der"), exit_code=2,
            match="unknown Atari game"),
    BadCase("rl-train-unknown-agent", lambda t: _train(t, "--agent", "ppo"), exit_code=2, match="unknown agent"),
    BadCase("rl-train-agent-of-other-suite", lambda t: _train(t, "--env", "atari:Pong", "--agent", "curl-sac"),
            exit_code=2, match="for DeepMind Control"),
    BadCase("rl-train-zero-steps", lambda t: _train(t, "--steps", 0), exit_code=2, match="--steps"),
    BadCase("rl-train-negative-steps", lambda t: ["rl", "train", "--out", t / "out" / "r", "train.max_steps=-3"],
            exit_code=2, match="max_steps"),
    BadCase("rl-train-action-repeat-zero", lambda t: _train(t, "env_cfg.action_repeat=0"), exit_code=2,
            match="action_repeat"),
    BadCase("rl-train-capacity-below-batch", lambda t: _train(t, "train.replay_capacity=4", "sac.batch_size=8"),
            exit_code=2, match="smaller than the batch"),
    # walker's model load makes MuJoCo log a deprecation notice: it must not reach stderr beside the error
    BadCase("rl-train-walker-capacity-below-batch", lambda t: _train(t, "--env", "dmc:walker-walk",
                                                                     "train.replay_capacity=4", "sac.batch_size=8"),
            exit_code=2, match="smaller than the batch"),
    BadCase("rl-train-crop-larger-than-render", lambda t: _train(t, "env_cfg.crop=120"), exit_code=2, match="crop"),
    BadCase("rl-train-resume-nothing", lambda t: _train(t, "--resume"), exit_code=1, match="no checkpoint"),
    BadCase("rl-eval-other-app-weights", lambda t: ["rl", "eval", "--weights", other_app_weights(t / "in" / "w.safetensors"),
                                                   "--env", "dmc:cartpole-swingup", "--episodes", 1],
            exit_code=1, match="not an RL policy"),
    BadCase("rl-eval-zero-byte-weights", lambda t: ["rl", "eval", "--weights", zero_byte(t / "in" / "w.safetensors"),
                                                   "--env", "dmc:cartpole-swingup"], exit_code=1, match="w.safetensors"),
    BadCase("rl-eval-garbage-weights", lambda t: ["rl", "eval", "--weights", garbage(t / "in" / "w.safetensors"),
                                                 "--env", "dmc:cartpole-swingup"], exit_code=1, match="w.safetensors"),
    BadCase("rl-eval-policy-of-other-env", lambda t: ["rl", "eval", "--weights", policy(t / "in" / "p.safetensors"),
                                                     "--env", "atari:Pong", "--episodes", 1],
            exit_code=2, match="trained on dmc:cartpole-swingup"),
    BadCase("rl-eval-zero-episodes", lambda t: ["rl", "eval", "--weights", policy(t / "in" / "p.safetensors"),
                                               "--env", "dmc:cartpole-swingup", "--episodes", 0],
            exit_code=2, match="--episodes"),
    BadCase("rl-eval-video-not-mp4", lambda t: ["rl", "eval", "--weights", policy(t / "in" / "p.safetensors"),
                                               "--env", "dmc:cartpole-swingup", "--video", t / "out" / "v.gif"],
            exit_code=2, match=".mp4"),
    BadCase("rl-eval-json-over-weights", lambda t: ["rl", "eval", "--weights", policy(t / "in" / "p.safetensors"),
                                                   "--env", "dmc:cartpole-swingup", "--json", t / "in" / "p.safetensors"],
            exit_code=2, match="is the input"),
    BadCase("rl-infer-zero-steps", lambda t: ["rl", "infer", "--weights", policy(t / "in" / "p.safetensors"),
                                             "--env", "dmc:cartpole-swingup", "--steps", 0, "--out", t / "out" / "a.json"],
            exit_code=2, match="--steps"),
    BadCase("rl-infer-no-shipped-policy", lambda t: ["rl", "infer", "--env", "dmc:walker-walk", "--out",
                                                    t / "out" / "a.json"], exit_code=2, match="no shipped policy"),
    BadCase("rl-infer-foreign-output", lambda t: ["rl", "infer", "--weights", policy(t / "in" / "p.safetensors"),
                                                 "--env", "dmc:cartpole-swingup", "--steps", 2,
                                                 "--out", garbage(t / "out" / "mine.json")],
            exit_code=2, match="--force"),
]
