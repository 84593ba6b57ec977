"""The `synthpipe` command contract: outputs, report.json, exit codes, bad input, atomic outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthpipe.flows.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "acs12.csv"
FAST = ["--epochs", "3", "--no-progress"]


@pytest.fixture(scope="module")
def demo_run(prefect_harness, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "acs12"
    code = main(["run", "--source", str(EXAMPLE), "--generator", "vae", "--rows", "700", "--out", str(out),
                 "--target", "employment", *FAST])
    return code, out


def test_help_is_fast_because_heavy_modules_are_lazy():
    probe = "import sys, synthpipe.flows.cli as c; c.build_parser(); print(sorted(m for m in ('torch','prefect','sdmetrics') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "synthpipe.flows.cli", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "run" in help_text.stdout and "Exit codes" in help_text.stdout


def test_run_writes_every_output(demo_run):
    code, out = demo_run
    assert code in (0, 3)
    for name in ["synthetic", "model/model.safetensors", "model/model.json", "report.html", "report.json"]:
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert isinstance(report["passed"], bool) and (code == 0) == report["passed"]
    assert {"ingest_s", "fit_s", "sample_s", "validate_s"} <= set(report["timings"])
    assert report["generator"] == "vae" and report["seed"] == 0 and report["params"]["epochs"] == 3
    names = {c["name"] for c in report["checks"]}
    assert "quality" in names
    for check in report["checks"]:
        assert {"name", "score", "threshold", "passed"} <= set(check)
    assert not list(out.parent.glob(".acs12*tmp*"))  # no staging directory left behind


def test_synthetic_parquet_keeps_columns_types_and_metadata(demo_run):
    _, out = demo_run
    real = pd.read_csv(EXAMPLE)
    synthetic = pd.read_parquet(out / "synthetic")
    assert len(synthetic) == 700
    assert list(synthetic.columns) == list(real.columns)
    assert synthetic.dtypes.to_dict() == real.dtypes.to_dict()
    first = sorted((out / "synthetic").glob("*.parquet"))[0]
    meta = json.loads(pq.read_schema(first).metadata[b"synthpipe"])
    assert meta["generator"] == "vae" and meta["seed"] == 0
    assert meta["source"]["rows"] == len(real) and len(meta["source"]["content_hash"]) == 64


def test_sample_from_a_saved_model(demo_run, tmp_path):
    _, out = demo_run
    assert main(["sample", str(out / "model"), "--rows", "250", "--out", str(tmp_path / "s"), "--seed", "4"]) == 0
    table = pd.read_parquet(tmp_path / "s" / "synthetic")
    assert len(table) == 250 and list(table.columns) == list(pd.read_csv(EXAMPLE).columns)


def test_validate_any_two_tables(demo_run, tmp_path):
    _, out = demo_run
    code = main(["validate", "--real", str(EXAMPLE), "--synthetic", str(out / "synthetic"), "--out", str(tmp_path / "v")])
    assert code in (0, 3)
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert report["passed"] == (code == 0) and any(c["name"] == "quality" for c in report["checks"])


def test_a_failed_run_keeps_the_last_good_output(demo_run, tmp_path):
    code, out = demo_run
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    config = tmp_path / "broken.yaml"
    # fails inside the flow, after training, while the new output is being staged
    config.write_text(f"source: {EXAMPLE}\nout: {out}\nparams: {{epochs: 1, progress: false}}\nchecks: {{no_such_threshold: 1}}\n")
    assert main(["run", str(config)]) != 0
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}") and "tmp" in p.name]


def _write_bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "empty": folder / "empty.csv",
        "header_only": folder / "header.csv",
        "ragged": folder / "ragged.csv",
        "truncated": folder / "truncated.parquet",
        "not_a_table": folder / "picture.csv",
    }
    files["empty"].write_bytes(b"")
    files["header_only"].write_text("a,b,c\n")
    files["ragged"].write_text("a,b\n1,2\n3,4,5,6\n7,8\n")
    pd.DataFrame({"a": range(1000)}).to_parquet(files["truncated"])
    files["truncated"].write_bytes(files["truncated"].read_bytes()[:300])
    files["not_a_table"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    files["missing"] = folder / "does-not-exist.csv"
    return files


@pytest.mark.parametrize("case", ["empty", "header_only", "ragged", "truncated", "not_a_table", "missing"])
def test_bad_input_exits_1_naming_the_file_and_leaves_no_output(case, tmp_path, capsys):
    path = _write_bad_inputs(tmp_path / "in")[case]
    out = tmp_path / "out"
    code = main(["run", "--source", str(path), "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 1
    assert path.name in err and "Traceback" not in err
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["run", "--source", str(EXAMPLE), "--generator", "diffusion", "--out", str(tmp_path / "o")]) == 2
    assert "diffusion" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--rows", "many"])
    assert exc.value.code == 2
    assert main(["run", "--out", str(tmp_path / "o")]) == 2  # no source
    assert not (tmp_path / "o").exists()


def test_the_installed_command_runs_end_to_end(tmp_path):
    """The real console script in a subprocess, as a user or a scheduler runs it."""
    out = tmp_path / "cli"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "ph")}
    result = subprocess.run(
        ["synthpipe", "run", "--source", str(EXAMPLE), "--rows", "300", "--out", str(out), "--epochs", "2", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode in (0, 3), result.stderr[-3000:]
    assert (out / "report.json").is_file() and len(pd.read_parquet(out / "synthetic")) == 300


def test_a_user_error_inside_a_task_is_one_line_and_debug_brings_the_traceback(tmp_path):
    """A one-row table fails inside the training task: Prefect must not print the task's
    traceback above the message, and the message appears once; --debug shows the traceback."""
    source = tmp_path / "one-row.csv"
    source.write_text("a,b\n1,x\n")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "ph"), "PREFECT_LOGGING_LEVEL": "INFO"}
    message = "cannot train on a table with 1 row(s)"

    def run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["synthpipe", *flags, "run", "--source", str(source), "--out", str(tmp_path / "out"), *FAST],
            capture_output=True, text=True, env=env, timeout=600,
        )

    quiet = run()
    assert quiet.returncode == 1
    assert quiet.stderr.count(message) == 1 and "Traceback" not in quiet.stderr, quiet.stderr[-3000:]
    assert f"synthpipe: error: {message}" in quiet.stderr
    loud = run("--debug")
    assert loud.returncode == 1 and "Traceback (most recent call last)" in loud.stderr
    assert "DataError: " + message in loud.stderr
    assert not (tmp_path / "out").exists()


def test_user_error_records_lose_their_traceback_in_the_run_logs():
    """What Prefect sends to the run's logs (the UI, a served deployment): one line for a
    SynthpipeError, the traceback kept for anything unexpected."""
    import logging

    from synthpipe.flows.logs import one_line_user_errors
    from synthpipe.generators.errors import DataError

    one_line_user_errors()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(handler)
    try:
        for error in (DataError("column 'x' is empty"), RuntimeError("boom")):
            try:
                raise error
            except Exception:
                logger.error("Task run failed with exception: %r", error, exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert seen[0].exc_info is None and "column 'x' is empty" in seen[0].getMessage()
    assert seen[1].exc_info is not None


def test_verdict_lines_say_why_a_check_does_not_apply(capsys):
    from synthpipe.flows.cli import _print_verdict
    from synthpipe.validators.base import CheckResult, gate, not_applicable

    gated = CheckResult(name="quality", score=0.95, threshold=0.8, passed=gate(0.95, 0.8, "higher"),
                        summary="", direction="higher")
    skipped = not_applicable("privacy_rare_values", "nothing rare", "lower", 0.0)
    _print_verdict({"passed": True, "checks": [gated.to_dict(), skipped.to_dict()]}, Path("out"))
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["pass", "quality", "0.95"] for line in lines), lines
    assert any(line.split() == ["n/a", "privacy_rare_values", "nothing", "rare"] for line in lines), lines
