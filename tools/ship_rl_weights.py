"""Ship a trained cartpole-swingup CURL-SAC policy: fp16 copy of the acting network, its evaluation
(10 episodes, seed 0) next to a random policy and an image-blind control, a demo video, a manifest entry.

    cvsuite rl train --config apps/rl/configs/dmc_curl_sac_cpu.yaml --out RUN --seed 0   # 1 thread
    python tools/ship_rl_weights.py RUN
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.rl.evaluate import blind_policy_returns, evaluate_file, random_policy_returns  # noqa: E402
from apps.rl.infer import SHIPPED  # noqa: E402
from shared.guard import OutputGuard  # noqa: E402
from shared.weights import WEIGHTS_DIR, add_manifest_entry, save_safetensors  # noqa: E402

ENV = "dmc:cartpole-swingup"
VIDEO = Path(__file__).resolve().parent.parent / "apps" / "rl" / "media" / "cartpole_swingup_curl_sac.mp4"


def main() -> None:
    run = Path(sys.argv[1])
    with safe_open(str(run / "model.safetensors"), "pt") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k).to(torch.float16) for k in handle.keys()}
    name = SHIPPED[ENV]
    target = WEIGHTS_DIR / f"{name}.safetensors"
    save_safetensors(tensors, target, metadata={**meta, "stored_dtype": "float16"})
    guard = OutputGuard([target], force=True)
    VIDEO.parent.mkdir(parents=True, exist_ok=True)
    result = evaluate_file(target, ENV, episodes=10, seed=0, video=VIDEO, guard=guard)
    guard.record()
    rand = random_policy_returns(ENV, 10, 0)
    blind = blind_policy_returns(target, ENV, 10, 0)
    train_cfg = (run / "config.yaml").read_text()
    steps = [line for line in train_cfg.splitlines() if line.strip().startswith("max_steps")]
    max_steps = steps[0].split(":")[1].strip() if steps else "?"
    recipe = (f"OMP_NUM_THREADS=1 cvsuite rl train --config apps/rl/configs/dmc_curl_sac_cpu.yaml --out RUN --seed 0 "
              f"--steps {max_steps}; python tools/ship_rl_weights.py RUN (actor tensors stored as float16)")
    metrics = {"eval_episodes": 10, "eval_seed": 0, "mean_return": round(result["mean_return"], 2),
               "std_return": round(result["std_return"], 2),
               "random_policy_mean_return": round(rand["mean_return"], 2),
               "blind_policy_mean_return": round(blind["mean_return"], 2)}
    add_manifest_entry(name, target, recipe, metrics, extra={
        "app": "rl", "agent": meta["agent"], "env": meta["env"], "train_steps": max_steps,
        "note": "CPU recipe: a short budget; paper-scale runs use configs/dmc_curl_sac_paper.yaml"})
    print(json.dumps({"weights": str(target), "bytes": target.stat().st_size, **metrics,
                      "returns": result["returns"], "video": str(VIDEO)}, indent=1))


if __name__ == "__main__":
    main()
