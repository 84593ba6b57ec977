"""Writing that is all or nothing: staging directories swapped into place, inter-process
locks, and versioned run folders with an atomically moved `latest`.

Why together: each is one half of the same promise, that a failed or killed run leaves no partial
output and the last good output intact. `atomic_directory` stages a directory next to its final
place and swaps it in whole. For versioned outputs, under an output root `DIR`:

    DIR/.lock                 held (flock) by the run writing into DIR; concurrent runs wait or fail
    DIR/runs/<run-id>/        one folder per run; run-id = UTC time (sortable) + a short random suffix
    DIR/runs/<run-id>/FAILED  written when that run failed (its error message)
    DIR/runs/<run-id>/.running  while that run is in progress; a dead run's is turned into FAILED
    DIR/latest -> runs/<id>   a relative symlink to the last *successful* run

Readers (a training job, a dashboard) follow `DIR/latest` and must never see a half-written run
or a missing link. A new link is made under a temporary name and renamed over `latest` with
`os.replace`, which POSIX makes atomic, so at every instant `latest` names a complete run. A failed
run is never promoted, so `latest` stays on the last good one. The lock (fcntl.flock, released by
the kernel if the holder dies) keeps two runs from interleaving their promote/prune steps.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob as globlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from synthpipe.generators.errors import ConfigError, SynthpipeError


def now() -> str:
    """The current UTC time as provenance and sidecars record it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling of `final`; on success it replaces `final` whole.

    On any exception (KeyboardInterrupt included) the temporary directory is removed and an
    existing `final` is left exactly as it was. The swap exchanges the two directories in one
    atomic rename (Linux RENAME_EXCHANGE), so at no moment is `final` missing or half-written,
    even under SIGKILL. The staging directory is flocked while in use; one whose holder died
    (SIGKILL, power cut) is removed by the next call, so no manual clean-up is ever needed.
    """
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"output path {final} exists and is not a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    _recover_stale_siblings(final)
    temporary, held = _fresh_sibling(final, "tmp")
    try:
        yield temporary
        _swap_into_place(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        os.close(held)


def _fresh_sibling(final: Path, tag: str) -> tuple[Path, int]:
    """Create `.{name}.{tag}-<random>` next to `final` (mkdir, not mkdtemp: normal permissions)
    and hold an flock on it (the kernel drops it when this process dies, however it dies)."""
    import fcntl

    while True:
        candidate = final.parent / f".{final.name}.{tag}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        fd = os.open(candidate, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a concurrent recovery may have taken it between mkdir and flock: draw again
            if os.stat(candidate).st_ino == os.fstat(fd).st_ino:
                return candidate, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _recover_stale_siblings(final: Path) -> None:
    """Remove staging directories of dead runs; put back an output a dead swap left aside."""
    import fcntl

    for stale in final.parent.glob(f".{globlib.escape(final.name)}.tmp-*"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its writer is alive
        except OSError:
            os.close(fd)
            continue
        shutil.rmtree(stale, ignore_errors=True)
        os.close(fd)
    for backup in sorted(final.parent.glob(f".{globlib.escape(final.name)}.old-*")):  # the two-rename fallback
        if not final.exists() and not final.is_symlink():
            os.rename(backup, final)
        elif backup.is_symlink():
            backup.unlink()
        else:
            shutil.rmtree(backup, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_into_place(temporary: Path, final: Path) -> None:
    from synthpipe.flows.stages import reached

    reached("swap")
    if not final.exists():
        os.replace(temporary, final)
        return
    if not final.is_dir():
        raise ConfigError(f"output path {final} exists and is not a directory")
    if not final.is_symlink() and _exchange(temporary, final):
        shutil.rmtree(temporary, ignore_errors=True)  # now the previous output
        return
    backup = final.parent / f".{final.name}.old-{secrets.token_hex(4)}"
    os.rename(final, backup)
    try:
        os.rename(temporary, final)
    except BaseException:
        os.rename(backup, final)  # put the previous output back before reporting the failure
        raise
    if backup.is_symlink():  # `final` was a link to a directory: drop the link, not its target
        backup.unlink()
    else:
        shutil.rmtree(backup, ignore_errors=True)



# ---- versioned runs and locks ----------------------------------------------------------------

RUNS = "runs"
LATEST = "latest"
LOCK = ".lock"
FAILED = "FAILED"
RUNNING = ".running"  # inside a run folder while its run is in progress


class OutputBusyError(SynthpipeError):
    """Another run holds the output directory's lock for longer than we were willing to wait."""

    exit_code = 1


def new_run_id(now: datetime | None = None) -> str:
    """`20250101T020000.123456Z-3f9a1c`: sorts by start time; the suffix keeps ids unique."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(3)}"


def new_run(out_root: str | os.PathLike) -> Path:
    """Create and return a fresh, empty `out_root/runs/<run-id>/`."""
    runs = Path(out_root) / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = runs / new_run_id()
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:  # same microsecond and same random suffix: draw again
            continue


def latest_run(out_root: str | os.PathLike) -> Path | None:
    """The run directory `out_root/latest` points to, or None before the first successful run."""
    link = Path(out_root) / LATEST
    if not link.is_symlink():
        return None
    target = (link.parent / os.readlink(link)).resolve()
    return target if target.is_dir() else None


def list_runs(out_root: str | os.PathLike) -> list[Path]:
    """Run directories, oldest first."""
    runs = Path(out_root) / RUNS
    if not runs.is_dir():
        return []
    return sorted(
        (p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )


def promote(out_root: str | os.PathLike, run_dir: str | os.PathLike) -> Path:
    """Point `out_root/latest` at `run_dir` atomically; returns the link's path.

    The link is relative (`runs/<id>`) so the whole output root can be moved or copied.
    """
    root = Path(out_root)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SynthpipeError(f"cannot promote {run_dir}: it is not a directory")
    if run_dir.resolve().parent != (root / RUNS).resolve():
        raise SynthpipeError(f"cannot promote {run_dir}: it is not a run under {root / RUNS}")
    link = root / LATEST
    if link.exists() and not link.is_symlink():
        raise SynthpipeError(
            f"{link} exists and is not a symlink; move it away so that synthpipe can manage `latest`"
        )
    tmp = root / f".{LATEST}.{secrets.token_hex(4)}.tmp"
    os.symlink(os.path.join(RUNS, run_dir.name), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)
    return link


def mark_failed(run_dir: str | os.PathLike, error: BaseException | str) -> None:
    """Record why a run failed inside its own folder (it is never promoted)."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    Path(run_dir, FAILED).write_text(text + "\n")


def mark_dead_runs(out_root: str | os.PathLike) -> list[Path]:
    """Mark FAILED the runs whose process died mid-run (SIGKILL, power cut): they still hold
    `.running`. Call with the output lock held, so that no live run is among them."""
    dead = [run for run in list_runs(out_root) if (run / RUNNING).exists()]
    for run_dir in dead:
        mark_failed(run_dir, "the run ended without finishing (killed or crashed); it was never promoted")
        (run_dir / RUNNING).unlink(missing_ok=True)
    return dead


def prune(out_root: str | os.PathLike, keep: int) -> list[Path]:
    """Remove all but the `keep` newest runs; the run `latest` points to is always kept.

    Failed runs count like any other. Returns the removed directories. Each is first renamed to a
    hidden name, so a crash mid-removal leaves no half-deleted folder that looks like a run.
    """
    if keep < 1:
        raise ConfigError(f"keep_runs must be >= 1, got {keep}")
    root = Path(out_root)
    current = latest_run(root)
    runs = list_runs(root)
    keep_set = set(runs[-keep:])
    if current is not None:
        keep_set.add(current)
    removed = []
    for run_dir in runs:
        if run_dir in keep_set or (current is not None and run_dir.resolve() == current):
            continue
        trash = run_dir.with_name(f".trash-{run_dir.name}")
        os.replace(run_dir, trash)
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(run_dir)
    for stale in (root / RUNS).glob(".trash-*") if (root / RUNS).is_dir() else []:
        shutil.rmtree(stale, ignore_errors=True)  # left over from a crash
    return removed


@contextmanager
def output_lock(out_root: str | os.PathLike, timeout_s: float = 600.0, poll_s: float = 0.2) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on `out_root` (flock on `out_root/.lock`).

    Waits up to `timeout_s` for another holder, then raises OutputBusyError naming the holder's pid.
    The kernel drops the lock when the holder exits, even if it crashes, so no stale lock remains.
    """
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(
        root / LOCK,
        timeout_s=timeout_s,
        poll_s=poll_s,
        busy=f"output directory {root} is in use by another synthpipe run{{holder}}",
        advice="Wait for that run to finish or write to another --out directory",
    ) as path:
        yield path


@contextmanager
def file_lock(
    path: str | os.PathLike,
    *,
    timeout_s: float = 600.0,
    poll_s: float = 0.2,
    busy: str = "{path} is locked by another process{holder}",
    advice: str = "",
) -> Iterator[Path]:
    """An exclusive flock on `path` (created if missing), with a bounded wait and a clear error.

    `busy` is the error's first sentence; `{path}` and `{holder}` (" (pid N)") are filled in.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    first = busy.format(path=path, holder=_read_holder(fd))
                    tail = f". {advice}" if advice else ""
                    raise OutputBusyError(f"{first}; waited {timeout_s:g}s for its lock ({path}){tail}") from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def versioned_run(
    out_root: str | os.PathLike, keep: int | None = None, lock_timeout_s: float = 600.0
) -> Iterator[Path]:
    """Lock `out_root`, make a new run folder and yield it; on success promote it to `latest` and
    prune to `keep` runs; on failure write `FAILED` into it and leave `latest` where it was."""
    with output_lock(out_root, timeout_s=lock_timeout_s):
        mark_dead_runs(out_root)
        run_dir = new_run(out_root)
        running = run_dir / RUNNING
        running.write_text(f"{os.getpid()}\n")
        try:
            yield run_dir
        except BaseException as exc:
            mark_failed(run_dir, exc)
            running.unlink(missing_ok=True)
            raise
        running.unlink()
        promote(out_root, run_dir)
        if keep is not None:
            prune(out_root, keep)


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _fsync_dir(path: Path) -> None:
    """Make the rename durable across a power cut (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
