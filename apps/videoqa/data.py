"""Readers for multiple-choice video QA datasets in their official on-disk layouts.

TVQA (jayleicn/TVQA, release as it unpacks under ``ROOT``)::

    ROOT/tvqa_qa_release/tvqa_{train,val,test_public}.jsonl   qid q a0..a4 answer_idx ts vid_name show_name
    ROOT/tvqa_subtitles/<vid_name>.srt                         "(Speaker:)line" cues
    ROOT/tvqa_preprocessed_subtitles.jsonl                     {"vid_name", "sub": [{"text","start","end"}]} (optional)
    ROOT/frames_hq/<show>_frames/<vid_name>/00001.jpg          3 fps frames, 1-based
    FEATURES.h5                                                h5[vid_name] = (n_frames, D) per-frame features

``answer_idx`` is absent in ``test_public``; ``ts`` is the localised span ``"start-end"`` in seconds.
The show folder is the ``vid_name`` prefix (``friends_s01e02_...`` -> ``friends``), or ``bbt`` for
The Big Bang Theory, whose clip names start with ``sSSeEE``.

TVQA+ (jayleicn/TVQAplus): a JSON *list* of the same QA fields, ``answer_idx`` as a string, a refined
``ts`` as ``[start, end]`` floats and ``bbox`` = ``{img_id: [{img_id, top, left, width, height,
label}]}`` (1-based frame ids of the same 3 fps frames).

DramaQA (dramaqa.github.io dataset page): ``AnotherMissOhQA_{split}_set.json`` a list of ``qid, que,
answers[5], correct_idx, vid, videoType, shot_contained, q_level_mem, q_level_logic``;
``AnotherMissOh_script.json`` = ``{vid: {"contained_subs": [{st, et, speaker, utter}], st, et}}``;
frames ``AnotherMissOh_images/<episode>/<scene>/<shot>/*.jpg`` (3 fps).

Every reader refuses a malformed record with one :class:`CvsuiteError` naming the file and the line
(jsonl, srt) or the item (JSON lists).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from shared.errors import CvsuiteError, UsageError

FPS = 3.0
N_ANSWERS = 5
SPLITS = ("train", "val", "test_public")
TVQA_SHOWS = ("bbt", "friends", "grey", "met", "castle", "house")
_QWORDS = ("what", "who", "where", "why", "how", "when", "which")


@dataclass
class Sentence:
    """One subtitle cue: time span in seconds, speaker (may be empty) and text."""

    start: float
    end: float
    text: str
    speaker: str = ""

    def display(self) -> str:
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass
class QAItem:
    """One multiple-choice question, independent of the dataset it came from."""

    qid: int | str
    question: str
    answers: list[str]
    answer_idx: int | None
    ts: tuple[float, float] | None
    vid_name: str
    show_name: str = ""
    qtype: str = "other"
    where: str = ""            # "file:line" of the record, for messages
    boxes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # TVQA+ per-frame boxes
    levels: dict[str, int] = field(default_factory=dict)                 # DramaQA memory / logic


def question_type(question: str) -> str:
    """TVQA's question type: the first question word (what, who, where, why, how, when, which) or ``other``."""
    for word in re.findall(r"[a-z]+", question.lower()):
        if word in _QWORDS:
            return word
    return "other"


# ---- small parsing helpers -----------------------------------------------------------------------

def _jsonl_records(path: Path) -> Iterable[tuple[str, Any]]:
    """``(file:line, parsed object)`` for every non-blank line of a JSON-lines file; one error line otherwise."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise CvsuiteError(f"{where}: not valid JSON ({exc.msg})") from None


def _read_json(path: Path, kind: type, what: str) -> Any:
    """A JSON file whose top level must be ``kind`` (list or dict); one error line naming the file otherwise."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise CvsuiteError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, kind):
        raise CvsuiteError(f"{path}: {what}")
    return data


def _read_text(path: Path) -> str:
    """File text as UTF-8, else ISO-8859-1 (what the official TVQA loader opens the .srt files with)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CvsuiteError(f"file not found: {path}") from None
    except OSError as exc:
        raise CvsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def _finite(value: Any, where: str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CvsuiteError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise CvsuiteError(f"{where}: {name} {value!r} is not a finite number")
    return number


def parse_ts(value: Any, where: str) -> tuple[float, float]:
    """TVQA ``"start-end"`` (or TVQA+ ``[start, end]``) -> (start, end) seconds; refuses NaN and end < start."""
    if isinstance(value, str):
        parts = value.strip().split("-")
        if len(parts) != 2:
            raise CvsuiteError(f"{where}: ts {value!r} is not 'start-end' in seconds")
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        parts = list(value)
    else:
        raise CvsuiteError(f"{where}: ts {value!r} is not 'start-end' in seconds")
    start, end = (_finite(p, where, "ts") for p in parts)
    if start < 0 or end < start:
        raise CvsuiteError(f"{where}: ts {value!r} has end before start (or a negative start)")
    return start, end


def _answer_index(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool):
        raise CvsuiteError(f"{where}: {key} {value!r} is not an integer 0-4")
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise CvsuiteError(f"{where}: {key} {value!r} is not an integer 0-4") from None
    if str(index) != str(value).strip() and index != value:
        raise CvsuiteError(f"{where}: {key} {value!r} is not an integer 0-4")
    if not 0 <= index < N_ANSWERS:
        raise CvsuiteError(f"{where}: {key} {index} is out of range (0-4 for five answers)")
    return index


def _text(record: dict[str, Any], key: str, where: str) -> str:
    if key not in record:
        raise CvsuiteError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, str):
        raise CvsuiteError(f"{where}: field {key!r} must be text, got {type(value).__name__}")
    return value


# ---- TVQA ----------------------------------------------------------------------------------------

def tvqa_item(record: Any, where: str, labelled: bool | None, bad_ts: str = "error") -> QAItem:
    """One TVQA (or TVQA+) record -> QAItem. ``labelled``: answer_idx required (True), absent allowed (None)."""
    if not isinstance(record, dict):
        raise CvsuiteError(f"{where}: a record must be a JSON object")
    extra = [k for k in record if re.fullmatch(r"a\d+", k) and int(k[1:]) >= N_ANSWERS]
    if extra:
        raise CvsuiteError(f"{where}: has {len(extra) + N_ANSWERS} answers ({', '.join(sorted(extra))}); "
                           f"multiple-choice QA needs exactly {N_ANSWERS} (a0..a4)")
    for key in ("qid", "q", *(f"a{i}" for i in range(N_ANSWERS)), "vid_name"):
        if key not in record:
            raise CvsuiteError(f"{where}: missing field {key!r}"
                               + (" (five answers a0..a4 are needed)" if key.startswith("a") else ""))
    answers = [_text(record, f"a{i}", where) for i in range(N_ANSWERS)]
    answer_idx = None
    if "answer_idx" in record:
        answer_idx = _answer_index(record["answer_idx"], where, "answer_idx")
    elif labelled:
        raise CvsuiteError(f"{where}: missing field 'answer_idx' (needed to train or evaluate)")
    ts = None
    if "ts" in record:
        try:
            ts = parse_ts(record["ts"], where)
        except CvsuiteError:
            if bad_ts != "whole_clip":
                raise CvsuiteError(f"{where}: ts {record['ts']!r} is malformed (NaN, not 'start-end', or end < "
                                   "start); pass data.bad_ts=whole_clip to use the whole clip for such rows") from None
    question = _text(record, "q", where)
    qid = record["qid"]
    if not isinstance(qid, (int, str)) or isinstance(qid, bool):
        raise CvsuiteError(f"{where}: qid {qid!r} must be an integer or a string")
    boxes: dict[int, list[dict[str, Any]]] = {}
    if isinstance(record.get("bbox"), dict):
        for key, value in record["bbox"].items():
            try:
                frame_id = int(key)
            except ValueError:
                raise CvsuiteError(f"{where}: bbox key {key!r} is not a frame id") from None
            if not isinstance(value, list):
                raise CvsuiteError(f"{where}: bbox of frame {key} must be a list of boxes")
            for box in value:
                if not isinstance(box, dict) or any(k not in box for k in ("top", "left", "width", "height")):
                    raise CvsuiteError(f"{where}: a box of frame {key} needs top, left, width, height")
            boxes[frame_id] = value
    return QAItem(qid=qid, question=question, answers=answers, answer_idx=answer_idx, ts=ts,
                  vid_name=_text(record, "vid_name", where), show_name=str(record.get("show_name", "")),
                  qtype=question_type(question), where=where, boxes=boxes)


def read_tvqa_jsonl(path: str | Path, labelled: bool | None = None, bad_ts: str = "error") -> list[QAItem]:
    """All questions of a TVQA ``tvqa_<split>.jsonl`` file (one JSON object per line)."""
    path = Path(path)
    items: list[QAItem] = []
    for where, record in _jsonl_records(path):
        items.append(tvqa_item(record, where, labelled, bad_ts))
    if not items:
        raise CvsuiteError(f"{path}: holds no questions")
    return items


def read_tvqa_plus(path: str | Path, labelled: bool | None = None, bad_ts: str = "error") -> list[QAItem]:
    """All questions of a TVQA+ annotation file (a JSON list; ``ts`` as [start, end], ``bbox`` per frame)."""
    path = Path(path)
    data = _read_json(path, list, "a TVQA+ file holds a JSON list of questions")
    items = [tvqa_item(record, f"{path} item {i}", labelled, bad_ts) for i, record in enumerate(data)]
    if not items:
        raise CvsuiteError(f"{path}: holds no questions")
    return items


_SRT_TIME = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})")
_SPEAKER = re.compile(r"^\s*\(([^()]*?):?\)\s*(.*)$", re.S)


def split_speaker(text: str) -> tuple[str, str]:
    """TVQA subtitle text ``"(Sheldon:)Hi."`` or ``"Sheldon : Hi."`` -> (speaker, line); no speaker -> ("", text)."""
    text = " ".join(text.split())
    match = _SPEAKER.match(text)
    if match:
        return match.group(1).strip().rstrip(":").strip(), match.group(2).strip()
    head, sep, tail = text.partition(" : ")
    if sep and 0 < len(head.split()) <= 3:
        return head.strip(), tail.strip()
    return "", text


def read_srt(path: str | Path) -> list[Sentence]:
    """Subtitle cues of one ``.srt`` file: index line, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text lines."""
    path = Path(path)
    lines = _read_text(path).splitlines()
    sentences: list[Sentence] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        start_line = i + 1
        if lines[i].strip().isdigit():
            i += 1
        if i >= len(lines):
            raise CvsuiteError(f"{path}:{start_line}: cue without a time line")
        match = _SRT_TIME.match(lines[i])
        if not match:
            raise CvsuiteError(f"{path}:{i + 1}: broken timestamp line {lines[i].strip()[:60]!r} "
                               "(expected HH:MM:SS,mmm --> HH:MM:SS,mmm)")
        g = [int(x) for x in match.groups()]
        if g[2] > 59 or g[6] > 59 or g[1] > 59 or g[5] > 59:
            raise CvsuiteError(f"{path}:{i + 1}: broken timestamp line {lines[i].strip()[:60]!r} (minutes/seconds > 59)")
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 10 ** len(match.group(4))
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 10 ** len(match.group(8))
        if end < start:
            raise CvsuiteError(f"{path}:{i + 1}: cue ends before it starts ({lines[i].strip()})")
        i += 1
        text_lines = []
        while i < len(lines) and lines[i].strip():
            text_lines.append(lines[i].strip())
            i += 1
        speaker, text = split_speaker(" ".join(text_lines))
        sentences.append(Sentence(start, end, text, speaker))
    return sentences


def write_srt(path: Path, sentences: Iterable[Sentence]) -> None:
    """Write cues in the TVQA ``.srt`` style (speaker as ``(Name:)`` prefix)."""
    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    blocks = []
    for index, s in enumerate(sentences, start=1):
        text = f"({s.speaker}:){s.text}" if s.speaker else s.text
        blocks.append(f"{index}\n{stamp(s.start)} --> {stamp(s.end)}\n{text}\n")
    path.write_text("\n".join(blocks), encoding="utf-8")


def read_subtitle_jsonl(path: str | Path) -> dict[str, list[Sentence]]:
    """The preprocessed subtitle file: one ``{"vid_name": str, "sub": [{"text","start","end"}]}`` per line."""
    path = Path(path)
    out: dict[str, list[Sentence]] = {}
    for where, record in _jsonl_records(path):
        if not isinstance(record, dict) or "vid_name" not in record or not isinstance(record.get("sub"), list):
            raise CvsuiteError(f"{where}: needs 'vid_name' and a 'sub' list")
        sentences = []
        for cue in record["sub"]:
            if not isinstance(cue, dict) or any(k not in cue for k in ("text", "start", "end")):
                raise CvsuiteError(f"{where}: every 'sub' entry needs text, start, end")
            start, end = _finite(cue["start"], where, "start"), _finite(cue["end"], where, "end")
            if end < start:
                raise CvsuiteError(f"{where}: a cue ends before it starts ({start}-{end})")
            speaker, text = split_speaker(str(cue["text"]))
            sentences.append(Sentence(start, end, text, speaker))
        out[str(record["vid_name"])] = sentences
    return out


def read_tvqa_plus_subtitles(path: str | Path) -> dict[str, list[Sentence]]:
    """TVQA+ ``tvqa_plus_subtitles.json``: ``{vid_name: {"sub_text": "s1 <eos> s2 ...", "sub_time": [start, ...]}}``.
    Only start times are given: a sentence ends where the next one starts (the last one 2 s later)."""
    path = Path(path)
    data = _read_json(path, dict, "a TVQA+ subtitle file holds a JSON object keyed by vid_name")
    out: dict[str, list[Sentence]] = {}
    for vid, entry in data.items():
        where = f"{path} vid {vid}"
        if not isinstance(entry, dict) or not isinstance(entry.get("sub_text"), str) or not isinstance(entry.get("sub_time"), list):
            raise CvsuiteError(f"{where}: needs 'sub_text' (text joined by ' <eos> ') and a 'sub_time' list")
        texts = entry["sub_text"].split(" <eos> ")
        times = [_finite(t, where, "sub_time") for t in entry["sub_time"]]
        if len(texts) != len(times):
            raise CvsuiteError(f"{where}: {len(texts)} sentences but {len(times)} sub_time values")
        cues = []
        for i, (text, start) in enumerate(zip(texts, times)):
            end = times[i + 1] if i + 1 < len(times) and times[i + 1] >= start else start + 2.0
            speaker, line = split_speaker(text)
            cues.append(Sentence(start, end, line, speaker))
        out[str(vid)] = cues
    return out


def show_folder(vid_name: str) -> str:
    """``<show>_frames`` folder of a TVQA clip: the name prefix, ``bbt`` for ``sSSeEE_...`` clips."""
    if re.match(r"^s\d+e\d+", vid_name):
        return "bbt_frames"
    return vid_name.split("_", 1)[0] + "_frames"


# ---- DramaQA -------------------------------------------------------------------------------------

def read_dramaqa(path: str | Path, labelled: bool | None = None) -> list[QAItem]:
    """Questions of ``AnotherMissOhQA_<split>_set.json`` (qid, que, answers[5], correct_idx, vid, levels)."""
    path = Path(path)
    data = _read_json(path, list, "a DramaQA QA file holds a JSON list of questions")
    items = []
    for i, record in enumerate(data):
        where = f"{path} item {i}"
        if not isinstance(record, dict):
            raise CvsuiteError(f"{where}: a record must be a JSON object")
        for key in ("qid", "que", "answers", "vid"):
            if key not in record:
                raise CvsuiteError(f"{where}: missing field {key!r}")
        answers = record["answers"]
        if not isinstance(answers, list) or len(answers) != N_ANSWERS or not all(isinstance(a, str) for a in answers):
            raise CvsuiteError(f"{where}: 'answers' must be a list of {N_ANSWERS} strings, got "
                               f"{len(answers) if isinstance(answers, list) else type(answers).__name__}")
        answer_idx = None
        if "correct_idx" in record:
            answer_idx = _answer_index(record["correct_idx"], where, "correct_idx")
        elif labelled:
            raise CvsuiteError(f"{where}: missing field 'correct_idx' (needed to train or evaluate)")
        levels = {k: int(record[k]) for k in ("q_level_mem", "q_level_logic") if isinstance(record.get(k), int)}
        question = _text(record, "que", where)
        items.append(QAItem(qid=record["qid"], question=question, answers=list(answers), answer_idx=answer_idx,
                            ts=None, vid_name=_text(record, "vid", where), show_name="AnotherMissOh",
                            qtype=question_type(question), where=where, levels=levels))
    if not items:
        raise CvsuiteError(f"{path}: holds no questions")
    return items


def read_dramaqa_script(path: str | Path) -> dict[str, list[Sentence]]:
    """``AnotherMissOh_script.json``: ``{vid: {"contained_subs": [{st, et, speaker, utter}]}}`` -> cues."""
    path = Path(path)
    data = _read_json(path, dict, "a DramaQA script file holds a JSON object keyed by vid")
    out: dict[str, list[Sentence]] = {}
    for vid, entry in data.items():
        where = f"{path} vid {vid}"
        subs = entry.get("contained_subs", []) if isinstance(entry, dict) else None
        if not isinstance(subs, list):
            raise CvsuiteError(f"{where}: 'contained_subs' must be a list")
        sentences = []
        for cue in subs:
            if not isinstance(cue, dict) or any(k not in cue for k in ("st", "et", "utter")):
                raise CvsuiteError(f"{where}: every contained_subs entry needs st, et, utter")
            start, end = _finite(cue["st"], where, "st"), _finite(cue["et"], where, "et")
            sentences.append(Sentence(min(start, end), max(start, end), str(cue["utter"]), str(cue.get("speaker", ""))))
        out[str(vid)] = sorted(sentences, key=lambda s: s.start)
    return out


def dramaqa_frame_dirs(images_root: Path, vid: str, shot_contained: list[int] | None = None) -> list[Path]:
    """Frame folders of a DramaQA vid: ``<episode>/<scene>/<shot>`` for a shot; all shots of a scene
    (``..._0000``), in order."""
    parts = vid.split("_")
    if len(parts) != 3:
        raise CvsuiteError(f"DramaQA vid {vid!r} is not episode_scene_shot")
    episode, scene, shot = parts
    if shot != "0000":
        return [images_root / episode / scene / shot]
    scene_dir = images_root / episode / scene
    if not scene_dir.is_dir():
        return []
    return sorted(p for p in scene_dir.iterdir() if p.is_dir())


# ---- the split of a dataset root -----------------------------------------------------------------

@dataclass
class Split:
    """Questions of one split plus where their subtitles and visual input come from."""

    items: list[QAItem]
    subtitles: dict[str, list[Sentence]] | Any   # vid_name -> cues (dict or lazy loader with .get)
    frames_of: Any                               # vid_name -> list of frame paths (callable) or None
    features: str | None = None                  # HDF5 path keyed by vid_name
    dataset: str = "tvqa"


class SrtFolder:
    """Lazy ``vid_name -> cues`` over ``tvqa_subtitles/<vid_name>.srt`` (each file read once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cache: dict[str, list[Sentence]] = {}

    def get(self, vid_name: str) -> list[Sentence]:
        if vid_name not in self.cache:
            path = self.folder / f"{vid_name}.srt"
            if not path.is_file():
                raise CvsuiteError(f"no subtitles for clip {vid_name}: {path} not found")
            self.cache[vid_name] = read_srt(path)
        return self.cache[vid_name]


def tvqa_frames(root: Path):
    """``vid_name -> sorted frame paths`` under ``frames_hq/<show>_frames/<vid_name>/``."""
    base = root / "frames_hq"

    def frames_of(vid_name: str) -> list[Path]:
        folder = base / show_folder(vid_name) / vid_name
        return sorted(folder.glob("*.jpg")) if folder.is_dir() else []

    return frames_of


def detect_dataset(root: Path) -> str:
    if (root / "tvqa_qa_release").is_dir():
        return "tvqa"
    if any(root.glob("tvqa_plus_*.json")):
        return "tvqa_plus"
    if any(root.glob("AnotherMissOhQA_*_set.json")):
        return "dramaqa"
    raise CvsuiteError(f"{root} is not a TVQA root (tvqa_qa_release/), a TVQA+ folder (tvqa_plus_*.json) "
                       "or a DramaQA folder (AnotherMissOhQA_*_set.json)")


_TVQA_PLUS_FILES = {"train": ("tvqa_plus_train.json", "tvqa_plus_train_preprocessed.json"),
                    "val": ("tvqa_plus_val.json", "tvqa_plus_valid_preprocessed.json"),
                    "test_public": ("tvqa_plus_test_public.json", "tvqa_plus_test_preprocessed_no_anno.json")}


def open_split(root: str | Path, split: str, features: str | None = None, labelled: bool | None = None,
               bad_ts: str = "error") -> Split:
    """The questions of ``split`` under a dataset ``root`` (TVQA, TVQA+ or DramaQA layout, detected)."""
    root = Path(root)
    if not root.is_dir():
        raise CvsuiteError(f"dataset root not found: {root}")
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if features is not None and not Path(features).is_file():
        raise CvsuiteError(f"features file not found: {features}")
    kind = detect_dataset(root)
    if kind in ("tvqa", "tvqa_plus"):
        if kind == "tvqa":
            path = root / "tvqa_qa_release" / f"tvqa_{split}.jsonl"
            if not path.is_file():
                raise CvsuiteError(f"{path} not found (TVQA release layout: ROOT/tvqa_qa_release/tvqa_{split}.jsonl)")
            items = read_tvqa_jsonl(path, labelled, bad_ts)
        else:
            candidates = [root / name for name in _TVQA_PLUS_FILES[split]]
            path = next((p for p in candidates if p.is_file()), candidates[0])
            if not path.is_file():
                raise CvsuiteError(f"{path} not found (TVQA+ annotation file of split {split})")
            items = read_tvqa_plus(path, labelled, bad_ts)
        if (root / "tvqa_subtitles").is_dir():
            subtitles: Any = SrtFolder(root / "tvqa_subtitles")
        elif (root / "tvqa_preprocessed_subtitles.jsonl").is_file():
            subtitles = read_subtitle_jsonl(root / "tvqa_preprocessed_subtitles.jsonl")
        elif (root / "tvqa_plus_subtitles.json").is_file():
            subtitles = read_tvqa_plus_subtitles(root / "tvqa_plus_subtitles.json")
        else:
            raise CvsuiteError(f"{root} has no subtitles: expected tvqa_subtitles/<vid_name>.srt, "
                               "tvqa_preprocessed_subtitles.jsonl or tvqa_plus_subtitles.json")
        return Split(items, subtitles, tvqa_frames(root), features, kind)
    name = {"train": "train", "val": "val", "test_public": "test"}[split]
    path = root / f"AnotherMissOhQA_{name}_set.json"
    if not path.is_file():
        raise CvsuiteError(f"{path} not found (DramaQA split {name})")
    items = read_dramaqa(path, labelled)
    script = root / "AnotherMissOh_script.json"
    subtitles = read_dramaqa_script(script) if script.is_file() else {}
    images = root / "AnotherMissOh_images"

    def frames_of(vid: str) -> list[Path]:
        return [p for folder in dramaqa_frame_dirs(images, vid) for p in sorted(folder.glob("*.jpg"))]

    return Split(items, subtitles, frames_of, features, "dramaqa")


def window_subtitles(sentences: list[Sentence], ts: tuple[float, float] | None, max_subs: int) -> list[Sentence]:
    """Cues overlapping the ``ts`` window, plus the one before it (as the official TVQA preprocessing
    adds the sentence before the located ones); all cues without ``ts``. At most ``max_subs`` (centred)."""
    if ts is None:
        chosen = list(range(len(sentences)))
    else:
        chosen = [i for i, s in enumerate(sentences) if s.end > ts[0] and s.start < ts[1]]
        if not chosen and sentences:
            nearest = int(np.argmin([abs(s.start - ts[0]) for s in sentences]))
            chosen = [nearest]
        if chosen and chosen[0] > 0:
            chosen = [chosen[0] - 1] + chosen
    if len(chosen) > max_subs:
        offset = (len(chosen) - max_subs) // 2
        chosen = chosen[offset:offset + max_subs]
    return [sentences[i] for i in chosen]


def window_frames(n_frames: int, ts: tuple[float, float] | None, max_frames: int, fps: float = FPS,
                  margin: float = 1.0) -> np.ndarray:
    """Indices of the frames (frame k shown at k/fps s) inside ``ts`` widened by ``margin`` s on each side
    (the official TVQA ``interval2frame`` widens by one second); at most ``max_frames``, evenly spaced."""
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if ts is None:
        first, last = 0, n_frames - 1
    else:
        first = int(np.clip(np.floor((ts[0] - margin) * fps), 0, n_frames - 1))
        last = int(np.clip(np.ceil((ts[1] + margin) * fps), first, n_frames - 1))
    indices = np.arange(first, last + 1)
    if len(indices) > max_frames:
        indices = indices[np.round(np.linspace(0, len(indices) - 1, max_frames)).astype(np.int64)]
    return indices
