"""Kill it anywhere: SIGKILL at each stage of a real `synthpipe run`, SIGTERM and Ctrl-C, a full disk.

Each run is a real subprocess (tests/fault_entry.py, the console script's `main` plus the pause
points inside training and the registry). With SYNTHPIPE_TEST_PAUSE_AT=<stage>:<marker> the run
stops at that stage and writes the marker, so every kill lands where it is meant to, not near it.
After each kill the previous good output must be byte-identical, nothing partial may be visible,
and the next run must succeed with no clean-up by hand, with the same model as an uninterrupted
run (same seed): after a kill during training via `--resume`, otherwise by retraining.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthpipe.flows.stages import PAUSE_VARIABLE, STAGES

pytestmark = pytest.mark.slow

ENTRY = Path(__file__).resolve().parent / "fault_entry.py"
RUN_TIMEOUT_S = int(os.environ.get("SYNTHPIPE_TEST_RUN_TIMEOUT_S", 600))
RESUMABLE = ("train", "checkpoint")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """One Prefect home for every run here: its database migrates once, not once per run."""
    return {
        **os.environ,
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 200
    path = tmp_path_factory.mktemp("data") / "small.csv"
    pd.DataFrame({
        "x": rng.normal(size=n).round(3),
        "k": rng.integers(0, 50, n),
        "c": rng.choice(["a", "b", "c"], n),
    }).to_csv(path, index=False)
    return path


def _config(folder: Path, table: Path, out: Path, registry: Path | None = None) -> Path:
    config = {
        "source": str(table),
        "generator": "vae",
        # a checkpoint every epoch, and 4 chunks of 100 rows, so that training and writing
        # have a "during" to be killed in
        "params": {"epochs": 6, "checkpoint_every": 1, "progress": False},
        "rows": 400,
        "chunk_rows": 100,
        "out": str(out),
        "seed": 0,
        "checks": {"checks": ["quality", "expectations"]},  # the validation stage, kept short
    }
    if registry is not None:
        config["registry"] = str(registry)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(config: Path, env: dict[str, str], *extra: str, pause: str | None = None,
           marker: Path | None = None) -> subprocess.Popen:
    run_env = dict(env)
    if pause:
        run_env[PAUSE_VARIABLE] = f"{pause}:{marker}"
    # Output to files, not pipes: a SIGKILLed run's orphaned Prefect server would hold a pipe
    # open. Its own session, so that the server can be reaped afterwards.
    logs = config.parent / f"run-{time.monotonic_ns()}"
    # SIGINT back to its default in the child, as a terminal gives it: a test session started as
    # a background job (`.ci/run &`) runs with SIGINT ignored, the child would inherit that, and
    # Python then installs no KeyboardInterrupt handler, so the Ctrl-C test waited out its timeout
    proc = subprocess.Popen([sys.executable, str(ENTRY), "run", str(config), *extra], env=run_env,
                            stdout=open(f"{logs}.out", "w"), stderr=open(f"{logs}.err", "w"),
                            start_new_session=True, preexec_fn=_default_sigint)
    proc.logs = logs
    return proc


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # fault_entry.py: every thread's stack to stderr
        time.sleep(2)
        _reap_group(proc)
        pytest.fail(f"the run did not end within {RUN_TIMEOUT_S}s; its threads:\n"
                    f"{Path(f'{proc.logs}.err').read_text()[-12000:]}", pytrace=False)
    finally:
        _reap_group(proc)
    return proc.returncode, Path(f"{proc.logs}.out").read_text(), Path(f"{proc.logs}.err").read_text()


def _reap_group(proc: subprocess.Popen) -> None:
    """Whatever the run left running (a killed run's temporary Prefect server) goes too."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _run(config: Path, env: dict[str, str], *extra: str) -> tuple[int, str, str]:
    return _finish(_start(config, env, *extra))


def _wait_for_marker(proc: subprocess.Popen, marker: Path, stage: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not marker.exists():
        if proc.poll() is not None:
            code, out, err = _finish(proc)
            pytest.fail(f"the run ended ({code}) before reaching stage {stage!r}:\n{err[-4000:]}")
        if time.monotonic() > deadline:
            _reap_group(proc)
            pytest.fail(f"the run did not reach stage {stage!r} within {RUN_TIMEOUT_S}s")
        time.sleep(0.05)


def _tree(path: Path) -> dict[str, str]:
    """Every file, link and directory under `path` with its content hash: byte-identical or not."""
    if not path.exists():
        return {}
    found = {}
    for item in sorted(path.rglob("*")):
        key = str(item.relative_to(path))
        if item.is_symlink():
            found[key] = "link:" + os.readlink(item)
        elif item.is_file():
            found[key] = hashlib.sha256(item.read_bytes()).hexdigest()
        else:
            found[key] = "dir"
    return found


def _leftovers(out: Path, registry: Path | None = None) -> list[str]:
    """Staging and backup directories next to the output (or in the registry) that a run left."""
    stale = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")
             and not p.name.endswith((".lock", ".checkpoints"))]
    if registry is not None and (registry / "models").is_dir():
        stale += [f"registry/models/{p.name}" for p in (registry / "models").iterdir() if p.name.startswith(".")]
    return stale


@pytest.fixture(scope="module")
def good(tmp_path_factory, table, env) -> Path:
    """An uninterrupted run: the previous good output every kill test starts from, and the
    reference model every recovered run must reproduce."""
    folder = tmp_path_factory.mktemp("good")
    out = folder / "out"
    code, _, err = _run(_config(folder, table, out), env)
    assert code in (0, 3), err[-4000:]
    assert (out / "model" / "model.safetensors").is_file()
    return out


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_stage_keeps_the_last_good_output(stage, good, table, env, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(good, out, symlinks=True)
    registry = tmp_path / "registry" if stage == "register" else None
    config = _config(tmp_path, table, out, registry)
    before = _tree(out)
    marker = tmp_path / "paused"

    proc = _start(config, env, pause=stage, marker=marker)
    _wait_for_marker(proc, marker, stage)
    os.kill(proc.pid, signal.SIGKILL)
    code, _, _ = _finish(proc)
    assert code == -signal.SIGKILL

    assert _tree(out) == before, f"killed at {stage}: the previous output changed"
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith((".", "run-")))
    assert visible == sorted(["out", "run.yaml", "paused", *(["registry"] if registry else [])])

    resume = ("--resume",) if stage in RESUMABLE else ()
    code, _, err = _run(config, env, *resume)
    assert code in (0, 3), f"the run after a kill at {stage} failed:\n{err[-4000:]}"
    assert _leftovers(out, registry) == [], "stale staging was not recovered"
    # same seed, same model: a resumed training ends where the uninterrupted one did
    model = (out / "model" / "model.safetensors").read_bytes()
    assert model == (good / "model" / "model.safetensors").read_bytes()
    if registry is not None:
        entries = list((registry / "entries").glob("*.json"))
        assert len(entries) == 1 and len(list((registry / "models").iterdir())) == 1


@pytest.mark.parametrize(("signum", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                     (signal.SIGINT, 130, "interrupted")])
def test_sigterm_and_ctrl_c_exit_cleanly(signum, code, word, good, table, env, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(good, out, symlinks=True)
    before = _tree(out)
    marker = tmp_path / "paused"
    proc = _start(_config(tmp_path, table, out), env, pause="train", marker=marker)
    _wait_for_marker(proc, marker, "train")
    os.kill(proc.pid, signum)
    returncode, _, err = _finish(proc)
    assert returncode == code, err[-4000:]
    assert f"synthpipe: {word}" in err and "Traceback" not in err
    assert _tree(out) == before and _leftovers(out) == []  # a clean exit removes its own staging


def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a tmpfs and must run as root (CI does); "
                    "run it with sudo or in the CI container", pytrace=False)
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"mount -t tmpfs failed as root (a container without CAP_SYS_ADMIN?): {done.stderr}",
                    pytrace=False)


def test_full_disk_fails_clearly_and_keeps_the_previous_output(good, table, env, tmp_path):
    """A real full file system: a 16 MiB tmpfs holding a good output (about 5 MiB), then filled
    until 1 MiB is left, so that the next run's staging directory cannot be written."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "16m")
    try:
        out = disk / "out"
        shutil.copytree(good, out, symlinks=True)
        before = _tree(out)
        stat = os.statvfs(disk)
        free = stat.f_bavail * stat.f_frsize
        with open(disk / "filler", "wb") as filler:
            filler.truncate(0)
            filler.write(b"\0" * max(0, free - 1024 * 1024))
        code, _, err = _run(_config(tmp_path, table, out), env)
        assert code == 1, err[-4000:]
        assert f"synthpipe: error: no space left on {disk}" in err, err[-4000:]
        assert "Traceback" not in err
        assert _tree(out) == before and _leftovers(out) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_sigkill_in_a_versioned_run_leaves_latest_on_the_last_good_run(table, env, tmp_path):
    """Versioned outputs (`runs/<id>/`, `latest`): a run killed mid-way is never promoted, and the
    next run marks it FAILED (it still held `.running`) before making its own."""
    out = tmp_path / "out"
    config = _config(tmp_path, table, out)
    config.write_text(config.read_text() + "versioned: true\n")
    code, _, err = _run(config, env)
    assert code in (0, 3), err[-4000:]
    good_run = (out / "latest").resolve()
    before = _tree(good_run)

    marker = tmp_path / "paused"
    proc = _start(config, env, pause="validate", marker=marker)
    _wait_for_marker(proc, marker, "validate")
    os.kill(proc.pid, signal.SIGKILL)
    _finish(proc)
    assert (out / "latest").resolve() == good_run and _tree(good_run) == before

    code, _, err = _run(config, env)
    assert code in (0, 3), err[-4000:]
    runs = sorted(p for p in (out / "runs").iterdir())
    assert len(runs) == 3 and (out / "latest").resolve() == runs[-1] != good_run
    assert "without finishing" in (runs[1] / "FAILED").read_text()
    assert not any((run / ".running").exists() for run in runs)
    assert _tree(good_run) == before
