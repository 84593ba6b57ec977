"""Versioned outputs: run folders, atomic `latest`, pruning and the inter-process lock."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from forked import CTX, run_together

from synthpipe.flows.outputs import (
    OutputBusyError,
    latest_run,
    list_runs,
    new_run,
    output_lock,
    promote,
    prune,
    versioned_run,
)
from synthpipe.generators.errors import ConfigError, SynthpipeError


def _complete_run(root: Path, marker: str) -> Path:
    run = new_run(root)
    (run / "data.txt").write_text(marker)
    return run


def test_new_runs_are_unique_and_sorted_by_start(tmp_path):
    runs = [new_run(tmp_path) for _ in range(5)]
    assert len(set(runs)) == 5 and all(r.parent == tmp_path / "runs" and r.is_dir() for r in runs)
    assert list_runs(tmp_path) == runs
    assert runs[0].name[:8].isdigit() and "T" in runs[0].name and runs[0].name[-7] == "-"


def test_promote_moves_latest_and_keeps_it_relative(tmp_path):
    assert latest_run(tmp_path) is None
    first, second = _complete_run(tmp_path, "1"), _complete_run(tmp_path, "2")
    link = promote(tmp_path, first)
    assert link == tmp_path / "latest" and os.readlink(link) == os.path.join("runs", first.name)
    assert (link / "data.txt").read_text() == "1"
    promote(tmp_path, second)
    assert latest_run(tmp_path) == second.resolve() and (link / "data.txt").read_text() == "2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".latest")]  # no temp links left
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    os.rename(tmp_path, moved)  # a relative link survives moving the whole root
    assert (moved / "latest" / "data.txt").read_text() == "2"


def test_promote_refuses_foreign_directories(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(SynthpipeError, match="not a run under"):
        promote(tmp_path, other)
    (tmp_path / "latest").mkdir()
    with pytest.raises(SynthpipeError, match="is not a symlink"):
        promote(tmp_path, _complete_run(tmp_path, "x"))


def _watch_latest(root: str, ready, stop, counts) -> None:
    """Follow `latest` as fast as possible; count reads that find no complete run."""
    bad = reads = 0
    while not stop.is_set():
        try:
            text = Path(root, "latest", "data.txt").read_text()
            bad += text not in {"a", "b"}
        except OSError:
            bad += 1
        reads += 1
        if reads == 100:
            ready.set()
    counts.put((reads, bad))


def test_promote_is_atomic_for_concurrent_readers(tmp_path):
    a, b = _complete_run(tmp_path, "a"), _complete_run(tmp_path, "b")
    promote(tmp_path, a)
    ready, stop, counts = CTX.Event(), CTX.Event(), CTX.Queue()
    reader = CTX.Process(target=_watch_latest, args=(str(tmp_path), ready, stop, counts))
    reader.start()
    try:
        assert ready.wait(30)  # the reader is running before the swaps start
        for i in range(600):
            promote(tmp_path, b if i % 2 == 0 else a)
    finally:
        stop.set()
        reads, bad = counts.get(timeout=30)
        reader.join(timeout=30)
    # A remove-then-create swap fails this within a few hundred swaps (checked by hand).
    assert reads > 100 and bad == 0


def test_prune_keeps_newest_and_latest(tmp_path):
    runs = [_complete_run(tmp_path, str(i)) for i in range(6)]
    promote(tmp_path, runs[1])  # an old run is the current one (e.g. later runs failed)
    removed = prune(tmp_path, keep=2)
    assert sorted(removed) == [runs[0], runs[2], runs[3]]
    assert list_runs(tmp_path) == [runs[1], runs[4], runs[5]]
    assert (tmp_path / "latest" / "data.txt").read_text() == "1"
    assert prune(tmp_path, keep=2) == []
    assert not list((tmp_path / "runs").glob(".trash-*"))
    with pytest.raises(ConfigError, match="keep_runs must be >= 1"):
        prune(tmp_path, keep=0)


def test_failed_run_leaves_latest_on_last_good_run(tmp_path):
    with versioned_run(tmp_path, keep=5) as good:
        (good / "data.txt").write_text("good")
    with pytest.raises(RuntimeError, match="boom"):
        with versioned_run(tmp_path, keep=5) as bad:
            (bad / "data.txt").write_text("partial")
            raise RuntimeError("boom")
    assert latest_run(tmp_path) == good.resolve()
    assert (tmp_path / "latest" / "data.txt").read_text() == "good"
    assert (bad / "FAILED").read_text() == "RuntimeError: boom\n"
    with versioned_run(tmp_path, keep=1) as newer:
        (newer / "data.txt").write_text("newer")
    assert list_runs(tmp_path) == [newer] and latest_run(tmp_path) == newer.resolve()


def _locked_writer(root: str, name: str, log: str) -> None:
    """Write start/end lines to a shared log while holding the output lock."""
    with output_lock(root, timeout_s=60, poll_s=0.01):
        for step in ("start", "end"):
            with open(log, "a") as fh:
                fh.write(f"{name} {step}\n")
            time.sleep(0.2)


def test_two_processes_serialise_on_the_lock(tmp_path):
    log = tmp_path / "log.txt"
    writers = [(str(tmp_path), n, str(log)) for n in ("p1", "p2", "p3")]
    assert run_together(_locked_writer, writers, timeout_s=60) == [0, 0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 6
    for i in range(0, 6, 2):  # every start is followed by the same process's end: no interleaving
        name, step = lines[i].split()
        assert step == "start" and lines[i + 1] == f"{name} end"
    assert sorted(line.split()[0] for line in lines[::2]) == ["p1", "p2", "p3"]


def _hold_lock(root: str, held, release) -> None:
    with output_lock(root):
        held.set()
        release.wait(60)


def _start_holder(root: Path):
    """A child process holding `root`'s output lock until the returned event is set (or it is killed)."""
    held, release = CTX.Event(), CTX.Event()
    holder = CTX.Process(target=_hold_lock, args=(str(root), held, release))
    holder.start()
    if not held.wait(30):
        holder.kill()
        holder.join(timeout=30)
        pytest.fail("the child did not take the lock within 30 s")
    return holder, release


def test_lock_timeout_names_the_holder(tmp_path):
    holder, release = _start_holder(tmp_path)
    try:
        with pytest.raises(OutputBusyError, match=rf"in use by another synthpipe run \(pid {holder.pid}\)"):
            with output_lock(tmp_path, timeout_s=0.3, poll_s=0.05):
                pass
    finally:
        release.set()
        holder.join(timeout=30)
    with output_lock(tmp_path, timeout_s=5) as path:  # released by the holder's exit
        assert path == tmp_path / ".lock"


def test_lock_is_released_when_the_holder_dies(tmp_path):
    holder, _ = _start_holder(tmp_path)
    holder.kill()
    holder.join(timeout=30)
    with output_lock(tmp_path, timeout_s=5):
        assert (tmp_path / ".lock").exists()
