"""Questions of a split turned into model inputs: tokens, the ``ts`` window's subtitles and frames.

Answer mode (stage 2, eval, infer): five ``[CLS] q [SEP] a_i [SEP]`` inputs, label ``answer_idx``.
Question mode (stage 1): five ``[CLS] q_k [SEP] a* [SEP]`` inputs with the correct answer ``a*`` and the
true question among four questions of other items (:func:`question_negatives`), label = where the
true question went.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.errors import CvsuiteError

from .data import FPS, N_ANSWERS, QAItem, Sentence, Split, window_frames, window_subtitles
from .text import Tokenizer


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def question_negatives(items: list[QAItem], index: int, rng: np.random.Generator, k: int = 4,
                       by_vid: dict[str, list[int]] | None = None,
                       by_show: dict[str, list[int]] | None = None) -> list[int]:
    """``k`` item indices whose questions serve as stage-1 negatives for item ``index``: other questions of
    the same clip first, then of the same show, then any; never the item itself nor any item whose question
    text equals the true question (so the true question is never a negative)."""
    own = _norm(items[index].question)
    chosen: list[int] = []
    seen_text = {own}

    def take(pool: list[int]) -> None:
        for j in rng.permutation(pool).tolist() if pool else []:
            if len(chosen) == k:
                return
            text = _norm(items[j].question)
            if j != index and text not in seen_text:
                chosen.append(j)
                seen_text.add(text)

    vid, show = items[index].vid_name, items[index].show_name
    take(by_vid[vid] if by_vid is not None else [j for j, it in enumerate(items) if it.vid_name == vid])
    if len(chosen) < k:
        take(by_show[show] if by_show is not None else [j for j, it in enumerate(items) if it.show_name == show])
    if len(chosen) < k:
        # any item: sample candidates until k distinct questions are found (bounded tries, then a scan)
        for j in rng.integers(0, len(items), size=min(len(items), 8 * k)).tolist():
            take([j])
        if len(chosen) < k:
            take(list(range(len(items))))
    if len(chosen) < k:
        raise CvsuiteError(f"stage-1 question prediction needs {k + 1} different questions; the split has fewer")
    return chosen


class FrameCache:
    """Decoded, resized RGB frames (uint8 H x W x 3) by path; bounded by ``limit`` entries."""

    def __init__(self, size: tuple[int, int], limit: int = 50_000) -> None:
        self.size, self.limit = size, limit
        self.store: dict[Path, np.ndarray] = {}

    def get(self, path: Path) -> np.ndarray:
        image = self.store.get(path)
        if image is None:
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(path) as handle:
                    handle.load()
                    image = np.asarray(handle.convert("RGB").resize(self.size, Image.BILINEAR), dtype=np.uint8)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise CvsuiteError(f"cannot read frame {path}: {str(exc).splitlines()[0]}") from None
            if len(self.store) < self.limit:
                self.store[path] = image
        return image


@dataclass
class InputSizes:
    """Caps on the inputs of one question (see ``DataConfig`` in train.py)."""

    max_qa_len: int = 24
    max_sub_len: int = 16
    max_subs: int = 12
    max_frames: int = 12
    frame_width: int = 48
    frame_height: int = 32
    use_ts: bool = True


class VideoQADataset(Dataset):
    """Model inputs of every question of a :class:`Split` (see module docstring for the two modes)."""

    def __init__(self, split: Split, vocab: Tokenizer, sizes: InputSizes, mode: str = "answer",
                 visual: str = "frames", load_visual: bool = True, load_subtitles: bool = True,
                 need_labels: bool = True) -> None:
        if mode not in ("answer", "question"):
            raise ValueError(f"mode must be answer or question, got {mode!r}")
        self.split, self.vocab, self.sizes, self.mode = split, vocab, sizes, mode
        self.items = split.items
        self.visual = visual
        self.load_visual, self.load_subtitles = load_visual, load_subtitles
        if need_labels or mode == "question":
            unlabelled = [it for it in self.items if it.answer_idx is None]
            if unlabelled:
                raise CvsuiteError(f"{unlabelled[0].where}: missing field 'answer_idx' (needed to train or evaluate)")
        self.by_vid: dict[str, list[int]] = {}
        self.by_show: dict[str, list[int]] = {}
        for i, it in enumerate(self.items):
            self.by_vid.setdefault(it.vid_name, []).append(i)
            self.by_show.setdefault(it.show_name, []).append(i)
        self._h5 = None
        self.frames = FrameCache((sizes.frame_width, sizes.frame_height))
        self.frame_lists: dict[str, list[Path]] = {}
        self.subs: dict[str, list[Sentence]] = {}
        self._check_clips()

    # -- clips --------------------------------------------------------------------------------
    def _features(self):
        if self._h5 is None:
            import h5py

            try:
                self._h5 = h5py.File(self.split.features, "r")
            except OSError as exc:
                raise CvsuiteError(f"cannot open features {self.split.features}: {str(exc).splitlines()[0]}") from None
        return self._h5

    def _check_clips(self) -> None:
        """Every clip has its subtitles and its frames / features key: fail now, naming the clip."""
        for vid in self.by_vid:
            if self.load_subtitles:
                self.subs[vid] = list(self.split.subtitles.get(vid) or [])
            if not self.load_visual:
                continue
            if self.visual == "features":
                if self.split.features is None:
                    raise CvsuiteError("visual=features needs a features HDF5 file (--features / data.features)")
                h5 = self._features()
                if vid not in h5:
                    raise CvsuiteError(f"features file {self.split.features} has no entry for clip {vid}")
                shape = h5[vid].shape
                if len(shape) != 2 or shape[0] == 0:
                    raise CvsuiteError(f"features of clip {vid} in {self.split.features} must be (frames, dim), got {shape}")
            else:
                frames = self.split.frames_of(vid)
                if not frames:
                    raise CvsuiteError(f"clip {vid} has no frames (looked for *.jpg of {vid} under the dataset's frame folder)")
                self.frame_lists[vid] = frames

    def feature_dim(self) -> int:
        if self.visual != "features":
            return 3
        first = next(iter(self.by_vid))
        return int(self._features()[first].shape[1])

    def _visual(self, item: QAItem) -> tuple[np.ndarray, np.ndarray]:
        ts = item.ts if self.sizes.use_ts else None
        if self.visual == "features":
            data = self._features()[item.vid_name]
            idx = window_frames(data.shape[0], ts, self.sizes.max_frames)
            values = np.asarray(data[np.unique(idx)] if len(idx) else data[:0], dtype=np.float32)
            if not np.isfinite(values).all():
                raise CvsuiteError(f"features of clip {item.vid_name} in {self.split.features} hold NaN or inf")
            return values, idx.astype(np.float32) / FPS
        paths = self.frame_lists[item.vid_name]
        idx = window_frames(len(paths), ts, self.sizes.max_frames)
        images = np.stack([self.frames.get(paths[k]) for k in idx])
        return images, idx.astype(np.float32) / FPS

    # -- items --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def _sub_tokens(self, sentences: list[Sentence]) -> tuple[np.ndarray, np.ndarray]:
        size = self.sizes.max_sub_len
        tokens = np.zeros((len(sentences), size), dtype=np.int64)
        times = np.zeros((len(sentences), 2), dtype=np.float32)
        for j, s in enumerate(sentences):
            ids = self.vocab.encode_sentence(s.display(), size)
            tokens[j, : len(ids)] = ids
            times[j] = (s.start, s.end)
        return tokens, times

    def candidates(self, index: int) -> tuple[list[list[int]], list[list[int]], int]:
        """The five token inputs, their answer-segment masks and the label of item ``index``."""
        item = self.items[index]
        size = self.sizes.max_qa_len
        if self.mode == "answer":
            pairs = [self.vocab.encode_pair(item.question, a, size) for a in item.answers]
            label = -1 if item.answer_idx is None else item.answer_idx
        else:
            answer = item.answers[item.answer_idx]  # type: ignore[index]
            negatives = question_negatives(self.items, index, np.random.default_rng(np.random.randint(2**31)),
                                           N_ANSWERS - 1, self.by_vid, self.by_show)
            order = [index] + negatives
            perm = np.random.permutation(N_ANSWERS)
            questions = [order[p] for p in perm]
            label = int(np.flatnonzero(perm == 0)[0])
            pairs = [self.vocab.encode_pair(self.items[j].question, answer, size) for j in questions]
        return [p[0] for p in pairs], [p[1] for p in pairs], label

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        ids, segments, label = self.candidates(index)
        size = self.sizes.max_qa_len
        qa = np.zeros((N_ANSWERS, size), dtype=np.int64)
        seg = np.zeros((N_ANSWERS, size), dtype=bool)
        for i, (t, s) in enumerate(zip(ids, segments)):
            qa[i, : len(t)] = t
            seg[i, : len(s)] = np.asarray(s, dtype=bool)
        out: dict[str, Any] = {"qa": qa, "seg": seg, "label": label, "index": index}
        if self.load_subtitles:
            ts = item.ts if self.sizes.use_ts else None
            sentences = window_subtitles(self.subs[item.vid_name], ts, self.sizes.max_subs)
            out["subs"], out["sub_times"] = self._sub_tokens(sentences)
        if self.load_visual:
            out["visual"], out["frame_times"] = self._visual(item)
        return out


def collate(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad subtitles (B, S, L) and frames (B, T, ...) to the batch maximum; ``*_valid`` mark real entries."""
    batch: dict[str, torch.Tensor] = {
        "qa": torch.from_numpy(np.stack([s["qa"] for s in samples])),
        "seg": torch.from_numpy(np.stack([s["seg"] for s in samples])),
        "label": torch.tensor([s["label"] for s in samples], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
    }
    b = len(samples)
    if "subs" in samples[0]:
        n = max(1, max(len(s["subs"]) for s in samples))
        length = samples[0]["subs"].shape[1] if samples[0]["subs"].ndim == 2 else 1
        subs = np.zeros((b, n, length), dtype=np.int64)
        times = np.zeros((b, n, 2), dtype=np.float32)
        valid = np.zeros((b, n), dtype=bool)
        for i, s in enumerate(samples):
            k = len(s["subs"])
            if k:
                subs[i, :k], times[i, :k] = s["subs"], s["sub_times"]
                valid[i, :k] = True
        batch.update(subs=torch.from_numpy(subs), sub_times=torch.from_numpy(times), sub_valid=torch.from_numpy(valid))
    if "visual" in samples[0]:
        t = max(1, max(len(s["visual"]) for s in samples))
        first = samples[0]["visual"]
        visual = np.zeros((b, t, *first.shape[1:]), dtype=first.dtype)
        times = np.zeros((b, t), dtype=np.float32)
        valid = np.zeros((b, t), dtype=bool)
        for i, s in enumerate(samples):
            k = len(s["visual"])
            visual[i, :k], times[i, :k] = s["visual"], s["frame_times"][:k]
            valid[i, :k] = True
        batch.update(visual=torch.from_numpy(visual), frame_times=torch.from_numpy(times),
                     frame_valid=torch.from_numpy(valid))
    return batch
