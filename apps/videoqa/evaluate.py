"""Accuracy of a video-QA model on a labelled split: overall, per question type and per DramaQA level.

Question type = TVQA's first question word (what, who, where, why, how, when, which, other); DramaQA
questions are also counted per memory-capacity (``mem2``, ``mem3``) and logical-complexity
(``logic1``..``logic4``) level.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import torch
from torch.utils.data import DataLoader

from .dataset import VideoQADataset, collate


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: VideoQADataset, batch_size: int = 64,
            device: str = "cpu", keep_outputs: bool = False) -> dict[str, Any]:
    """Scores and chosen answer of every question, in split order (``outputs`` per batch if asked)."""
    model = model.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=0)
    chosen: list[int] = []
    scores: list[list[float]] = []
    outputs: list[dict[str, torch.Tensor]] = []
    started = time.perf_counter()
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(batch)
        chosen += out["scores"].argmax(1).tolist()
        scores += out["scores"].float().cpu().tolist()
        if keep_outputs:
            outputs.append({k: v.cpu() for k, v in out.items()} | {"index": batch["index"].cpu()})
    seconds = time.perf_counter() - started
    return {"chosen": chosen, "scores": scores, "seconds": seconds, "outputs": outputs}


def accuracy_table(items: list[Any], chosen: list[int]) -> dict[str, Any]:
    """``{"accuracy", "questions", "per_type": {type: {"accuracy", "questions"}}}`` (levels for DramaQA)."""
    hits: dict[str, list[int]] = defaultdict(list)
    total = []
    for item, answer in zip(items, chosen):
        correct = int(answer == item.answer_idx)
        total.append(correct)
        hits[item.qtype].append(correct)
        for key, level in item.levels.items():
            hits[f"{key.replace('q_level_', '')}{level}"].append(correct)
    return {"accuracy": sum(total) / max(1, len(total)), "questions": len(total),
            "per_type": {k: {"accuracy": sum(v) / len(v), "questions": len(v)} for k, v in sorted(hits.items())}}


def evaluate_model(model: torch.nn.Module, dataset: VideoQADataset, batch_size: int = 64,
                   device: str = "cpu") -> dict[str, Any]:
    """Accuracy table plus predictions ``{qid: answer_idx}`` and throughput of one pass over ``dataset``."""
    result = predict(model, dataset, batch_size, device)
    table = accuracy_table(dataset.items, result["chosen"])
    table["questions_per_s"] = len(dataset) / max(result["seconds"], 1e-9)
    table["predictions"] = {str(it.qid): int(a) for it, a in zip(dataset.items, result["chosen"])}
    return table


def format_table(result: dict[str, Any]) -> str:
    lines = [f"accuracy {100 * result['accuracy']:.2f} % on {result['questions']} questions"]
    for key, row in result["per_type"].items():
        lines.append(f"  {key:<8} {100 * row['accuracy']:6.2f} %  ({row['questions']})")
    return "\n".join(lines)
