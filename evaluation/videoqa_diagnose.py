"""Diagnosis loop for the videoqa model (not a benchmark): train one model variant with a plain AdamW
loop on in-memory questions of a synthetic set and print the val accuracy per question type every
``--every`` steps, to see *which* question types a variant learns and when.

    OMP_NUM_THREADS=1 python -m evaluation.videoqa_diagnose --root runs/videoqa_bench/synth \\
        --steps 1500 --lr 1e-3 --model visual=colour

``--model`` takes ``key=value,key=value`` overrides of ``ModelConfig``. The benchmark
(``evaluation/bench_videoqa.py``) trains through ``shared.engine.Trainer`` instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from apps.videoqa.data import open_split  # noqa: E402
from apps.videoqa.dataset import InputSizes, VideoQADataset, collate  # noqa: E402
from apps.videoqa.model import ModelConfig, VideoQAModel  # noqa: E402
from apps.videoqa.text import Vocab  # noqa: E402
from apps.videoqa.train import training_texts  # noqa: E402


def model_config(overrides: str) -> ModelConfig:
    defaults = ModelConfig()
    values = {}
    for pair in filter(None, overrides.split(",")):
        key, value = pair.split("=", 1)
        values[key] = type(getattr(defaults, key))(value)
    return dataclasses.replace(defaults, **values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/videoqa_bench/synth")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--every", type=int, default=150)
    parser.add_argument("--model", default="", help="ModelConfig overrides, e.g. visual=colour,dim=32")
    parser.add_argument("--max-seconds", type=float, default=1e9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = model_config(args.model)
    vocab = Vocab.build(training_texts(open_split(args.root, "train", None, labelled=True)))

    def dataset(name: str) -> VideoQADataset:
        return VideoQADataset(open_split(args.root, name, None, labelled=True), vocab, InputSizes(), visual=cfg.visual,
                              load_visual=cfg.streams != "text", load_subtitles=cfg.streams != "video")

    train, val = dataset("train"), dataset("val")
    train_items = [train[i] for i in range(len(train))]
    val_batches = [collate([val[i] for i in range(s, min(len(val), s + 64))]) for s in range(0, len(val), 64)]
    types = [it.qtype for it in val.items]
    labels = [it.answer_idx for it in val.items]
    torch.manual_seed(args.seed)
    model = VideoQAModel(cfg, len(vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    rng = np.random.default_rng(args.seed)

    @torch.no_grad()
    def evaluate() -> dict[str, float]:
        model.eval()
        chosen = [c for b in val_batches for c in model(b)["scores"].argmax(1).tolist()]
        model.train()
        hits = [c == y for c, y in zip(chosen, labels)]
        result = {"all": float(np.mean(hits))}
        for t in sorted(set(types)):
            result[t] = float(np.mean([h for h, ty in zip(hits, types) if ty == t]))
        return {k: round(100 * v, 1) for k, v in result.items()}

    order: list[int] = []
    losses, accs = [], []
    started = time.time()
    for step in range(1, args.steps + 1):
        if not order:
            order = rng.permutation(len(train_items)).tolist()
        picked = [order.pop() for _ in range(min(args.batch_size, len(order)))]
        batch = collate([train_items[i] for i in picked])
        scores = model(batch)["scores"]
        loss = F.cross_entropy(scores, batch["label"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        accs.append((scores.argmax(1) == batch["label"]).float().mean().item())
        out_of_time = time.time() - started > args.max_seconds
        if step % args.every == 0 or step == args.steps or out_of_time:
            print(json.dumps({"step": step, "s": round(time.time() - started), "train_ce": round(float(np.mean(losses[-args.every:])), 3),
                              "train_acc": round(100 * float(np.mean(accs[-args.every:])), 1), "val": evaluate()}), flush=True)
        if out_of_time:
            break


if __name__ == "__main__":
    main()
