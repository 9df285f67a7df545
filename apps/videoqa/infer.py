"""Leaderboard predictions ``{qid: answer_idx}`` for every question of a split, and pictures for people.

The TVQA leaderboard takes a JSON object mapping each ``qid`` (as a string key) to the predicted
answer index 0-4; the question's ``ts`` window is honoured (subtitles and frames are cut to it unless
``data.use_ts=false``). A picture per example (``--pictures DIR``): frames of the window with the
model's attention over them (bar under each frame, through the subtitle sentences it attends),
the subtitle line it attends most, the question and the five answers (chosen one marked).
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.errors import CvsuiteError
from shared.guard import OutputGuard

from .data import FPS, window_frames, window_subtitles
from .dataset import VideoQADataset
from .evaluate import predict

def write_predictions(path: Path, dataset: VideoQADataset, chosen: list[int]) -> dict[str, int]:
    predictions = {str(item.qid): int(answer) for item, answer in zip(dataset.items, chosen)}
    path.write_text(json.dumps(predictions, indent=0, sort_keys=True) + "\n")
    return predictions


def out_of_vocabulary(dataset: VideoQADataset, sample: int = 200) -> float:
    """Share of question/answer words the model's tokenizer does not know (a sign of out-of-domain input;
    a sub-word tokenizer of a pretrained text model rarely needs its unknown token)."""
    return dataset.vocab.unknown_share(text for item in dataset.items[:sample] for text in [item.question, *item.answers])


def draw_example(path: Path, dataset: VideoQADataset, index: int, scores: list[float],
                 frame_attention: np.ndarray | None, sub_attention: np.ndarray | None) -> None:
    """One PNG: frames with attention bars, the most attended subtitle, question, answers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    item = dataset.items[index]
    chosen = int(np.argmax(scores))
    frames: list[np.ndarray] = []
    idx = np.zeros(0, dtype=np.int64)
    if item.vid_name in dataset.frame_lists:
        paths = dataset.frame_lists[item.vid_name]
        idx = window_frames(len(paths), item.ts if dataset.sizes.use_ts else None, dataset.sizes.max_frames)
        frames = [dataset.frames.get(paths[k]) for k in idx]
    shown = sorted(set(np.round(np.linspace(0, len(frames) - 1, min(8, len(frames)))).astype(int).tolist())) if frames else []
    fig = plt.figure(figsize=(11, 5.2))
    if frames:
        weights = frame_attention[: len(frames)] if frame_attention is not None else np.zeros(len(frames))
        top = max(float(weights.max()), 1e-6)
        for n, k in enumerate(shown):
            ax = fig.add_axes([0.02 + n * 0.12, 0.62, 0.11, 0.3])
            ax.imshow(frames[k])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{idx[k] / FPS:.1f} s", fontsize=7)
            bar = fig.add_axes([0.02 + n * 0.12, 0.57, 0.11 * float(weights[k]) / top + 1e-4, 0.03])
            bar.set_facecolor("tab:red")
            bar.set_xticks([]), bar.set_yticks([])
        fig.text(0.02, 0.53, "red bars: attention of the chosen answer over these frames (via the subtitles)",
                 fontsize=7, color="tab:red")
    sentences = window_subtitles(dataset.subs.get(item.vid_name, []), item.ts if dataset.sizes.use_ts else None,
                                 dataset.sizes.max_subs)
    line = ""
    if sentences:
        j = int(np.argmax(sub_attention[: len(sentences)])) if sub_attention is not None else 0
        s = sentences[j]
        line = f"most attended subtitle [{s.start:.1f}-{s.end:.1f} s]: {s.display()}"
    fig.text(0.02, 0.47, textwrap.shorten(line, 140), fontsize=9, style="italic")
    fig.text(0.02, 0.40, textwrap.shorten(f"Q ({item.qid}, {item.vid_name}): {item.question}", 140), fontsize=10,
             weight="bold")
    for i, answer in enumerate(item.answers):
        mark = "->" if i == chosen else "  "
        truth = "  (correct)" if item.answer_idx == i else ""
        colour = "black" if i != chosen else "tab:blue" if item.answer_idx is None else (
            "tab:green" if item.answer_idx == i else "tab:red")
        fig.text(0.02, 0.33 - 0.06 * i, textwrap.shorten(f"{mark} a{i}: {answer}   score {scores[i]:.2f}{truth}", 130),
                 fontsize=9, color=colour, family="monospace")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def infer_split(model: torch.nn.Module, dataset: VideoQADataset, out: Path, guard: OutputGuard,
                pictures: Path | None = None, max_pictures: int = 8, batch_size: int = 64) -> dict[str, Any]:
    """Write ``out`` = ``{qid: answer_idx}`` for every question; optional PNGs in ``pictures``."""
    if pictures is not None:
        guard.directory(pictures)
    result = predict(model, dataset, batch_size=batch_size, keep_outputs=pictures is not None)
    predictions = write_predictions(out, dataset, result["chosen"])
    written = []
    if pictures is not None:
        for batch in result["outputs"]:
            for row, index in enumerate(batch["index"].tolist()):
                if len(written) >= max_pictures:
                    break
                chosen = int(np.argmax(result["scores"][index]))
                attention = batch.get("frame_attention_via_subs", batch.get("frame_attention"))
                frame_att = attention[row, chosen].numpy() if attention is not None else None
                sub_att = batch["sub_attention"][row, chosen].numpy() if "sub_attention" in batch else None
                path = guard.file(pictures / f"{dataset.items[index].qid}.png")
                draw_example(path, dataset, index, result["scores"][index], frame_att, sub_att)
                written.append(str(path))
    guard.record()
    return {"questions": len(predictions), "out": str(out), "pictures": written, "seconds": result["seconds"],
            "scores": result["scores"], "chosen": result["chosen"]}


def hidden_answers(root: Path) -> dict[str, int] | None:
    """The synthetic set's test_public answers (``synth_test_public_answers.json``), if present."""
    path = Path(root) / "synth_test_public_answers.json"
    if not path.is_file():
        return None
    try:
        return {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
    except (ValueError, AttributeError) as exc:
        raise CvsuiteError(f"{path}: not a {{qid: answer_idx}} JSON object ({exc})") from None
