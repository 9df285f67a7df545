"""The shared output guard: inputs are never written, foreign files need --force, own outputs may be redone."""
from __future__ import annotations

import json
import os

import pytest

from shared.errors import UsageError
from shared.guard import LEDGER_NAME, OutputGuard, is_own_output


def test_refuses_input_file_and_symlink_to_it(tmp_path):
    data = tmp_path / "w.safetensors"
    data.write_bytes(b"weights")
    link = tmp_path / "link.safetensors"
    os.symlink(data, link)
    guard = OutputGuard(inputs=[data], force=True)  # --force never allows writing over an input
    for target in (data, link):
        with pytest.raises(UsageError, match="is the input"):
            guard.file(target)
    assert data.read_bytes() == b"weights"


def test_refuses_outputs_inside_input_folder(tmp_path):
    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    guard = OutputGuard(inputs=[seq])
    with pytest.raises(UsageError, match="inside the input folder"):
        guard.directory(seq / "img1")
    with pytest.raises(UsageError, match="inside the input folder"):
        guard.file(seq / "gt" / "gt.txt")


def test_foreign_file_needs_force_own_output_does_not(tmp_path):
    out = tmp_path / "scores.json"
    out.write_text("user's notes")
    with pytest.raises(UsageError, match="--force"):
        OutputGuard().file(out)
    guard = OutputGuard(force=True)
    guard.file(out)
    out.write_text("{}")
    guard.record()
    assert is_own_output(out) and (tmp_path / LEDGER_NAME).is_file()
    OutputGuard().file(out)  # a re-run may overwrite its own unchanged output
    out.write_text("edited by the user")
    with pytest.raises(UsageError, match="--force"):
        OutputGuard().file(out)


def test_directory_is_created_and_may_hold_inputs(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    guard = OutputGuard(inputs=[photo])
    guard.directory(tmp_path)  # --out . next to the input is fine ...
    with pytest.raises(UsageError, match="is the input"):
        guard.file(tmp_path / "photo.jpg")  # ... but writing over the input is not
    assert guard.directory(tmp_path / "new" / "dir").is_dir()


# ---- file identity, atomic writes, planted temp files, concurrent ledger writers (issue 25) -------

from shared.errors import CvsuiteError  # noqa: E402
from shared.guard import LOCK_NAME, atomic_output, open_atomic, orphaned_temp_files, unshare_file, write_atomic  # noqa: E402


def test_hard_link_to_input_file_is_refused_even_with_force(tmp_path):
    mine = tmp_path / "my.json"
    mine.write_text("user data")
    link = tmp_path / "res" / "pred.json"
    link.parent.mkdir()
    os.link(mine, link)
    with pytest.raises(UsageError, match="same file as the input"):
        OutputGuard(inputs=[mine], force=True).file(link)
    assert mine.read_text() == "user data"


def test_hard_link_to_file_inside_input_folder_is_refused(tmp_path):
    data = tmp_path / "D" / "images"
    data.mkdir(parents=True)
    (data / "000001.png").write_bytes(b"png")
    out = tmp_path / "out.json"
    os.link(data / "000001.png", out)
    with pytest.raises(UsageError, match="000001.png"):
        OutputGuard(inputs=[tmp_path / "D"], force=True).file(out)


def test_own_output_hard_linked_to_a_later_input_is_refused(tmp_path):
    """The issue's case: pred.json is ours in the ledger, the user links it as my.json and evaluates it."""
    pred = tmp_path / "res" / "pred.json"
    guard = OutputGuard()
    guard.write(pred, "[1, 2]")
    guard.record()
    mine = tmp_path / "my.json"
    os.link(pred, mine)
    with pytest.raises(UsageError, match="same file as the input"):
        OutputGuard(inputs=[mine]).file(pred)


def test_write_replaces_a_link_never_writes_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    hard, soft = tmp_path / "hard.txt", tmp_path / "soft.txt"
    os.link(victim, hard)
    os.symlink(victim, soft)
    write_atomic(hard, "new")
    write_atomic(soft, b"new")
    assert victim.read_text() == "keep me"
    assert hard.read_text() == "new" and soft.read_text() == "new" and not soft.is_symlink()
    with atomic_output(tmp_path / "lib.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.exists()
        tmp.write_bytes(b"png")
    assert (tmp_path / "lib.png").read_bytes() == b"png"
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    out = tmp_path / "a.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with open_atomic(out, "w") as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_new_output_has_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    write_atomic(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_planted_ledger_temp_links_are_never_followed(tmp_path):
    victim = tmp_path / "input.txt"
    victim.write_text("input")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    os.symlink(victim, out_dir / (LEDGER_NAME + ".tmp"))
    os.link(victim, out_dir / ".x.json.tmp")
    guard = OutputGuard(inputs=[victim])
    guard.write(out_dir / "x.json", "{}")
    guard.record()
    assert victim.read_text() == "input" and is_own_output(out_dir / "x.json")


def test_planted_weights_temp_link_receives_nothing(tmp_path):
    import torch

    from shared.weights import save_safetensors

    victim = tmp_path / "input.bin"
    victim.write_bytes(b"input")
    os.symlink(victim, tmp_path / ".model.safetensors.tmp")
    save_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    assert victim.read_bytes() == b"input"


def test_linked_ledger_is_not_trusted(tmp_path):
    """A ledger with a second hard link (or a symlink) could be a user's file: it vouches for nothing."""
    out = tmp_path / "out.json"
    guard = OutputGuard()
    guard.write(out, "{}")
    guard.record()
    assert is_own_output(out)
    os.link(tmp_path / LEDGER_NAME, tmp_path / "copy.json")
    assert not is_own_output(out)


def test_orphaned_temp_files_skip_links(tmp_path):
    victim = tmp_path / "input.txt"
    victim.write_text("input")
    (tmp_path / ".last.pt.abc.tmp").write_bytes(b"partial")
    os.symlink(victim, tmp_path / ".last.pt.def.tmp")
    os.link(victim, tmp_path / ".last.pt.ghi.tmp")
    assert [p.name for p in orphaned_temp_files(tmp_path / "last.pt")] == [".last.pt.abc.tmp"]


def test_unshare_file_breaks_a_hard_link_before_appends(tmp_path):
    victim = tmp_path / "victim.csv"
    victim.write_text("a\n")
    log = tmp_path / "metrics.csv"
    os.link(victim, log)
    unshare_file(log)
    with log.open("a") as handle:
        handle.write("b\n")
    assert victim.read_text() == "a\n" and log.read_text() == "a\nb\n"


def test_symlinked_lock_file_is_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("v")
    os.symlink(victim, tmp_path / LOCK_NAME)
    guard = OutputGuard()
    guard.write(tmp_path / "a.json", "{}")
    with pytest.raises(CvsuiteError, match="symbolic link"):
        guard.record()
    assert victim.read_text() == "v"


def _record_many(folder: str, worker: int, count: int) -> None:
    from shared.guard import OutputGuard as Guard

    for k in range(count):
        guard = Guard(force=True)
        guard.write(os.path.join(folder, f"w{worker}_{k}.json"), f"{worker} {k}")
        guard.record()


def test_concurrent_writers_lose_no_ledger_entry(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_record_many, args=(str(tmp_path), w, 15)) for w in range(6)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
        assert proc.exitcode == 0
    ledger = json.loads((tmp_path / LEDGER_NAME).read_text())
    assert len(ledger) == 6 * 15
    assert all(is_own_output(tmp_path / f"w{w}_{k}.json") for w in range(6) for k in range(15))
