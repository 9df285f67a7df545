"""Readers on files written in the official TVQA / TVQA+ / DramaQA layouts, and their one-line errors."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from apps.videoqa.data import (open_split, parse_ts, question_type, read_dramaqa, read_dramaqa_script, read_srt,
                               read_subtitle_jsonl, read_tvqa_jsonl, read_tvqa_plus, show_folder, window_frames,
                               window_subtitles)
from apps.videoqa.synth import write_dataset
from shared.errors import CvsuiteError

# the sample record of the TVQA data README (jayleicn/TVQA data/README.md)
SAMPLE = {"a0": "A martini glass", "a1": "Nachos", "a2": "Her purse", "a3": "Marshall's book", "a4": "A beer bottle",
          "answer_idx": 4, "q": "What is Robin holding in her hand when she is talking to Ted about Zoey?",
          "qid": 7, "ts": "1.21-8.49", "vid_name": "met_s06e22_seg01_clip_02", "show_name": "How I Met You Mother"}

SRT = """1
00:00:00,862 --> 00:00:01,862
(Chase:)That's all this is?

2
00:00:02,100 --> 00:00:04,500
(House:)No. It's
also lupus.

3
00:01:02,000 --> 00:01:03,250
Nobody speaks here.
"""


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_tvqa_jsonl_fields(tmp_path: Path) -> None:
    test_record = {k: v for k, v in SAMPLE.items() if k != "answer_idx"} | {"qid": 8}
    items = read_tvqa_jsonl(_jsonl(tmp_path / "tvqa_val.jsonl", [SAMPLE, test_record]))
    assert [it.qid for it in items] == [7, 8]
    assert items[0].answers[4] == "A beer bottle" and items[0].answer_idx == 4
    assert items[1].answer_idx is None  # test_public has no answer_idx
    assert items[0].ts == (1.21, 8.49) and items[0].vid_name == "met_s06e22_seg01_clip_02"
    assert items[0].qtype == "what"
    assert show_folder("met_s06e22_seg01_clip_02") == "met_frames"
    assert show_folder("s03e21_seg02_clip_08") == "bbt_frames"  # The Big Bang Theory clips have no prefix


@pytest.mark.parametrize("change, message", [
    ({"a4": None}, "missing field 'a4'"),
    ({"a5": "extra"}, "exactly 5"),
    ({"answer_idx": 5}, "out of range"),
    ({"answer_idx": -1}, "out of range"),
    ({"ts": "NaN-12"}, "malformed"),
    ({"ts": "12.5-3.0"}, "malformed"),
    ({"qid": None}, "missing field 'qid'"),
])
def test_tvqa_jsonl_errors_name_file_and_line(tmp_path: Path, change: dict, message: str) -> None:
    bad = {k: v for k, v in (SAMPLE | change).items() if v is not None}
    path = _jsonl(tmp_path / "tvqa_train.jsonl", [SAMPLE, bad])
    with pytest.raises(CvsuiteError, match=message) as info:
        read_tvqa_jsonl(path)
    assert f"{path}:2" in str(info.value)


def test_bad_ts_can_fall_back_to_the_whole_clip(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "tvqa_train.jsonl", [SAMPLE | {"ts": "NaN-NaN"}])
    assert read_tvqa_jsonl(path, bad_ts="whole_clip")[0].ts is None
    assert parse_ts([3.0, 4.5], "x") == (3.0, 4.5)


def test_srt_reader(tmp_path: Path) -> None:
    path = tmp_path / "house_s01e01_seg01_clip_00.srt"
    path.write_bytes(SRT.encode("iso-8859-1"))
    cues = read_srt(path)
    assert [(c.start, c.end) for c in cues] == [(0.862, 1.862), (2.1, 4.5), (62.0, 63.25)]
    assert [c.speaker for c in cues] == ["Chase", "House", ""]
    assert cues[1].text == "No. It's also lupus."


@pytest.mark.parametrize("line", ["00:00:02,100 -> 00:00:04,500", "00:00:0x,100 --> 00:00:04,500",
                                  "00:00:05,000 --> 00:00:04,500", "00:00:75,000 --> 00:00:76,500"])
def test_srt_broken_timestamp_names_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "a.srt"
    path.write_text(SRT.replace("00:00:02,100 --> 00:00:04,500", line))
    with pytest.raises(CvsuiteError) as info:
        read_srt(path)
    assert f"{path}:6" in str(info.value)


def test_preprocessed_subtitles(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "tvqa_preprocessed_subtitles.jsonl", [
        {"vid_name": "house_s01e01_seg01_clip_00", "sub": [{"text": " Chase : That's all this is?", "start": 0.862, "end": 1.862}]}])
    cues = read_subtitle_jsonl(path)["house_s01e01_seg01_clip_00"]
    assert (cues[0].speaker, cues[0].text, cues[0].start) == ("Chase", "That's all this is?", 0.862)
    bad = _jsonl(tmp_path / "bad.jsonl", [{"vid_name": "x", "sub": [{"text": "a", "start": 2.0, "end": 1.0}]}])
    with pytest.raises(CvsuiteError, match=f"{bad}:1"):
        read_subtitle_jsonl(bad)


def test_tvqa_plus_reader(tmp_path: Path) -> None:
    # the layout of jayleicn/TVQAplus eval/data/tvqa_plus_val.json: a list, answer_idx as a string, ts as floats
    record = {k: v for k, v in SAMPLE.items() if k not in ("ts", "answer_idx")} | {
        "answer_idx": "3", "ts": [0.0, 5.4], "vid_name": "s01e02_seg02_clip_12",
        "bbox": {"1": [{"img_id": 1, "top": 14, "height": 346, "width": 256, "label": "Raj", "left": 136}], "19": []}}
    path = tmp_path / "tvqa_plus_val.json"
    path.write_text(json.dumps([record]))
    item = read_tvqa_plus(path)[0]
    assert item.answer_idx == 3 and item.ts == (0.0, 5.4)
    assert item.boxes[1][0]["label"] == "Raj" and item.boxes[19] == []
    path.write_text(json.dumps([record, record | {"answer_idx": "7"}]))
    with pytest.raises(CvsuiteError, match="item 1: answer_idx 7 is out of range"):
        read_tvqa_plus(path)


def test_tvqa_plus_subtitles(tmp_path: Path) -> None:
    from apps.videoqa.data import read_tvqa_plus_subtitles

    path = tmp_path / "tvqa_plus_subtitles.json"
    path.write_text(json.dumps({"s01e02_seg02_clip_12": {"sub_text": "( Raj : ) Turn your pelvis . <eos> Hi .",
                                                          "sub_time": [0.5, 3.25]}}))
    cues = read_tvqa_plus_subtitles(path)["s01e02_seg02_clip_12"]
    assert [(c.start, c.end, c.speaker) for c in cues] == [(0.5, 3.25, "Raj"), (3.25, 5.25, "")]
    path.write_text(json.dumps({"v": {"sub_text": "a <eos> b", "sub_time": [1.0]}}))
    with pytest.raises(CvsuiteError, match="2 sentences but 1 sub_time"):
        read_tvqa_plus_subtitles(path)


def test_dramaqa_reader(tmp_path: Path) -> None:
    # the example of the DramaQA dataset page (dramaqa.github.io, 4_dataset.md)
    record = {"correct_idx": 3, "answers": ["Dokyung texted the message to mom.", "to dad.", "to Haeyoung1.",
                                            "to sister.", "to brother."],
              "que": "What did Dokyung do in his home?", "shot_contained": [48, 115], "q_level_logic": 3,
              "vid": "AnotherMissOh16_002_0000", "q_level_mem": 3, "qid": 3707, "videoType": "scene"}
    qa = tmp_path / "AnotherMissOhQA_val_set.json"
    qa.write_text(json.dumps([record]))
    script = tmp_path / "AnotherMissOh_script.json"
    script.write_text(json.dumps({"AnotherMissOh16_002_0000": {"contained_subs": [
        {"et": "295.595", "speaker": "Haeyoung1", "st": "293.685", "utter": "I said I'm not going to get married."},
        {"et": "292.426", "speaker": "Deogi", "st": "290.376", "utter": "Just what are you trying to say now?"}],
        "et": "294.6", "st": "291.56"}}))
    item = read_dramaqa(qa)[0]
    assert item.answer_idx == 3 and item.levels == {"q_level_mem": 3, "q_level_logic": 3}
    cues = read_dramaqa_script(script)["AnotherMissOh16_002_0000"]
    assert [c.speaker for c in cues] == ["Deogi", "Haeyoung1"]  # ordered by start time
    frames = tmp_path / "AnotherMissOh_images" / "AnotherMissOh16" / "002" / "0048"
    frames.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (16, 12)).save(frames / "AnotherMissOh16_002_0048_IMAGE_0000000001.jpg")
    split = open_split(tmp_path, "val")
    assert split.dataset == "dramaqa" and len(split.frames_of("AnotherMissOh16_002_0000")) == 1
    qa.write_text(json.dumps([record | {"answers": record["answers"][:4]}]))
    with pytest.raises(CvsuiteError, match="item 0: 'answers' must be a list of 5"):
        read_dramaqa(qa)


def test_windows_follow_ts() -> None:
    from apps.videoqa.data import Sentence

    cues = [Sentence(i * 2.0, i * 2.0 + 1.5, f"line {i}") for i in range(6)]
    chosen = window_subtitles(cues, (4.2, 8.0), 12)
    assert [c.text for c in chosen] == ["line 1", "line 2", "line 3"]  # overlapping cues + the one before
    idx = window_frames(36, (4.0, 8.0), 100)
    assert idx[0] == 9 and idx[-1] == 27  # widened by 1 s on both sides at 3 fps
    assert len(window_frames(36, None, 12)) == 12


def test_synth_round_trip_and_determinism(tmp_path: Path) -> None:
    counts = write_dataset(tmp_path / "a", 4, seed=3)
    write_dataset(tmp_path / "b", 4, seed=3)

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".cvsuite")}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    root = tmp_path / "a"
    assert (root / "tvqa_qa_release" / "tvqa_train.jsonl").is_file()
    train = open_split(root, "train", labelled=True)
    test = open_split(root, "test_public")
    assert len(train.items) == counts["train"] and all(it.answer_idx is None for it in test.items)
    item = train.items[0]
    cues = train.subtitles.get(item.vid_name)
    frames = train.frames_of(item.vid_name)
    assert len(cues) == 6 and all(c.speaker for c in cues) and len(frames) == 36
    assert frames[0].name == "00001.jpg" and frames[0].parent.parent.name == "synth_frames"
    # the question names a speaker / an object; candidates are five distinct answers, one correct
    assert question_type(item.question) in ("what", "who") and len(set(item.answers)) == 5


def test_features_reader(tmp_path: Path) -> None:
    from apps.videoqa.dataset import InputSizes, VideoQADataset
    from apps.videoqa.text import Vocab

    root = tmp_path / "d"
    write_dataset(root, 3, seed=0)
    split = open_split(root, "train", labelled=True)
    path = tmp_path / "feat.h5"
    with h5py.File(path, "w") as h5:
        for vid in {it.vid_name for it in split.items}:
            h5.create_dataset(vid, data=np.arange(36 * 5, dtype=np.float32).reshape(36, 5))
    split = open_split(root, "train", str(path), labelled=True)
    ds = VideoQADataset(split, Vocab.build(["x"]), InputSizes(max_frames=100), visual="features")
    sample = ds[0]
    ts = split.items[0].ts
    first = int(np.floor((ts[0] - 1) * 3)) if ts[0] >= 1 else 0
    assert sample["visual"].shape[1] == 5 and sample["visual"][0, 0] == first * 5
    np.testing.assert_allclose(sample["frame_times"][0], first / 3)
