"""CURL benchmark: CURL vs its ablations vs a plain VAE + k-means, over seeds and regimes; throughput.

    python -m evaluation.bench_continual --out runs/continual_bench --markdown          # digits, 3 seeds
    python -m evaluation.bench_continual --data data --config apps/continual/configs/mnist_sequential.yaml \
        --steps 100000 --out runs/continual_bench_mnist --markdown                        # MNIST from disk
    python -m evaluation.bench_continual --throughput-only --threads 2

Variants (same data stream and init per seed): ``curl`` (expansion + fixed mixture generative
replay), ``no_expansion`` (fixed K = number of tasks, replay), ``no_replay`` (expansion only),
``neither`` (fixed K, no replay) and ``vae_kmeans`` (one component = a plain VAE; k-means with
k = number of classes on the latent means of the training set, applied to the test set).
Image-blind controls: one cluster for everything (cluster accuracy = majority share) and k-NN on
random latents. Each finished run is stored as JSON in ``--out`` and skipped when the command is run
again, so a long benchmark can run in pieces.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from apps.continual.data import open_dataset
from apps.continual.evaluate import cluster_accuracy, encode, knn_error, task_accuracies
from apps.continual.train import ContinualConfig, prepare, run_training
from shared.config import load_config

VARIANTS = ("curl", "no_expansion", "no_replay", "neither", "vae_kmeans")
DIGITS_CONFIG = Path(__file__).resolve().parent.parent / "apps" / "continual" / "configs" / "digits_sequential.yaml"


def variant_overrides(variant: str, n_tasks: int) -> list[str]:
    fixed_k = [f"model.n_y={n_tasks}", f"model.n_y_active={n_tasks}", "curl.expansion=false"]
    return {
        "curl": [],
        "no_expansion": fixed_k,
        "no_replay": ["curl.replay=none"],
        "neither": [*fixed_k, "curl.replay=none"],
        "vae_kmeans": ["model.n_y=1", "model.n_y_active=1", "curl.expansion=false", "curl.replay=none"],
    }[variant]


def kmeans_metrics(run_dir: Path, train, test, tasks: list[list[int]], seed: int) -> dict[str, Any]:
    """k-means (k = classes) on the VAE's training latents; cluster accuracy of its test assignment."""
    from sklearn.cluster import KMeans

    from apps.continual.model import load_curl

    model, _ = load_curl(str(run_dir / "curl.safetensors"))
    train_lat = encode(model, train.flat())["latents"]
    test_lat = encode(model, test.flat())["latents"]
    kmeans = KMeans(n_clusters=len(train.classes), n_init=10, random_state=seed).fit(train_lat)
    assign = kmeans.predict(test_lat)
    labels = np.asarray(test.labels)
    return {"cluster_accuracy": cluster_accuracy(assign, labels),
            "task_accuracy": task_accuracies(assign, labels, tasks),
            "components": len(train.classes)}


def one_run(args: argparse.Namespace, regime: str, variant: str, seed: int, sets: tuple) -> dict[str, Any]:
    path = Path(args.out) / f"{regime}_{variant}_s{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    train, test = sets
    run_dir = Path(args.out) / "runs" / f"{regime}_{variant}_s{seed}"
    base = [f"data={args.data}", f"regime={regime}", f"train.out_dir={run_dir}", f"train.seed={seed}",
            "train.progress=false", "train.tensorboard=false"]
    if args.steps:
        base.append(f"train.max_steps={args.steps}")
    probe = load_config(ContinualConfig, args.config, base)
    n_tasks = len(probe.tasks) if probe.tasks else len(train.classes) // probe.classes_per_task
    cfg = load_config(ContinualConfig, args.config, [*base, *variant_overrides(variant, n_tasks), *args.overrides])
    started = time.perf_counter()
    summary = run_training(cfg, prepared=prepare(cfg, train, test))
    final = dict(summary["final"])
    if variant == "vae_kmeans":
        final.update(kmeans_metrics(run_dir, train, test, summary["tasks"], seed))
    result = {"regime": regime, "variant": variant, "seed": seed, "steps": summary["steps"],
              "cluster_accuracy": final["cluster_accuracy"], "knn_error": final["knn_error"],
              "components": final["components"], "first_task_accuracy": final["task_accuracy"][0],
              "elbo": final["elbo"], "expansions": summary["expansions"], "seconds": time.perf_counter() - started,
              "stream": summary["stream"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def blind_controls(train, test, seed: int, k: int) -> dict[str, float]:
    """Image-blind references: everything in one cluster; k-NN on random 16-d latents."""
    labels = np.asarray(test.labels)
    rng = np.random.default_rng(seed)
    return {"one_cluster_accuracy": cluster_accuracy(np.zeros(len(labels), dtype=int), labels),
            "random_latent_knn_error": knn_error(rng.normal(size=(len(train), 16)), np.asarray(train.labels),
                                                 rng.normal(size=(len(test), 16)), labels, k)}


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


# ------------------------------------------------------------------------------------ throughput
def throughput(threads: int, repeats: int, steps: int, components: list[int],
               flush_denormal: bool = True) -> dict[str, Any]:
    """Training samples/s with the official train_main MLP sizes on 28x28 binary inputs (batch 100),
    replay on (every 2nd batch generated by the snapshot), at K active components; plus a plain VAE
    (K = 1, no replay) as the peer in the same process, and the wall time of one expansion step
    (buffer of 100 samples, 10 passes, official constants)."""
    from apps.continual.model import CurlModel, ModelConfig
    from apps.continual.train import CurlConfig, CurlTask
    from shared.engine import TrainConfig
    from shared.engine.trainer import build_optimizer

    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush_denormal)  # run_training switches it on; off shows its effect
    torch.manual_seed(0)
    x = (torch.rand(100, 784) > 0.5).float()

    def make(k: int, replay: str) -> CurlTask:
        model = CurlModel(784, ModelConfig(n_y=30, n_y_active=k))
        task = CurlTask(model, CurlConfig(replay=replay, expansion=False, refresh_period=1), 100, 10**6, 1)
        task.on_optimizer_ready(build_optimizer(TrainConfig(lr=1e-3, weight_decay=0.0), task))
        task.step.fill_(2)  # replay has started (step >= refresh period)
        return task

    def rate(task: CurlTask) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(steps):
                out = task(x)
                task.optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                task.optimizer.step()
                task.on_step_end(int(task.step), out)
            times.append(time.perf_counter() - started)
        return 100 * steps / statistics.median(times)

    result: dict[str, Any] = {"threads": threads, "batch": 100, "input": "28x28", "steps_per_repeat": steps,
                              "repeats": repeats, "flush_denormal": flush_denormal}
    vae = rate(make(1, "none"))
    result["vae_k1_samples_per_s"] = vae
    for k in components:
        task = make(k, "fixed")
        task.refresh_snapshot()
        result[f"curl_k{k}_samples_per_s"] = rate(task)
        result[f"curl_k{k}_vs_vae"] = result[f"curl_k{k}_samples_per_s"] / vae
    task = make(10, "none")
    times = []
    for _ in range(repeats):
        task.model.n_active.fill_(10)
        task.poor[:100] = x
        task.poor_count.fill_(100)
        started = time.perf_counter()
        task.expand()
        times.append(time.perf_counter() - started)
    result["expansion_step_s"] = statistics.median(times)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--config", default=str(DIGITS_CONFIG))
    parser.add_argument("--regimes", nargs="+", default=["sequential", "iid"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=0, help="train.max_steps (0 = the config's)")
    parser.add_argument("--out", default="runs/continual_bench")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--throughput-components", nargs="+", type=int, default=[1, 10, 30])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--denormal-control", action="store_true", help="also time K=1 without flush-to-zero")
    parser.add_argument("overrides", nargs="*", help="extra config overrides for every run (key=value)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    if not args.throughput_only:
        torch.set_num_threads(args.threads)
        probe = load_config(ContinualConfig, args.config, [f"data={args.data}"])
        sets = (open_dataset(args.data, "train", probe.image_size), open_dataset(args.data, "test", probe.image_size))
        rows = []
        for regime in args.regimes:
            for variant in args.variants:
                runs = [one_run(args, regime, variant, seed, sets) for seed in args.seeds]
                row = {"regime": regime, "variant": variant, "seeds": len(runs)}
                for key in ("cluster_accuracy", "knn_error", "components", "first_task_accuracy", "elbo", "seconds"):
                    values = [float(r[key]) for r in runs]
                    row[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                "text": mean_std(values)}
                rows.append(row)
                print(f"{regime:<10} {variant:<13} acc {row['cluster_accuracy']['text']}  kNN err "
                      f"{row['knn_error']['text']}  K {row['components']['text']}  first task "
                      f"{row['first_task_accuracy']['text']}", flush=True)
        report["rows"] = rows
        report["blind"] = blind_controls(*sets, seed=0, k=probe.knn_k)
        print(f"image-blind: one cluster {report['blind']['one_cluster_accuracy']:.3f}, random-latent kNN error "
              f"{report['blind']['random_latent_knn_error']:.3f}")
    if not args.skip_throughput:
        report["throughput"] = throughput(args.threads, args.repeats, 10, args.throughput_components)
        print(json.dumps(report["throughput"], indent=1))
        if args.denormal_control:
            report["throughput_no_flush_denormal"] = throughput(args.threads, args.repeats, 10, [1], flush_denormal=False)
            print(json.dumps(report["throughput_no_flush_denormal"], indent=1))
    name = "throughput.json" if args.throughput_only else "report.json"
    (out / name).write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown and "rows" in report:
        print("\n| regime | variant | cluster acc. | k-NN error | components | first-task acc. (end) |")
        print("|---|---|---|---|---|---|")
        for row in report["rows"]:
            print(f"| {row['regime']} | {row['variant']} | {row['cluster_accuracy']['text']} | "
                  f"{row['knn_error']['text']} | {row['components']['text']} | {row['first_task_accuracy']['text']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
