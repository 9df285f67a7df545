"""Ship the benchmark's seed-0 SCRL and BYOL backbones (backbone tensors only) and list them in the manifest.

    python -m evaluation.bench_scrl --markdown && python tools/ship_scrl_weights.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.scrl.cli import SHIPPED  # noqa: E402
from shared.weights import WEIGHTS_DIR, add_manifest_entry, save_safetensors  # noqa: E402

RUNS = Path("runs/scrl_bench")


def main() -> None:
    results = json.loads((RUNS / "results.json").read_text())
    for method, name in SHIPPED.items():
        source = RUNS / f"pretrain_{method}_s0" / "encoder.safetensors"
        with safe_open(str(source), "pt") as handle:
            meta = handle.metadata()
            tensors = {k: handle.get_tensor(k) for k in handle.keys() if k.startswith("backbone.")}
        target = WEIGHTS_DIR / f"{name}.safetensors"
        save_safetensors(tensors, target, metadata={**meta, "contents": "backbone only"})
        seed0 = results["raw"][method][0]
        recipe = ("cvsuite scrl synth --out D --images 256 --seed 1000 --size 96 --min-object 10 --max-object 34; "
                  f"cvsuite scrl pretrain --config apps/scrl/configs/pretrain_{method}.yaml data=D/annotations.json "
                  "train.seed=0 (1 thread); backbone.* tensors kept")
        add_manifest_entry(name, target, recipe, {
            "finetune_AP": round(seed0["AP"], 4), "finetune_AP50": round(seed0["AP50"], 4),
            "finetune_AP75": round(seed0["AP75"], 4)}, extra={
            "app": "scrl", "arch": "resnet18_slim width 16 (torchvision ResNet-18 layout, 0.7 M params)",
            "method": method, "eval_data": "held-out synthetic scenes seed 1002 after finetune_synth.yaml "
                                           "(python -m evaluation.bench_scrl, seed 0)"})
        print(f"{target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
