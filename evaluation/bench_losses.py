"""Benchmark: our batched W-MSE and fused NT-Xent vs lightly's, forward+backward on CPU.

Not a test. One process, the two implementations alternate every repeat (so machine load hits
both alike), median of ``--repeats`` timings after warm-up. Both are called after the same
``torch.manual_seed`` so W-MSE draws the same sub-batch permutation and the losses are comparable.
Prints one JSON line per case; ``--json FILE`` also writes them (a JSON list).

    flock /tmp/cvsuite-train.lock python evaluation/bench_losses.py --threads 2 --json /tmp/bench_losses.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

import shared  # noqa: F401
from shared.losses import NTXentLoss, WMSELoss

WMSE_CASES = [(256, 4, 64, 128), (512, 2, 64, 128), (1024, 4, 128, 256)]  # (batch, views, dim, w_size)
NTXENT_CASE = (1024, 128)  # (batch, dim)
TARGETS = {"wmse": 4.0, "ntxent": 2.0}


def _time_step(loss_fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor],
               seed: int) -> tuple[float, float, list]:
    """One seeded forward+backward: (seconds, loss value, input gradients)."""
    for t in inputs:
        t.grad = None
    torch.manual_seed(seed)
    start = time.perf_counter()
    loss = loss_fn(*inputs)
    loss.backward()
    elapsed = time.perf_counter() - start
    return elapsed, loss.item(), [t.grad.clone() for t in inputs]


def compare(name: str, ours: Callable, theirs: Callable, inputs: list[torch.Tensor], repeats: int,
            warmup: int) -> dict:
    ours_t, theirs_t, loss_diff, grad_diff = [], [], 0.0, 0.0
    for i in range(warmup + repeats):
        seed = 1000 + i
        order = [(ours, ours_t), (theirs, theirs_t)] if i % 2 == 0 else [(theirs, theirs_t), (ours, ours_t)]
        results = {}
        for fn, bucket in order:
            elapsed, value, grads = _time_step(fn, inputs, seed)
            if i >= warmup:
                bucket.append(elapsed)
            results[id(fn)] = (value, grads)
        (lo, go), (lt, gt) = results[id(ours)], results[id(theirs)]
        loss_diff = max(loss_diff, abs(lo - lt))
        grad_diff = max(grad_diff, max(float((a - b).abs().max()) for a, b in zip(go, gt)))
    ours_ms = statistics.median(ours_t) * 1e3
    theirs_ms = statistics.median(theirs_t) * 1e3
    speedup = theirs_ms / ours_ms
    return {"case": name, "ours_ms": round(ours_ms, 3), "lightly_ms": round(theirs_ms, 3),
            "speedup": round(speedup, 2), "target_speedup": TARGETS[name.split("[")[0]],
            "meets_target": speedup >= TARGETS[name.split("[")[0]],
            "max_abs_loss_diff": loss_diff, "max_abs_grad_diff": grad_diff}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per case (>= 10 recommended)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write all cases to this JSON file")
    parser.add_argument("--only", choices=["wmse", "ntxent"], default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        from lightly.loss import NTXentLoss as LightlyNTXent
        from lightly.loss import WMSELoss as LightlyWMSE
    except Exception as exc:
        raise SystemExit(f"bench_losses: lightly is needed as the peer but cannot be imported: {exc!r}")
    rows = []
    gen = torch.Generator().manual_seed(0)
    if args.only in (None, "wmse"):
        for batch, views, dim, w_size in WMSE_CASES:
            z = torch.randn(views * batch, dim, generator=gen).requires_grad_(True)
            ours = WMSELoss(num_views=views, w_size=w_size)
            theirs = LightlyWMSE(embedding_dim=dim, num_samples=views, w_size=w_size)
            row = compare(f"wmse[b={batch},d={views},dim={dim},w={w_size}]", ours, theirs, [z],
                          args.repeats, args.warmup)
            row.update(batch=batch, views=views, dim=dim, w_size=w_size, threads=args.threads, repeats=args.repeats)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.only in (None, "ntxent"):
        batch, dim = NTXENT_CASE
        z0 = torch.randn(batch, dim, generator=gen).requires_grad_(True)
        z1 = torch.randn(batch, dim, generator=gen).requires_grad_(True)
        row = compare(f"ntxent[b={batch},dim={dim},t=0.5]", NTXentLoss(0.5), LightlyNTXent(temperature=0.5),
                      [z0, z1], args.repeats, args.warmup)
        row.update(batch=batch, dim=dim, temperature=0.5, threads=args.threads, repeats=args.repeats)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
