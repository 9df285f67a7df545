"""Scout Atari games for a policy to ship: train one agent with the CPU recipe, compare it with the
random policy on *validation* episodes (env seed ``seed + 10000``, the run's own final evaluation).

The shipped policy's reported numbers use other episodes (``cvsuite rl eval --seed 0``), so the game
is chosen on episodes that are not the reported ones. Resumable: a finished run (eval.json) is reused,
a killed one continues from its checkpoint.

    python -m evaluation.rl_atari_scout --game RoadRunner --agent der --steps 10000 --out runs/rl_scout
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def scout(game: str, agent: str, steps: int, seed: int, episodes: int, init_steps: int, out: Path) -> dict:
    from apps.rl.evaluate import random_policy_returns
    from evaluation.bench_rl import cpu_recipe_run

    run = out / f"{game}_{agent}_s{seed}_{steps}"
    started = time.perf_counter()
    final = cpu_recipe_run(agent, f"atari:{game}", steps, seed, init_steps, episodes, run)
    validation_seed = seed + 10_000  # the episodes of the run's final evaluation
    random = random_policy_returns(f"atari:{game}", episodes, validation_seed)
    row = {"game": game, "agent": agent, "steps": steps, "learn_start": init_steps, "seed": seed,
           "validation_env_seed": validation_seed, "episodes": episodes,
           "policy": {k: final[k] for k in ("mean_return", "std_return", "returns", "episode_lengths")},
           "random_policy": random, "seconds_this_call": time.perf_counter() - started, "run": str(run)}
    print(json.dumps(row, indent=1), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", required=True)
    parser.add_argument("--agent", default="der", choices=["der", "curl-der"])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--init", type=int, default=1600, help="learning starts after this many agent steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--out", default="runs/rl_scout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    row = scout(args.game, args.agent, args.steps, args.seed, args.episodes, args.init, out)
    with (out / "scout.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
