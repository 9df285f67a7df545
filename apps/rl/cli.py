"""``cvsuite rl {train,eval,infer}`` and the rl demo."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from shared.cli_utils import add_config_args, add_force_arg, config_from_args
from shared.errors import UsageError
from shared.guard import OutputGuard

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")


def cmd_train(args: argparse.Namespace) -> int:
    from .train import RLConfig, check_agent_env, run_training

    _positive("--steps", args.steps)
    cfg = config_from_args(RLConfig, args, flag_map={
        "env": "env", "agent": "agent", "steps": "train.max_steps", "out": "train.out_dir",
        "resume": "train.resume", "seed": "train.seed"})
    check_agent_env(cfg.agent, cfg.env)
    guard = OutputGuard([args.config], force=args.force)
    summary = run_training(cfg, guard=guard)
    ev = summary["eval"]
    fractions = ", ".join(f"{k} {100 * v:.0f} %" for k, v in summary["time_fractions"].items())
    print(f"trained {cfg.agent} on {ev['env']} for {summary['step']} agent steps ({summary['updates']} updates, "
          f"{summary['episodes']} episodes) in {summary['seconds']:.1f} s [learning phase: {fractions}]")
    print(f"evaluation over {ev['episodes']} episodes: return {ev['mean_return']:.1f} ± {ev['std_return']:.1f}; "
          f"policy: {summary['weights']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .envs import parse_env
    from .evaluate import evaluate_file
    from .infer import resolve_weights

    _positive("--episodes", args.episodes)
    parse_env(args.env)  # an unknown name or an environment that cannot render: one line, before anything else
    weights = resolve_weights(args.weights, args.env)
    guard = OutputGuard([weights], force=args.force)
    if args.json:
        guard.file(args.json)
    if args.video:
        if Path(args.video).suffix.lower() != ".mp4":
            raise UsageError(f"--video must name an .mp4 file, got {args.video}")
        guard.file(args.video)
    result = evaluate_file(weights, args.env, episodes=args.episodes, seed=args.seed, device=args.device,
                           video=args.video, guard=guard)
    print(f"{result['agent']} on {result['env']}: return {result['mean_return']:.1f} ± {result['std_return']:.1f} "
          f"over {result['episodes']} episodes")
    if args.json:
        guard.write(args.json, json.dumps(result, indent=2) + "\n")
    if args.video:
        print(f"video of episode 1: {args.video}")
    guard.record()
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .envs import parse_env
    from .infer import resolve_weights, run_policy

    _positive("--steps", args.steps)
    parse_env(args.env)
    weights = resolve_weights(args.weights, args.env)
    guard = OutputGuard([weights], force=args.force)
    out = guard.file(args.out)
    result = run_policy(weights, args.env, args.steps, seed=args.seed, device=args.device)
    guard.write(out, json.dumps(result) + "\n")
    guard.record()
    done = result["completed_episode_returns"]
    print(f"{result['agent']} played {args.steps} steps of {result['env']}: reward {sum(result['rewards']):.1f}"
          f"{f', {len(done)} episode(s) finished' if done else ''}; actions and rewards in {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rl", help="CURL: contrastive pixel RL on DeepMind Control (SAC) and Atari (DER)")
    sub = parser.add_subparsers(dest="rl_command", metavar="VERB", required=True)

    train = sub.add_parser("train", help="train curl-sac | sac-crop | sac (DMC) or curl-der | der (Atari)")
    add_config_args(train)
    train.add_argument("--env", help="dmc:<domain>-<task> (e.g. dmc:cartpole-swingup) or atari:<Game> (env=)")
    train.add_argument("--agent", help="curl-sac | sac-crop | sac | curl-der | der (agent=)")
    train.add_argument("--steps", type=int, help="agent steps (train.max_steps=)")
    train.add_argument("--out", help="run folder (train.out_dir=)")
    train.add_argument("--seed", type=int, help="seed (train.seed=)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out (train.resume=true)")
    add_force_arg(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="mean ± std return of a policy over episodes (+ JSON, + H.264 video)")
    ev.add_argument("--weights", help="model.safetensors of 'rl train' (default: the shipped policy of --env)")
    ev.add_argument("--env", required=True, help="environment the policy was trained on")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    ev.add_argument("--json", help="write the results (mean_return, std_return, returns) here")
    ev.add_argument("--video", help="write the first episode as an H.264 .mp4 here")
    ev.add_argument("--device", default="cpu")
    add_force_arg(ev)
    ev.set_defaults(func=cmd_eval)

    infer = sub.add_parser("infer", help="play the policy for N steps; actions and rewards to JSON")
    infer.add_argument("--weights", help="model.safetensors of 'rl train' (default: the shipped policy of --env)")
    infer.add_argument("--env", required=True, help="environment the policy was trained on")
    infer.add_argument("--steps", type=int, default=100, help="agent steps to play")
    infer.add_argument("--seed", type=int, default=0)
    infer.add_argument("--out", required=True, help="output .json")
    infer.add_argument("--device", default="cpu")
    add_force_arg(infer)
    infer.set_defaults(func=cmd_infer)


def doctor() -> dict[str, str]:
    """What ``cvsuite doctor`` reports for this app: whether DeepMind Control renders pixels here (EGL)."""
    from .envs import rendering_status

    ok, why = rendering_status()
    return {"DMC pixel rendering (MUJOCO_GL=egl)": "yes" if ok else f"no: {why}"}


def demo(out_dir: Path, force: bool = False) -> dict[str, Any]:
    """Evaluate the shipped cartpole-swingup policy on 2 episodes next to a random policy; write a video."""
    from .evaluate import evaluate_file, random_policy_returns
    from .infer import resolve_weights

    started = time.perf_counter()
    weights = resolve_weights(None, "dmc:cartpole-swingup")
    guard = OutputGuard([weights], force=force)
    video = guard.file(Path(out_dir) / "cartpole_swingup.mp4")
    out_json = guard.file(Path(out_dir) / "eval.json")
    result = evaluate_file(weights, "dmc:cartpole-swingup", episodes=2, video=video, guard=guard)
    base = random_policy_returns("dmc:cartpole-swingup", 2, 0)
    result["random_policy"] = base
    guard.write(out_json, json.dumps(result, indent=2) + "\n")
    guard.record()
    return {"policy": weights.name, "mean_return": result["mean_return"],
            "random_policy_mean_return": base["mean_return"], "video": str(video),
            "seconds": round(time.perf_counter() - started, 1)}
