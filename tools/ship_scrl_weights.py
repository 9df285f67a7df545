"""Ship the benchmark's seed-0 SCRL and BYOL backbones (backbone tensors only) and list them in the manifest.

    python -m evaluation.bench_scrl --markdown && python tools/ship_scrl_weights.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.scrl.cli import SHIPPED, SHIPPED_DETECTOR  # noqa: E402
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
    # the detector fine-tuned from the SCRL backbone (longer budget run, seed 0), stored as float16
    long_results = json.loads((RUNS / "results_ft400.json").read_text())
    source = RUNS / "finetune_scrl_s0_ft400" / "detector.safetensors"
    with safe_open(str(source), "pt") as handle:
        meta = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    target = WEIGHTS_DIR / f"{SHIPPED_DETECTOR}.safetensors"
    save_safetensors(tensors, target, metadata=meta)
    seed0 = long_results["raw"]["scrl"][0]
    add_manifest_entry(SHIPPED_DETECTOR, target, (
        "cvsuite scrl finetune --config apps/scrl/configs/finetune_synth.yaml data=<synth seed 1001, 64 scenes> "
        "val=<synth seed 1002, 48 scenes> weights=<scrl_synth_resnet18slim_scrl, float32> train.max_steps=400 "
        "train.seed=0 (python -m evaluation.bench_scrl --finetune-steps 400 --tag _ft400); stored as float16"),
        {"AP": round(seed0["AP"], 4), "AP50": round(seed0["AP50"], 4), "AP75": round(seed0["AP75"], 4)},
        extra={"app": "scrl", "arch": "Faster R-CNN FPN (torchvision) on resnet18_slim width 16, 4 shape classes, 96 px",
               "eval_data": "held-out synthetic scenes seed 1002 (48), COCOeval bbox"})
    print(f"{target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
