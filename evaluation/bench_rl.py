"""Speed, memory and return figures of ``apps/rl`` (CURL) on one CPU core.

Run through the CPU queue (one torch thread)::

    OMP_NUM_THREADS=1 python -m evaluation.bench_rl --out evaluation/results

Sections (each a median of repeats, peers in the same process on the same inputs):

* ``render``: DMC step + 100×100 render, agent steps/s, default visual settings vs the fast ones the
  app uses (offscreen buffer of the render size, no multisampling, 256² shadow maps); the frames of
  both on the same states compared by mean/max absolute difference, and saved side by side (PNG).
* ``atari``: ALE agent steps/s (frame skip 4, 84×84 grey).
* ``updates``: updates/s of CURL-SAC (paper and CPU sizes, fp32 and bf16 autocast), SAC+crop, pixel
  SAC, CURL-DER and DER.
* ``replay``: resident memory of a full 100k-transition DMC buffer (3×100×100 frames, stack 3)
  against the official layout (obs and next_obs stacks per transition, computed, not allocated).
* ``training``: share of wall time in network updates / environment / acting / replay during a short
  CPU-recipe training run, and its env steps/s.
* ``returns``: a policy file (the shipped cartpole-swingup one) next to a random policy and an
  image-blind control (the same policy fed black frames), same evaluation episodes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from apps.rl.envs import AtariEnv, DMCPixelEnv, parse_env  # noqa: F401  (sets MUJOCO_GL before dm_control)


def _median_rate(run: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_render(tasks: list[str], steps: int, repeats: int, out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in tasks:
        spec = parse_env(name)
        envs = {"default": DMCPixelEnv(spec, 0, fast_render=False), "fast": DMCPixelEnv(spec, 0, fast_render=True)}
        rates = {}
        for label, env in envs.items():
            env.reset(0)
            rng = np.random.default_rng(0)

            def run(env=env, rng=rng) -> int:
                for _ in range(steps):
                    _, _, _, last = env.step(env.sample_action(rng))
                    if last:
                        env.reset(1)
                return steps

            run()  # warm-up (GL context creation)
            rates[label] = _median_rate(run, repeats)
        # the same states through both render settings
        frames = {label: [env.reset(7)] for label, env in envs.items()}
        rng = np.random.default_rng(1)
        for _ in range(20):
            action = envs["fast"].sample_action(rng)
            for label, env in envs.items():
                frames[label].append(env.step(action)[0])
        a = np.stack(frames["default"]).astype(np.int16)
        b = np.stack(frames["fast"]).astype(np.int16)
        diff = np.abs(a - b)
        picture = out / f"rl_render_{spec.domain}_{spec.task}_default_vs_fast.png"
        from PIL import Image

        side = np.concatenate([frames["default"][-1].transpose(1, 2, 0), frames["fast"][-1].transpose(1, 2, 0)], axis=1)
        Image.fromarray(np.repeat(np.repeat(side, 3, 0), 3, 1)).save(picture)
        results[name] = {"action_repeat": envs["fast"].action_repeat,
                         "agent_steps_per_s_default": rates["default"], "agent_steps_per_s_fast": rates["fast"],
                         "speedup": rates["fast"] / rates["default"], "mean_abs_diff": float(diff.mean()),
                         "max_abs_diff": int(diff.max()), "frac_pixels_differing": float((diff > 0).mean()),
                         "picture": str(picture)}
    return results


def bench_atari(game: str, steps: int, repeats: int) -> dict[str, Any]:
    env = AtariEnv(parse_env(game), 0)
    env.reset(0)
    rng = np.random.default_rng(0)
    episode = [1]

    def run() -> int:
        for _ in range(steps):
            _, _, terminal, truncated = env.step(env.sample_action(rng))
            if terminal or truncated:
                env.reset(episode[0])
                episode[0] += 1
        return steps

    return {game: {"agent_steps_per_s": _median_rate(run, repeats)}}


def _filled(cfg: Any, steps: int = 120) -> tuple[Any, Any, Any]:
    from apps.rl.envs import make_env
    from apps.rl.train import build_agent, build_replay

    env = make_env(cfg.env, 0, **({"image_size": 100} if cfg.env.startswith("dmc") else {}))
    replay = build_replay(cfg, env)
    agent = build_agent(cfg, env, torch.device("cpu"))
    rng = np.random.default_rng(0)
    replay.start_episode(env.reset(0))
    episode = 0
    for _ in range(steps):
        action = env.sample_action(rng)
        frame, reward, terminal, truncated = env.step(action)
        replay.add(action, reward, terminal, truncated, frame)
        if terminal or truncated:
            episode += 1
            replay.start_episode(env.reset(episode))
    return env, replay, agent


def bench_updates(repeats: int, updates: int) -> dict[str, Any]:
    from apps.rl.train import RLConfig

    variants: list[tuple[str, dict[str, Any]]] = [
        ("curl-sac paper (batch 128, hidden 1024) fp32", {"agent": "curl-sac", "sac": {"batch_size": 128, "hidden_dim": 1024, "bf16": False}}),
        ("curl-sac paper (batch 128, hidden 1024) bf16", {"agent": "curl-sac", "sac": {"batch_size": 128, "hidden_dim": 1024, "bf16": True}}),
        ("curl-sac cpu (batch 32, hidden 256) fp32", {"agent": "curl-sac", "sac": {"batch_size": 32, "hidden_dim": 256, "bf16": False}}),
        ("curl-sac cpu (batch 32, hidden 256) bf16", {"agent": "curl-sac", "sac": {"batch_size": 32, "hidden_dim": 256, "bf16": True}}),
        ("sac-crop cpu bf16", {"agent": "sac-crop", "sac": {"batch_size": 32, "hidden_dim": 256, "bf16": True}}),
        ("sac (no crop) cpu bf16", {"agent": "sac", "sac": {"batch_size": 32, "hidden_dim": 256, "bf16": True}}),
        ("curl-der paper (batch 32) fp32", {"agent": "curl-der", "env": "atari:Pong"}),
        ("der paper (batch 32) fp32", {"agent": "der", "env": "atari:Pong"}),
    ]
    results: dict[str, Any] = {}
    for label, settings in variants:
        cfg = RLConfig()
        cfg.agent = settings["agent"]
        cfg.env = settings.get("env", cfg.env)
        for key, value in settings.get("sac", {}).items():
            setattr(cfg.sac, key, value)
        cfg.der.multi_step = 3  # a short window so the small warm-up buffer has settled transitions
        cfg.train.replay_capacity = 1000
        _, replay, agent = _filled(cfg)
        counter = [0]

        def run(agent=agent, replay=replay) -> int:
            for _ in range(updates):
                counter[0] += 1
                agent.update(replay, counter[0])
            return updates

        run()  # warm-up
        rate = _median_rate(run, repeats)
        results[label] = {"updates_per_s": rate, "seconds_per_update": 1.0 / rate}
        print(f"  {label}: {rate:.2f} updates/s", flush=True)
    return results


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_replay(transitions: int) -> dict[str, Any]:
    """In a fresh process, so memory freed by earlier sections cannot hide the buffer's pages."""
    import subprocess
    import sys

    code = f"import json, evaluation.bench_rl as b; print(json.dumps(b._replay_rss({int(transitions)})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _replay_rss(transitions: int) -> dict[str, Any]:
    from apps.rl.replay import FrameReplay

    before = _rss_bytes()
    replay = FrameReplay(transitions, (3, 100, 100), 3, (1,), np.float32)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (3, 100, 100), dtype=np.uint8)
    episode_length = 125  # cartpole: 1000 env steps / action repeat 8
    replay.start_episode(frame)
    stored = 0
    while stored < transitions:
        last = (stored + 1) % episode_length == 0
        replay.add(np.zeros(1, np.float32), 0.0, False, last, frame)
        stored += 1
        if last:
            replay.start_episode(frame)
    after = _rss_bytes()
    pixels = transitions * 3 * 100 * 100  # one new 3×100×100 frame per transition
    official = transitions * 2 * 9 * 100 * 100  # obs + next_obs stacks of 9 channels, uint8
    result = {"transitions": transitions, "rss_bytes": after - before, "bytes_per_transition": (after - before) / transitions,
              "bytes_per_stored_pixel": (after - before) / pixels, "buffer_nbytes": replay.nbytes(),
              "official_layout_bytes": official, "official_bytes_per_stored_pixel": official / pixels}
    del replay
    return result


def bench_training(steps: int, init_steps: int, out: Path) -> dict[str, Any]:
    from apps.rl.train import RLConfig, run_training
    from shared.config import load_config

    config = Path(__file__).resolve().parents[1] / "apps" / "rl" / "configs" / "dmc_curl_sac_cpu.yaml"
    cfg = load_config(RLConfig, config, [f"train.max_steps={steps}", f"sac.init_steps={init_steps}",
                                         f"train.out_dir={out / 'rl_bench_training_run'}", "train.progress=false",
                                         "train.eval_episodes=1", "train.tensorboard=false"])
    from shared.guard import OutputGuard

    summary = run_training(cfg, guard=OutputGuard(force=True))
    return {"agent_steps": summary["step"], "updates": summary["updates"], "random_warmup_steps": init_steps,
            "learning_phase_time_fractions": summary["time_fractions"], "learning_phase_seconds": summary["timing_seconds"],
            "learning_phase_agent_steps_per_s": (summary["step"] - init_steps) / max(sum(summary["timing_seconds"].values()), 1e-9)}


def bench_returns(weights: Path | None, env: str, episodes: int) -> dict[str, Any]:
    from apps.rl.evaluate import blind_policy_returns, evaluate_file, random_policy_returns
    from apps.rl.infer import resolve_weights

    path = Path(weights) if weights else resolve_weights(None, env)
    policy = evaluate_file(path, env, episodes=episodes, seed=0)
    return {"env": env, "weights": str(path), "policy": {k: policy[k] for k in ("mean_return", "std_return", "returns")},
            "random_policy": random_policy_returns(env, episodes, 0),
            "blind_policy": blind_policy_returns(path, env, episodes, 0)}


def bench_controls(weights: Path, env: str, episodes: int, seed: int) -> dict[str, Any]:
    """A trained policy next to the random, zero-action and image-blind controls on the same episodes."""
    from apps.rl.evaluate import blind_policy_returns, evaluate_file, random_policy_returns, zero_action_returns

    policy = evaluate_file(weights, env, episodes=episodes, seed=seed)
    return {"env": env, "weights": str(weights), "env_seed": seed, "episodes": episodes,
            "policy": {k: policy[k] for k in ("mean_return", "std_return", "returns")},
            "random_policy": random_policy_returns(env, episodes, seed),
            "zero_action": zero_action_returns(env, episodes, seed),
            "blind_policy": blind_policy_returns(weights, env, episodes, seed)}


def cpu_recipe_run(agent: str, env: str, steps: int, seed: int, init_steps: int, episodes: int,
                   run: Path) -> dict[str, Any]:
    """Train one agent with the CPU recipe of its suite into ``run`` and return its final evaluation
    (``eval.json``: env seed ``seed + 10000``). Resumable: a finished run is reused, a killed one continues
    from its checkpoint."""
    from apps.rl.train import RLConfig, run_training
    from shared.config import load_config
    from shared.guard import OutputGuard

    config = Path(__file__).resolve().parents[1] / "apps" / "rl" / "configs" / (
        "dmc_curl_sac_cpu.yaml" if env.startswith("dmc") else "atari_curl_der_cpu.yaml")
    done = run / "eval.json"
    if not done.is_file():
        overrides = [f"agent={agent}", f"env={env}", f"train.max_steps={steps}", f"train.seed={seed}",
                     f"train.out_dir={run}", f"train.eval_episodes={episodes}", "train.progress=false",
                     "train.tensorboard=false", f"sac.init_steps={init_steps}", f"der.init_steps={init_steps}",
                     f"train.resume={'true' if (run / 'checkpoints' / 'last.pt').is_file() else 'false'}"]
        run_training(load_config(RLConfig, config, overrides), guard=OutputGuard(force=True))
    return json.loads(done.read_text())["final"]


def compare_run_dir(out: Path, env: str, agent: str, seed: int, steps: int) -> Path:
    """The run folder of one (agent, seed) of the compare section (also used by ``rl_atari_compare``)."""
    return out / "rl_compare" / f"{env.replace(':', '_')}_{agent}_s{seed}_{steps}"


def bench_compare(agents: list[str], env: str, seeds: list[int], steps: int, init_steps: int, episodes: int,
                  out: Path) -> dict[str, Any]:
    """CURL vs its baselines at a fixed step budget: CPU recipe, same seeds and evaluation episodes.

    Resumable: a finished run (eval.json) is reused, a killed one continues from its checkpoint.
    """
    from apps.rl.evaluate import random_policy_returns

    table: dict[str, Any] = {"env": env, "steps": steps, "random_warmup_steps": init_steps, "seeds": seeds,
                             "eval_episodes": episodes, "agents": {}}
    for agent in agents:
        finals = []
        for seed in seeds:
            run = compare_run_dir(out, env, agent, seed, steps)
            final = cpu_recipe_run(agent, env, steps, seed, init_steps, episodes, run)
            finals.append(final["mean_return"])
            print(f"  {agent} seed {seed}: {final['mean_return']:.1f}", flush=True)
        table["agents"][agent] = {"mean_return": float(np.mean(finals)), "std_over_seeds": float(np.std(finals)),
                                  "per_seed": finals}
    # the random policy on each seed's evaluation episodes (a run of seed s evaluates on env seed s + 10000)
    rand = [random_policy_returns(env, episodes, seed + 10_000)["mean_return"] for seed in seeds]
    table["random_policy"] = {"mean_return": float(np.mean(rand)), "std_over_seeds": float(np.std(rand)), "per_seed": rand}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="evaluation/results")
    parser.add_argument("--sections", nargs="*", default=["render", "atari", "updates", "replay", "training", "returns"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--render-steps", type=int, default=100)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--replay-transitions", type=int, default=100_000)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--train-init", type=int, default=100)
    parser.add_argument("--weights", help="policy for the returns section (default: the shipped cartpole one)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--compare-agents", nargs="*", default=["curl-sac", "sac-crop", "sac"])
    parser.add_argument("--compare-env", default="dmc:cartpole-swingup")
    parser.add_argument("--compare-seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--compare-steps", type=int, default=1000)
    parser.add_argument("--compare-init", type=int, default=250)
    parser.add_argument("--control-seed", type=int, default=10_000, help="env seed of the controls section")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / "bench_rl.json"
    results: dict[str, Any] = json.loads(result_path.read_text()) if result_path.is_file() else {}
    results["machine"] = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                          "load_avg_at_start": os.getloadavg()}
    for section in args.sections:
        print(f"== {section} ==", flush=True)
        started = time.perf_counter()
        if section == "render":
            results[section] = bench_render(["dmc:cartpole-swingup", "dmc:walker-walk", "dmc:cheetah-run"],
                                            args.render_steps, args.repeats, out)
        elif section == "atari":
            results[section] = bench_atari("atari:Pong", args.render_steps * 5, args.repeats)
        elif section == "updates":
            results[section] = bench_updates(args.repeats, args.updates)
        elif section == "replay":
            results[section] = bench_replay(args.replay_transitions)
        elif section == "training":
            results[section] = bench_training(args.train_steps, args.train_init, out)
        elif section == "compare":
            results[f"compare_{args.compare_env}_{args.compare_steps}"] = bench_compare(
                args.compare_agents, args.compare_env, args.compare_seeds, args.compare_steps, args.compare_init,
                args.episodes, out)
            results[section + "_seconds"] = time.perf_counter() - started
            result_path.write_text(json.dumps(results, indent=2) + "\n")
            continue
        elif section == "controls":  # --weights W --compare-env ENV --control-seed S
            if not args.weights:
                raise SystemExit("the controls section needs --weights")
            results[f"controls_{args.compare_env}_seed{args.control_seed}"] = bench_controls(
                Path(args.weights), args.compare_env, args.episodes, args.control_seed)
            print(json.dumps(results[f"controls_{args.compare_env}_seed{args.control_seed}"], indent=1), flush=True)
            result_path.write_text(json.dumps(results, indent=2) + "\n")
            continue
        elif section == "returns":
            results[section] = bench_returns(args.weights, "dmc:cartpole-swingup", args.episodes)
        else:
            raise SystemExit(f"unknown section {section}")
        results[section + "_seconds"] = time.perf_counter() - started
        print(json.dumps(results[section], indent=1), flush=True)
        result_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {result_path}")


if __name__ == "__main__":
    main()
