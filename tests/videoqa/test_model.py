"""Local-attention mask against an explicit loop, the masked-answer contrast against its formula,
stage-1 question sampling, and the model's streams."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from apps.videoqa.data import QAItem
from apps.videoqa.dataset import question_negatives
from apps.videoqa.losses import mask_inputs, masked_answer_contrast
from apps.videoqa.model import ModelConfig, VideoQAModel, global_mask, local_alignment_mask, masked_softmax
from apps.videoqa.text import CLS, MASK, PAD, SEP
from shared.losses import InfoNCE


def _loop_mask(sub_times, frame_times, sub_valid, frame_valid) -> np.ndarray:
    """Explicit reference: frame t inside [start_j, end_j]; an empty span gets the frame nearest its midpoint."""
    b, s, _ = sub_times.shape
    t = frame_times.shape[1]
    out = np.zeros((b, s, t), dtype=bool)
    for i in range(b):
        for j in range(s):
            if not sub_valid[i, j]:
                continue
            start, end = float(sub_times[i, j, 0]), float(sub_times[i, j, 1])
            for k in range(t):
                if frame_valid[i, k] and start <= float(frame_times[i, k]) <= end:
                    out[i, j, k] = True
            if not out[i, j].any() and frame_valid[i].any():
                middle = (start + end) / 2
                best, best_d = None, math.inf
                for k in range(t):
                    d = abs(float(frame_times[i, k]) - middle)
                    if frame_valid[i, k] and d < best_d:
                        best, best_d = k, d
                out[i, j, best] = True
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_local_mask_matches_explicit_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    b, s, t = 4, 7, 15
    start = torch.rand(b, s, generator=g) * 10
    length = torch.rand(b, s, generator=g) * 2.5
    length[:, 0] = 0.05  # spans shorter than the frame spacing exercise the nearest-frame rule
    sub_times = torch.stack([start, start + length], dim=-1)
    frame_times = torch.sort(torch.rand(b, t, generator=g) * 12, dim=1).values
    sub_valid = torch.rand(b, s, generator=g) > 0.2
    frame_valid = torch.rand(b, t, generator=g) > 0.2
    frame_valid[3] = False  # a clip without frames
    got = local_alignment_mask(sub_times, frame_times, sub_valid, frame_valid)
    want = _loop_mask(sub_times.numpy(), frame_times.numpy(), sub_valid.numpy(), frame_valid.numpy())
    assert np.array_equal(got.numpy(), want)
    assert not got[3].any()
    assert torch.equal(global_mask(sub_valid, frame_valid), sub_valid[:, :, None] & frame_valid[:, None, :])


def test_masked_softmax_rows_without_entries_are_zero() -> None:
    logits = torch.randn(2, 3, 4)
    mask = torch.rand(2, 3, 4) > 0.5
    mask[0, 0] = False
    w = masked_softmax(logits, mask)
    assert torch.all(w[0, 0] == 0) and torch.all(w[~mask] == 0)
    rows = mask.any(-1)
    torch.testing.assert_close(w.sum(-1)[rows], torch.ones(int(rows.sum())))


@pytest.mark.parametrize("seed", [0, 1])
def test_masked_answer_contrast_matches_formula(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    b, d, t = 6, 8, 0.1
    joint = torch.randn(b, 6, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 5, (b,), generator=g)
    got = masked_answer_contrast(joint, labels, InfoNCE(temperature=t))
    total = 0.0
    for i in range(b):
        def cos(u, v):
            return float(u @ v / (u.norm() * v.norm()))

        anchor = joint[i, 5]
        pos = math.exp(cos(anchor, joint[i, labels[i]]) / t)
        neg = sum(math.exp(cos(anchor, joint[i, k]) / t) for k in range(5) if k != labels[i])
        total += -math.log(pos / (pos + neg))
    assert got.item() == pytest.approx(total / b, rel=1e-9)


def test_contrast_on_model_outputs_pulls_masked_to_ground_truth() -> None:
    """On real model representations: the loss is the formula, and it is low when the anchor equals the positive."""
    cfg = ModelConfig(dim=16, layers=1, heads=2, ff=32, visual="features", feature_dim=4)
    model = VideoQAModel(cfg, 20).eval()
    qa = torch.randint(5, 20, (3, 6, 10))
    labels = torch.tensor([0, 2, 4])
    qa[torch.arange(3), 5] = qa[torch.arange(3), labels]  # "masked" input identical to the ground truth
    out = model({"qa": qa, "label": labels})
    loss = masked_answer_contrast(out["joint"], labels, InfoNCE(temperature=0.1))
    anchor = torch.nn.functional.normalize(out["joint"][:, 5], dim=-1)
    cands = torch.nn.functional.normalize(out["joint"][:, :5], dim=-1)
    logits = torch.einsum("bd,bkd->bk", anchor, cands) / 0.1
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)


def test_mask_inputs_only_touches_real_tokens() -> None:
    ids = torch.tensor([[CLS, 7, 8, SEP, 9, 10, SEP, PAD, PAD], [CLS, 5, SEP, 6, SEP, PAD, PAD, PAD, PAD]])
    seg = torch.tensor([[0, 0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    for scope in ("input", "answer"):
        for prob in (0.01, 0.5, 1.0):
            out = mask_inputs(ids, seg, prob, scope, generator=g)
            changed = out != ids
            assert changed.any(dim=1).all()  # at least one token per row
            assert torch.all(out[changed] == MASK)
            assert not changed[(ids == PAD) | (ids == CLS) | (ids == SEP)].any()
            if scope == "answer":
                assert not changed[~seg].any()
    assert torch.equal(mask_inputs(ids, seg, 1.0, "answer") == MASK, seg)


def _items(questions: list[tuple[str, str, str]]) -> list[QAItem]:
    return [QAItem(qid=i, question=q, answers=["a"] * 5, answer_idx=0, ts=None, vid_name=v, show_name=s)
            for i, (q, v, s) in enumerate(questions)]


def test_stage1_negatives_never_the_true_question() -> None:
    # item 0's question text also occurs in items 3 and 6 (TVQA repeats questions): never a negative
    rows = [("Who is at the door?", "c1", "A"), ("What is Ann holding?", "c1", "A"), ("Why did Ben leave?", "c1", "A"),
            ("who is at the door ?", "c2", "A"), ("Where is Cora?", "c2", "A"), ("How old is Dev?", "c3", "B"),
            ("Who is at the door?", "c3", "B"), ("When does it rain?", "c4", "B"), ("Which car?", "c4", "B")]
    rows[3] = ("who is  at the door?", "c2", "A")
    items = _items(rows)
    rng = np.random.default_rng(0)
    for _ in range(200):
        chosen = question_negatives(items, 0, rng, 4)
        texts = [" ".join(items[j].question.lower().split()) for j in chosen]
        assert 0 not in chosen and 6 not in chosen and 3 not in chosen
        assert "who is at the door?" not in texts and len(set(texts)) == 4
        assert {1, 2} <= set(chosen)  # same clip first
        assert set(chosen) - {1, 2} <= {4}  | {5, 7, 8}
        assert 4 in chosen  # then same show


def test_stage1_dataset_label_points_at_true_question(tmp_path) -> None:
    from apps.videoqa.data import open_split
    from apps.videoqa.dataset import InputSizes, VideoQADataset
    from apps.videoqa.synth import write_dataset
    from apps.videoqa.text import Vocab, pair

    write_dataset(tmp_path, 6, seed=1)
    split = open_split(tmp_path, "train", labelled=True)
    vocab = Vocab.build([t for it in split.items for t in [it.question, *it.answers]])
    ds = VideoQADataset(split, vocab, InputSizes(), mode="question", load_visual=False)
    for index in range(len(ds)):
        sample = ds[index]
        item = split.items[index]
        true_ids, _ = pair(vocab.encode(item.question), vocab.encode(item.answers[item.answer_idx]), 24)
        rows = [list(r[: len(true_ids)]) for r in sample["qa"]]
        assert rows[sample["label"]] == true_ids
        assert sum(r == true_ids for r in rows) == 1


@pytest.mark.parametrize("streams, attention", [("both", "local"), ("both", "global"), ("text", "local"),
                                                ("video", "local")])
def test_model_streams(streams: str, attention: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(dim=16, layers=1, heads=2, ff=32, streams=streams, attention=attention, cnn_width=4)
    model = VideoQAModel(cfg, 30).eval()
    b = 2
    batch = {"qa": torch.randint(5, 30, (b, 5, 12)), "subs": torch.randint(5, 30, (b, 3, 8)),
             "sub_times": torch.tensor([[[0, 1.0], [1, 2], [2, 3]]] * b), "sub_valid": torch.ones(b, 3, dtype=torch.bool),
             "visual": torch.randint(0, 255, (b, 6, 16, 24, 3), dtype=torch.uint8),
             "frame_times": torch.arange(6.0).repeat(b, 1) / 2, "frame_valid": torch.ones(b, 6, dtype=torch.bool)}
    batch["sub_valid"][1, 2] = False
    with torch.no_grad():
        out = model(batch)
    assert out["scores"].shape == (b, 5) and torch.isfinite(out["scores"]).all()
    assert ("frame_attention" in out) == (streams != "text")
    assert ("sub_attention" in out) == (streams != "video")
    if streams == "both":
        align = out["align"]
        if attention == "local":  # sentence 0 spans [0, 1] s: frames at 0, 0.5, 1.0 only
            assert torch.all(align[0, 0, 3:] == 0) and align[0, 0, :3].sum() == pytest.approx(1.0, abs=1e-5)
        else:
            assert torch.all(align[0, 0] > 0)
        assert torch.all(align[1, 2] == 0)  # padded sentence attends nothing
    # the output does not depend on the stream the model ignores
    changed = dict(batch)
    if streams == "text":
        changed["visual"] = torch.zeros_like(batch["visual"])
    elif streams == "video":
        changed["subs"] = torch.randint(5, 30, (b, 3, 8))
    else:
        return
    with torch.no_grad():
        torch.testing.assert_close(model(changed)["scores"], out["scores"])


def test_model_init_depends_only_on_seed() -> None:
    cfg = ModelConfig(dim=16, layers=1, heads=2, ff=32)
    torch.manual_seed(3)
    a = VideoQAModel(cfg, 30).state_dict()
    torch.manual_seed(3)
    b = VideoQAModel(cfg, 30).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_colour_blob_statistics_sees_colour_position_and_size() -> None:
    """The fixed frame descriptor: grey counts for nothing; a red square lands in hue bin 0 with its
    centroid and size; a green one lands in another bin; a bigger square has more mass."""
    from apps.videoqa.model import BLOB_STATS, HUE_BINS, colour_blob_statistics

    frames = torch.full((3, 32, 48, 3), 110, dtype=torch.uint8)
    frames[0, 4:12, 30:38] = torch.tensor([220, 40, 40], dtype=torch.uint8)     # small red square, top right
    frames[1, 4:12, 30:38] = torch.tensor([40, 170, 60], dtype=torch.uint8)     # same place, green
    frames[2, 10:26, 4:20] = torch.tensor([220, 40, 40], dtype=torch.uint8)     # big red square, left
    stats = colour_blob_statistics(frames).reshape(3, HUE_BINS, BLOB_STATS)
    mass = stats[..., 0]
    assert mass[0, 0] > 0 and torch.all(mass[0, 1:] == 0)
    green_bin = int(mass[1].argmax())
    assert green_bin not in (0, HUE_BINS - 1) and torch.count_nonzero(mass[1]) == 1
    assert mass[2, 0] == pytest.approx(4 * mass[0, 0].item(), rel=1e-4)
    cx, cy = stats[0, 0, 1].item(), stats[0, 0, 2].item()
    assert cx == pytest.approx(33.5 / 47, abs=1e-4) and cy == pytest.approx(7.5 / 31, abs=1e-4)
    assert stats[2, 0, 1] < 0.5 < stats[0, 0, 1]
    assert torch.all(colour_blob_statistics(torch.full((1, 8, 8, 3), 110, dtype=torch.uint8)) == 0)


def test_contrast_weight_schedule() -> None:
    from apps.videoqa.train import contrast_weight_at

    assert [contrast_weight_at(s, 0.5, 0, 0) for s in (0, 7)] == [0.5, 0.5]
    assert contrast_weight_at(3, 0.0, 0, 0) == 0.0
    # off before the start step, then a linear ramp that reaches the full weight after `ramp` steps
    assert [contrast_weight_at(s, 0.4, 5, 4) for s in (0, 4, 5, 6, 8, 50)] == pytest.approx([0, 0, 0.1, 0.2, 0.4, 0.4])


def test_task_switches_the_contrast_on_at_its_start_step_and_keeps_it_in_the_checkpoint() -> None:
    from apps.videoqa.train import VideoQAConfig, VideoQATask

    cfg = ModelConfig(dim=16, layers=1, heads=2, ff=32, visual="features", feature_dim=4, streams="text")
    batch = {"qa": torch.randint(5, 20, (4, 5, 10)), "seg": torch.zeros(4, 5, 10, dtype=torch.bool),
             "label": torch.tensor([0, 1, 2, 4])}
    batch["seg"][..., 5:] = True
    task = VideoQATask(VideoQAModel(cfg, 20), VideoQAConfig(model=cfg, contrast_weight=0.3, contrast_start=2,
                                                             contrast_ramp=0))
    seen = []
    for step in range(4):
        out = task(batch)
        seen.append(("contrast" in out, round(float(out["lambda"]), 6)))
        assert -1.0 - 1e-6 <= float(out["cand_cos"]) <= 1.0 + 1e-6
        task.on_step_end(step, out)
    assert seen == [(False, 0.0), (False, 0.0), (True, 0.3), (True, 0.3)]
    assert int(task.state_dict()["steps_done"]) == 4
    assert "steps_done" not in task.export_state_dict()
    resumed = VideoQATask(VideoQAModel(cfg, 20), VideoQAConfig(model=cfg, contrast_weight=0.3, contrast_start=2))
    resumed.load_state_dict(task.state_dict())
    assert "contrast" in resumed(batch)
