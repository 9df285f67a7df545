"""Are SCL's hard negatives really hard? Mean anchor cosine and false-negative rate of the negatives
each sampler draws, on held-out labelled synthetic shapes.

A Siamese patch net is trained (``mode=siamese``, configs/siamese.yaml sizes, fewer steps) on the
train split; on every test shape 16 FPS anchors with 40-point patches (160 of 2048 at 512 points)
get their Siamese cosine matrix. For each sampler we draw 8 negatives per anchor and report
* ``cos``: mean Siamese cosine between anchor and negative (higher = harder),
* ``false_neg``: fraction of negatives whose anchor point has the anchor's ground-truth part id
  (a "negative" from the same part: what a hard-negative band must avoid),
* ``no_candidate``: fraction of anchors whose band held no other anchor (the empty-band guard ran).
Samplers: random (any other anchor), the official absolute bands (early (0.3, 1), final (0.5, 0.75),
and the empty (0.7, 0.6) of epochs 25-27), each with the trained and an untrained (same init seed)
Siamese net. Seeds 0, 1, 2 (Siamese init + sampling); mean ± std over seeds.

    PYTHONPATH=. .venv/bin/python evaluation/bench_points_scl.py [--steps 150]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import shared  # noqa: E402,F401
from apps.points.data import read_shapenetpart, shape_features  # noqa: E402
from apps.points.model import EncoderConfig  # noqa: E402
from apps.points.scl import SiamesePatchNet, extract_patches, sample_band_negatives, siamese_similarity  # noqa: E402
from apps.points.synth import write_dataset  # noqa: E402
from apps.points.train import PointsConfig, load_siamese, train  # noqa: E402
from shared.engine import TrainConfig  # noqa: E402

BANDS = {"official early (0.3, 1)": (0.3, 1.0), "official final (0.5, 0.75)": (0.5, 0.75),
         "official empty (0.7, 0.6), guarded": (0.7, 0.6)}


def measure(net: SiamesePatchNet, shapes, seed: int, anchors: int = 16, patch: int = 40, k: int = 8) -> dict:
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.stack([shape_features(s.points, s.normals) for s in shapes]))
    xyz = x[:, :3].transpose(1, 2).contiguous()
    idx, patches = extract_patches(xyz, anchors, patch)
    sim = siamese_similarity(net, x, patches)
    part = torch.from_numpy(np.stack([s.parts for s in shapes]))
    anchor_part = torch.gather(part, 1, idx)                                          # (B, M)
    b, m, _ = sim.shape
    eye = torch.eye(m, dtype=torch.bool).expand(b, m, m)
    samplers = {"random": (torch.multinomial((~eye).float().reshape(b * m, m), k, replacement=True, generator=gen)
                           .view(b, m, k), torch.zeros(b, m, dtype=torch.bool))}
    for name, band in BANDS.items():
        samplers[name] = sample_band_negatives(sim, band, k, gen)
    out = {}
    for name, (neg, empty) in samplers.items():
        same = torch.gather(anchor_part.unsqueeze(1).expand(b, m, m), 2, neg) == anchor_part.unsqueeze(2)
        out[name] = {"cos": float(torch.gather(sim, 2, neg).mean()), "false_neg": float(same.float().mean()),
                     "no_candidate": float(empty.float().mean())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_dataset(data, "h5", 200, 7, 512)
        train_shapes, test_shapes = read_shapenetpart(data, "train"), read_shapenetpart(data, "test")
        for seed in args.seeds:
            cfg = PointsConfig(mode="siamese", data=str(data), points=512, encoder=EncoderConfig(k=20, width=16, global_dim=64),
                               num_anchors=16, patch_size=40,
                               train=TrainConfig(out_dir=str(Path(tmp) / f"sia{seed}"), max_steps=args.steps, batch_size=16,
                                                 lr=2e-3, weight_decay=0.0, warmup_steps=10, log_every=50,
                                                 ckpt_every=100_000, seed=seed, progress=False, tensorboard=False))
            summary = train(cfg, train_shapes)
            trained = load_siamese(summary["weights_file"], 20)
            torch.manual_seed(seed)
            untrained = SiamesePatchNet(k=20).eval()
            for label, net in (("trained Siamese", trained), ("untrained Siamese (control)", untrained)):
                for sampler, vals in measure(net, test_shapes, seed).items():
                    row = rows.setdefault(f"{label} | {sampler}", {})
                    for key, v in vals.items():
                        row.setdefault(key, []).append(v)
            print(json.dumps({"seed": seed, "pair_acc": summary["metrics"].get("pair_acc")}), flush=True)
    table = {name: {k: (statistics.mean(v), statistics.pstdev(v)) for k, v in vals.items()} for name, vals in rows.items()}
    print("| similarity | sampler | anchor cosine | false-negative rate | anchors with empty band |")
    print("|---|---|---|---|---|")
    for name, vals in table.items():
        sim_name, sampler = name.split(" | ")
        cells = " | ".join(f"{vals[k][0]:.3f} ± {vals[k][1]:.3f}" for k in ("cos", "false_neg", "no_candidate"))
        print(f"| {sim_name} | {sampler} | {cells} |")
    out = ROOT / "evaluation" / "results" / "bench_points_scl.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "table": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
