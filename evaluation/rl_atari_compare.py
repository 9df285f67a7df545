"""CURL-DER vs DER on one Atari game at the CPU recipe's budget, scored on the *reported* episodes.

Each (agent, seed) run is the CPU recipe (``configs/atari_curl_der_cpu.yaml``) trained by
``evaluation.bench_rl.cpu_recipe_run`` (the same call, folder names and seeds as ``bench_rl --sections
compare``; the shipped RoadRunner policy is the ``curl-der`` seed-0 run of 10,000 steps). The run's own
final evaluation (env seed ``seed + 10000``) is the validation score; every run is then scored on the
same reported episodes (env seed ``--report-seed``, default 0: the shipped policy's), next to the
image-blind control (that policy fed black frames), the random policy and the best constant action on
those episodes. For the ``curl-der`` seed-0 run the float16 copy that ``tools/ship_rl_weights.py``
makes is rebuilt and its sha256 compared with ``weights/MANIFEST.json`` (a byte-identity rerun).

Resumable piece by piece: a finished run, a run's reported scores and the controls are cached in the
run folders; a killed run continues from its checkpoint. ``--stop-after-min`` starts no new training
after that many minutes, so each call fits a CPU slot.

    python -m evaluation.rl_atari_compare --game RoadRunner --steps 10000 --agents curl-der der --seeds 0 \\
        --out runs/rl_atari_rr                                  # one pair; repeat per seed
    python -m evaluation.rl_atari_compare --game RoadRunner --steps 10000 --seeds 0 1 2 --out runs/rl_atari_rr \\
        --report evaluation/results/bench_rl_compare_atari_roadrunner_10000.json   # the table
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluation.bench_rl import compare_run_dir as run_dir  # the folders of bench_rl's compare section

ROOT = Path(__file__).resolve().parents[1]


def fp16_copy_sha256(model: Path, scratch: Path) -> str:
    """sha256 of the float16 copy ``tools/ship_rl_weights.py`` writes for ``model`` (written to ``scratch``)."""
    from shared.weights import save_float16_copy

    save_float16_copy(model, scratch)
    return hashlib.sha256(scratch.read_bytes()).hexdigest()


def score_run(run: Path, env: str, episodes: int, report_seed: int) -> dict[str, Any]:
    """The run's policy and its image-blind control on the reported episodes (cached in the run folder)."""
    from apps.rl.evaluate import blind_policy_returns, evaluate_file

    cache = run / f"reported_eval_seed{report_seed}_{episodes}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    model = run / "model.safetensors"
    policy = evaluate_file(model, env, episodes=episodes, seed=report_seed)
    blind = blind_policy_returns(model, env, episodes, report_seed)
    scores = {"env_seed": report_seed, "episodes": episodes,
              "policy": {k: policy[k] for k in ("mean_return", "std_return", "returns", "episode_lengths")},
              "blind_policy": blind}
    cache.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


def controls(env: str, episodes: int, report_seed: int, out: Path) -> dict[str, Any]:
    """Random policy and every constant action on the reported episodes (policy-independent; cached)."""
    from apps.rl.evaluate import constant_action_returns, random_policy_returns

    cache = out / f"controls_{env.replace(':', '_')}_seed{report_seed}_{episodes}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    result = {"env_seed": report_seed, "episodes": episodes,
              "random_policy": random_policy_returns(env, episodes, report_seed),
              "constant_actions": constant_action_returns(env, episodes, report_seed)}
    cache.write_text(json.dumps(result, indent=1) + "\n")
    return result


def byte_identity(run: Path, manifest_name: str, env: str, episodes: int, report_seed: int) -> dict[str, Any]:
    """Rebuild the shipped float16 file from ``run``, compare its sha256 with the manifest's and score the
    float16 copy on the reported episodes (the shipped file's score; the run's own float32 weights can act
    differently where two actions' values round together)."""
    from apps.rl.evaluate import evaluate_file

    manifest = json.loads((ROOT / "weights" / "MANIFEST.json").read_text())[manifest_name]
    copy = run / "shipped_copy_fp16.safetensors"
    sha = fp16_copy_sha256(run / "model.safetensors", copy)
    scored = evaluate_file(copy, env, episodes=episodes, seed=report_seed)
    return {"manifest_entry": manifest_name, "manifest_sha256": manifest["sha256"], "rerun_sha256": sha,
            "identical": sha == manifest["sha256"], "manifest_mean_return": manifest["metrics"].get("mean_return"),
            "fp16_copy_reported": {k: scored[k] for k in ("mean_return", "std_return", "returns")}}


def summarise(per_run: dict[str, dict[int, dict[str, Any]]], validation_random: dict[int, float],
              control: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std over seeds (population std) of each agent's per-run mean return, reported and validation."""
    agents: dict[str, Any] = {}
    for agent, runs in per_run.items():
        seeds = sorted(runs)
        reported = [runs[s]["reported"]["policy"]["mean_return"] for s in seeds]
        blind = [runs[s]["reported"]["blind_policy"]["mean_return"] for s in seeds]
        validation = [runs[s]["validation"]["mean_return"] for s in seeds]
        agents[agent] = {"seeds": seeds,
                         "reported": {"mean_return": float(np.mean(reported)), "std_over_seeds": float(np.std(reported)),
                                      "per_seed": reported},
                         "blind_policy_reported": {"mean_return": float(np.mean(blind)),
                                                   "std_over_seeds": float(np.std(blind)), "per_seed": blind},
                         "validation": {"mean_return": float(np.mean(validation)),
                                        "std_over_seeds": float(np.std(validation)), "per_seed": validation}}
    const = control["constant_actions"]
    rand_val = [validation_random[s] for s in sorted(validation_random)]
    return {"agents": agents,
            "reported_controls": {"random_policy": control["random_policy"]["mean_return"],
                                  "random_policy_std_over_episodes": control["random_policy"]["std_return"],
                                  "best_constant_action": const["best_action"],
                                  "best_constant_action_mean_return": const["best_mean_return"]},
            "validation_random_policy": {"mean_return": float(np.mean(rand_val)) if rand_val else float("nan"),
                                         "std_over_seeds": float(np.std(rand_val)) if rand_val else float("nan"),
                                         "per_seed": rand_val}}


def main() -> None:
    from apps.rl.evaluate import random_policy_returns
    from evaluation.bench_rl import cpu_recipe_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="RoadRunner")
    parser.add_argument("--agents", nargs="*", default=["curl-der", "der"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--init", type=int, default=1600, help="learning starts after this many agent steps")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--report-seed", type=int, default=0, help="env seed of the reported episodes")
    parser.add_argument("--out", default="runs/rl_atari_compare")
    parser.add_argument("--stop-after-min", type=float, default=0, help="start no new training after this (0: never)")
    parser.add_argument("--report", help="write the summary JSON here (only runs that are finished are used)")
    parser.add_argument("--shipped", default="rl_curl_der_road_runner",
                        help="manifest entry the curl-der seed-0 run is compared with byte by byte")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = f"atari:{args.game}"
    started = time.perf_counter()
    per_run: dict[str, dict[int, dict[str, Any]]] = {}
    identity = None
    for seed in args.seeds:  # seed by seed, so an interrupted series still has complete pairs
        for agent in args.agents:
            run = run_dir(out, env, agent, seed, args.steps)
            finished = (run / "eval.json").is_file()
            if not finished and args.report:
                continue  # the report uses finished runs only
            if not finished and args.stop_after_min and time.perf_counter() - started > args.stop_after_min * 60:
                print(f"time budget spent: {agent} seed {seed} not started", flush=True)
                continue
            t0 = time.perf_counter()
            validation = cpu_recipe_run(agent, env, args.steps, seed, args.init, args.episodes, run)
            reported = score_run(run, env, args.episodes, args.report_seed)
            per_run.setdefault(agent, {})[seed] = {"validation": validation, "reported": reported, "run": str(run)}
            print(f"{agent} seed {seed}: validation {validation['mean_return']:.1f}, reported "
                  f"{reported['policy']['mean_return']:.1f} (blind {reported['blind_policy']['mean_return']:.1f}) "
                  f"[{time.perf_counter() - t0:.0f} s this call]", flush=True)
            if agent == "curl-der" and seed == 0 and args.shipped:
                identity = byte_identity(run, args.shipped, env, args.episodes, args.report_seed)
                print(f"byte identity with {args.shipped}: {identity}", flush=True)
    control = controls(env, args.episodes, args.report_seed, out)
    print(f"controls: random {control['random_policy']['mean_return']:.1f}, best constant action "
          f"{control['constant_actions']['best_action']} {control['constant_actions']['best_mean_return']:.1f}", flush=True)
    if args.report:
        validation_random = {s: random_policy_returns(env, args.episodes, s + 10_000)["mean_return"]
                             for s in sorted({s for runs in per_run.values() for s in runs})}
        summary = {"env": env, "steps": args.steps, "learn_start": args.init, "seeds": args.seeds,
                   "eval_episodes": args.episodes, "reported_env_seed": args.report_seed,
                   "validation_env_seed": "seed + 10000 (each run's own final evaluation)",
                   "recipe": "apps/rl/configs/atari_curl_der_cpu.yaml, 1 torch thread",
                   "complete": all(len(per_run.get(a, {})) == len(args.seeds) for a in args.agents),
                   **summarise(per_run, validation_random, control), "byte_identity": identity,
                   "per_run": {a: {str(s): r for s, r in runs.items()} for a, runs in per_run.items()},
                   "constant_actions_per_action": control["constant_actions"]["per_action_mean_return"]}
        Path(args.report).write_text(json.dumps(summary, indent=1) + "\n")
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
