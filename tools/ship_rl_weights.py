"""Ship a trained RL policy: fp16 copy of the acting network, its evaluation (10 episodes, seed 0)
next to a random policy and an image-blind control (the policy fed black frames), a demo video and a
manifest entry. The environment, agent and step count come from the run's own files.

    cvsuite rl train --config apps/rl/configs/dmc_curl_sac_cpu.yaml --out RUN --seed 0   # 1 thread
    python tools/ship_rl_weights.py RUN
    python tools/ship_rl_weights.py RUN --recipe "cvsuite rl train ... --out RUN" --note "..."   # another env
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.rl.envs import parse_env  # noqa: E402
from apps.rl.evaluate import (blind_policy_returns, constant_action_returns, evaluate_file,  # noqa: E402
                              random_policy_returns)
from apps.rl.infer import SHIPPED  # noqa: E402
from shared.guard import OutputGuard  # noqa: E402
from shared.weights import WEIGHTS_DIR, add_manifest_entry, save_float16_copy  # noqa: E402

MEDIA = Path(__file__).resolve().parent.parent / "apps" / "rl" / "media"
CARTPOLE_RECIPE = "OMP_NUM_THREADS=1 cvsuite rl train --config apps/rl/configs/dmc_curl_sac_cpu.yaml --out RUN --seed 0 --steps {steps}"
CARTPOLE_NOTE = "CPU recipe: a short budget; paper-scale runs use configs/dmc_curl_sac_paper.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder of 'cvsuite rl train' (model.safetensors, config.yaml)")
    parser.add_argument("--recipe", default=CARTPOLE_RECIPE, help="training command ({steps} is filled in)")
    parser.add_argument("--note", default=CARTPOLE_NOTE)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--video-seconds", type=float, default=0, help="cut the demo video to this length (0: whole episode)")
    args = parser.parse_args()
    run = Path(args.run)
    with safe_open(str(run / "model.safetensors"), "pt") as handle:
        env = parse_env(handle.metadata()["env"]).name
    name = SHIPPED[env.lower()]
    target = WEIGHTS_DIR / f"{name}.safetensors"
    meta = save_float16_copy(run / "model.safetensors", target)
    video = MEDIA / f"{name.removeprefix('rl_')}.mp4"
    if env == "dmc:cartpole-swingup":
        video = MEDIA / "cartpole_swingup_curl_sac.mp4"  # the name the README has linked since the first release
    guard = OutputGuard([target], force=True)
    video.parent.mkdir(parents=True, exist_ok=True)
    result = evaluate_file(target, env, episodes=args.episodes, seed=0, video=video, guard=guard,
                           video_max_frames=int(args.video_seconds * 30) or None)
    guard.record()
    rand = random_policy_returns(env, args.episodes, 0)
    blind = blind_policy_returns(target, env, args.episodes, 0)
    max_steps = yaml.safe_load((run / "config.yaml").read_text())["train"]["max_steps"]
    recipe = (args.recipe.format(steps=max_steps) + "; python tools/ship_rl_weights.py RUN "
              "(acting-network tensors stored as float16)")
    metrics = {"eval_episodes": args.episodes, "eval_seed": 0, "mean_return": round(result["mean_return"], 2),
               "std_return": round(result["std_return"], 2),
               "random_policy_mean_return": round(rand["mean_return"], 2),
               "random_policy_std_return": round(rand["std_return"], 2),
               "blind_policy_mean_return": round(blind["mean_return"], 2),
               "blind_policy_std_return": round(blind["std_return"], 2)}
    constant = None
    if meta["suite"] == "atari":  # a policy that learned one button is no better than the best constant action
        constant = constant_action_returns(env, args.episodes, 0)
        metrics["best_constant_action_mean_return"] = round(constant["best_mean_return"], 2)
    add_manifest_entry(name, target, recipe, metrics, extra={
        "app": "rl", "agent": meta["agent"], "env": env, "train_steps": str(max_steps), "note": args.note})
    print(json.dumps({"weights": str(target), "bytes": target.stat().st_size, **metrics,
                      "returns": result["returns"], "episode_lengths": result["episode_lengths"],
                      "random_returns": rand["returns"], "blind_returns": blind["returns"], "constant_actions": constant,
                      "video": str(video)},
                     indent=1))


if __name__ == "__main__":
    main()
