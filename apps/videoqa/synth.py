"""Seeded synthetic multiple-choice video QA in the exact TVQA release layout.

Each clip is ``segments`` consecutive shots of ``segment_s`` seconds rendered at 3 fps over a real
photo from scikit-image: in shot ``k`` one character (a figure in a colour drawn at random *per clip*,
so colour never names a person) holds one object (a coloured ball, box or cone) and speaks one
subtitle line (``(Name:)...`` in the ``.srt``; the lines never mention objects). Questions:

* ``what``: "What is Ann holding while talking?" - the subtitles say *when* Ann speaks, only the frames
  of that span say *what* she holds;
* ``who``: "Who speaks while holding the red ball?" - the frames say *when* the ball is held, only the
  subtitles of that span say *who* speaks;
* ``which`` (frames alone): "Which object is held?" - one object of the window against four never shown;
* ``how`` (subtitles alone): "How is the party, according to Ann?" - Ann's line says it.

``what`` and ``who`` need both streams and their alignment in time; ``which`` and ``how`` are single-stream
questions (as TVQA has too) that also teach the parts. ``ts`` covers four shots around the
asked one; four of the five candidates occur inside that window (one outside), so a model that only
checks what is visible (or who speaks) in the window stays near 25 %.

Written (``ROOT`` = ``--out``)::

    ROOT/tvqa_qa_release/tvqa_{train,val,test_public}.jsonl
    ROOT/tvqa_subtitles/<vid_name>.srt
    ROOT/frames_hq/synth_frames/<vid_name>/00001.jpg ...
    ROOT/synth_test_public_answers.json      {qid: answer_idx} (test_public ships without labels)

Everything is a pure function of ``(seed, clip index)``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.data.images import bundled_photo
from shared.errors import UsageError
from shared.guard import OutputGuard

from .data import FPS, Sentence, write_srt

NAMES = ("Ann", "Ben", "Cora", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun")
COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 225), "green": (40, 170, 60), "yellow": (235, 210, 40)}
SHAPES = ("ball", "box", "cone")
OBJECTS = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
BODY_PALETTE = ((150, 80, 170), (240, 140, 40), (120, 120, 125), (240, 240, 235), (120, 75, 40),
                (40, 190, 200), (240, 150, 190), (30, 30, 35))
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel")
SHOW = "Synth Sitcom"
_WORDS = {
    "start": ("well", "look", "okay", "so", "listen", "honestly", "wait", "hey"),
    "thing": ("weekend", "meeting", "party", "movie", "dinner", "trip", "game", "concert"),
    "adj": ("great", "strange", "late", "boring", "fun", "over", "cancelled", "tomorrow"),
}
WHAT_TEMPLATES = ("What is {name} holding while talking?", "What does {name} hold when speaking?")
WHO_TEMPLATES = ("Who speaks while holding the {object}?", "Who is talking while the {object} is held?")
KINDS = ("what", "who", "which", "how", "what", "who")
N_CHOICES = 5


@dataclass
class SynthConfig:
    segments: int = 6
    segment_s: float = 2.0
    window: int = 4            # shots covered by ts
    questions: int = 6         # per clip: what, who, which, how, what, who
    width: int = 96
    height: int = 64
    jpeg_quality: int = 90


def _background(rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    photo = bundled_photo(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    h, w = photo.shape[:2]
    crop_h = int(min(h, w * cfg.height / cfg.width) * rng.uniform(0.4, 0.8))
    crop_w = min(w, int(crop_h * cfg.width / cfg.height))
    y, x = int(rng.integers(0, h - crop_h + 1)), int(rng.integers(0, w - crop_w + 1))
    patch = photo[y:y + crop_h, x:x + crop_w]
    patch = cv2.resize(np.ascontiguousarray(patch[..., :3]), (cfg.width, cfg.height), interpolation=cv2.INTER_AREA)
    # a softened photo (blended towards grey) keeps the scene real but the held object the salient thing
    return (0.55 * patch.astype(np.float32) + 0.45 * 110.0).astype(np.uint8)


def _draw(frame: np.ndarray, x: int, body: tuple[int, int, int], obj: str) -> None:
    """A figure (head + body) at column ``x`` holding ``obj`` at its right hand."""
    h = frame.shape[0]
    cv2.circle(frame, (x, h // 2 - 16), 6, body, -1)
    cv2.rectangle(frame, (x - 7, h // 2 - 9), (x + 7, h // 2 + 18), body, -1)
    colour_name, shape = obj.split()
    colour = COLOURS[colour_name]
    cx, cy, r = x + 18, h // 2 + 2, 10
    if shape == "ball":
        cv2.circle(frame, (cx, cy), r, colour, -1)
    elif shape == "box":
        cv2.rectangle(frame, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        pts = np.array([[cx, cy - r - 1], [cx - r - 1, cy + r], [cx + r + 1, cy + r]], np.int32)
        cv2.fillPoly(frame, [pts], colour)


def make_clip(seed: int, index: int, cfg: SynthConfig) -> dict[str, Any]:
    """One clip: frames (RGB uint8), subtitle cues and labelled questions."""
    rng = np.random.default_rng([seed, index])
    speakers = [NAMES[i] for i in rng.permutation(len(NAMES))[: cfg.segments]]
    objects = [OBJECTS[i] for i in rng.permutation(len(OBJECTS))[: cfg.segments]]
    bodies = [BODY_PALETTE[i] for i in rng.permutation(len(BODY_PALETTE))[: cfg.segments]]
    background = _background(rng, cfg)
    duration = cfg.segments * cfg.segment_s
    n_frames = int(round(duration * FPS))
    starts = rng.integers(12, cfg.width - 34, size=cfg.segments)
    drift = rng.uniform(-1.0, 1.0, size=cfg.segments)
    frames = []
    for f in range(n_frames):
        t = f / FPS
        k = min(int(t // cfg.segment_s), cfg.segments - 1)
        frame = background.copy()
        x = int(np.clip(starts[k] + drift[k] * (t - k * cfg.segment_s) * FPS, 10, cfg.width - 30))
        _draw(frame, x, bodies[k], objects[k])
        frames.append(frame)
    cues = []
    things = rng.permutation(len(_WORDS["thing"]))[: cfg.segments]  # each speaker talks about a different thing
    lines = []
    for k in range(cfg.segments):
        start = k * cfg.segment_s + float(rng.uniform(0.05, 0.35))
        end = (k + 1) * cfg.segment_s - float(rng.uniform(0.05, 0.35))
        thing = _WORDS["thing"][int(things[k])]
        adj = _WORDS["adj"][int(rng.integers(len(_WORDS["adj"])))]
        opener = _WORDS["start"][int(rng.integers(len(_WORDS["start"])))]
        lines.append((thing, adj))
        cues.append(Sentence(round(start, 3), round(end, 3), f"{opener.capitalize()}, the {thing} is {adj}.", speakers[k]))
    questions = []
    asked = rng.permutation(cfg.segments)[: cfg.questions]
    absent = [o for o in OBJECTS if o not in objects]
    for q_index, k in enumerate(asked.tolist()):
        w0 = int(rng.integers(max(0, k - cfg.window + 1), min(k, cfg.segments - cfg.window) + 1))
        inside = [j for j in range(w0, w0 + cfg.window) if j != k]
        outside = [j for j in range(cfg.segments) if not w0 <= j < w0 + cfg.window]
        chosen = [k] + [inside[i] for i in rng.permutation(len(inside))[:3]] + [outside[int(rng.integers(len(outside)))]]
        order = rng.permutation(N_CHOICES)
        kind = KINDS[q_index % len(KINDS)]
        if kind == "what":
            question = WHAT_TEMPLATES[int(rng.integers(2))].format(name=speakers[k])
            options = [f"A {objects[j]}." for j in chosen]
        elif kind == "who":
            question = WHO_TEMPLATES[int(rng.integers(2))].format(object=objects[k])
            options = [f"{speakers[j]}." for j in chosen]
        elif kind == "which":  # frames alone: the one object held in the window vs four never shown
            question = "Which object is held?"
            options = [f"A {objects[k]}."] + [f"A {absent[i]}." for i in rng.permutation(len(absent))[:4]]
        else:  # "how": subtitles alone: what the named speaker says
            thing, adj = lines[k]
            question = f"How is the {thing}, according to {speakers[k]}?"
            others = [a for a in _WORDS["adj"] if a != adj]
            options = [f"It is {adj}."] + [f"It is {others[i]}." for i in rng.permutation(len(others))[:4]]
        answers = [options[o] for o in order]
        ts = (w0 * cfg.segment_s, (w0 + cfg.window) * cfg.segment_s)
        questions.append({"q": question, "answers": answers, "answer_idx": int(np.flatnonzero(order == 0)[0]),
                          "ts": f"{ts[0]:.2f}-{ts[1]:.2f}", "q_index": q_index, "kind": kind})
    return {"frames": frames, "cues": cues, "questions": questions}


def split_of(index: int, clips: int) -> str:
    """70 % train, 15 % val, 15 % test_public by clip (every split gets at least one clip when clips >= 3)."""
    n_val = max(1, int(round(0.15 * clips))) if clips >= 3 else 0
    n_test = max(1, int(round(0.15 * clips))) if clips >= 3 else 0
    n_train = clips - n_val - n_test
    return "train" if index < n_train else "val" if index < n_train + n_val else "test_public"


def vid_name(seed: int, index: int) -> str:
    return f"synth_s{seed % 100:02d}e{index // 100 + 1:02d}_seg01_clip_{index % 100:02d}"


def write_dataset(out: str | Path, clips: int, seed: int, cfg: SynthConfig | None = None,
                  guard: OutputGuard | None = None) -> dict[str, int]:
    """Write ``clips`` clips and their questions under ``out`` in the TVQA release layout."""
    cfg = cfg or SynthConfig()
    if clips < 3:
        raise UsageError(f"--clips must be at least 3 (one clip per split), got {clips}")
    if clips > 9900:
        raise UsageError(f"--clips must be at most 9900, got {clips}")
    out = Path(out)
    guard = guard or OutputGuard()
    guard.directory(out)
    qa_files = {s: out / "tvqa_qa_release" / f"tvqa_{s}.jsonl" for s in ("train", "val", "test_public")}
    answers_file = out / "synth_test_public_answers.json"
    for path in (*qa_files.values(), answers_file):
        guard.file(path)
    rows: dict[str, list[str]] = {s: [] for s in qa_files}
    hidden: dict[str, int] = {}
    counts = {"clips": clips, "frames": 0}
    for index in range(clips):
        clip = make_clip(seed, index, cfg)
        name = vid_name(seed, index)
        split = split_of(index, clips)
        srt = guard.file(out / "tvqa_subtitles" / f"{name}.srt")
        write_srt(srt, clip["cues"])
        folder = out / "frames_hq" / "synth_frames" / name
        guard.directory(folder)
        for f, frame in enumerate(clip["frames"], start=1):
            path = guard.file(folder / f"{f:05d}.jpg")
            cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        counts["frames"] += len(clip["frames"])
        for q in clip["questions"]:
            qid = (seed % 1000) * 100_000 + index * 10 + q["q_index"]
            record: dict[str, Any] = {"a0": q["answers"][0], "a1": q["answers"][1], "a2": q["answers"][2],
                                      "a3": q["answers"][3], "a4": q["answers"][4], "q": q["q"], "qid": qid,
                                      "show_name": SHOW, "ts": q["ts"], "vid_name": name}
            if split == "test_public":
                hidden[str(qid)] = q["answer_idx"]
            else:
                record["answer_idx"] = q["answer_idx"]
            rows[split].append(json.dumps(record, sort_keys=True))
    for split, path in qa_files.items():
        path.write_text("\n".join(rows[split]) + "\n")
        counts[split] = len(rows[split])
    answers_file.write_text(json.dumps(hidden, indent=0, sort_keys=True) + "\n")
    guard.record()
    return counts
