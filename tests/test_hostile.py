"""Hostile tables through the whole run (issue 14, point 6), via `synthpipe run` in subprocesses
on tables this test writes: markup, spreadsheet formulas and paths as column names and category
values, NUL bytes, a 10 MB cell and 5,000 columns.

What must hold: no path is ever built from a data value (nothing appears outside the output
directory, and no file name under it carries a data value); data values survive as data (the
synthetic table has the source's column names, byte for byte); huge inputs are either refused
with a message that names the limit and how to get past it, or handled. Whether the report
escapes what it shows is tested with a browser elsewhere (validators' report tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SCRIPT = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"
PASSWD = "../../etc/passwd"
ESCAPE = "../../escape"
HOSTILE = [SCRIPT, FORMULA, PASSWD, ESCAPE, "<img src=x onerror=alert(1)>", "/tmp/absolute", "..", "CON"]
RUN = ["--generator", "gan", "--epochs", "1", "--rows", "30", "--no-progress"]


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Prefect server for every subprocess of this module (each would start its own)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # its telemetry races the first migration
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield PREFECT_API_URL.value()


def synthpipe(args: list[str], cwd: Path, api: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_LOGGING_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "synthpipe.flows.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    """(cwd, root): the run's working directory sits two levels below `root`, so that a relative
    '../../x' built from a data value would land inside `root`, where this test can see it."""
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    return cwd, tmp_path


def _hostile_table(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            SCRIPT: rng.choice(HOSTILE[:4], n),
            FORMULA: np.round(rng.normal(10, 2, n), 2),
            PASSWD: rng.choice(HOSTILE, n),
            ESCAPE: rng.integers(0, 50, n),
            "plain": rng.choice(["x", "y"], n),
        }
    )


def _assert_nothing_outside(before: set[Path], root: Path, out: Path) -> None:
    new = _files(root) - before
    outside = sorted(
        str(p) for p in new if out not in p.parents and p != out and not p.name.startswith(f".{out.name}")
    )
    assert not outside, f"files written outside {out}: {outside}"
    for p in new:
        relative = str(p.relative_to(root))
        for token in ("passwd", "escape", "script", "calc", "onerror", "absolute"):
            assert token not in relative, f"a data value became a path: {relative}"
    assert not Path("/tmp/absolute").exists()


def _run_completes(source: str, cwd: Path, root: Path, prefect_api: str, *options: str) -> subprocess.CompletedProcess:
    """`synthpipe run` of `source` into cwd/out completes (exit 0, or 3 for a failed gate) and writes
    nothing outside out/."""
    before = _files(root)
    proc = synthpipe(["run", "--source", source, "--out", "out", *options, *RUN], cwd, prefect_api)
    assert proc.returncode in (0, 3), proc.stderr[-3000:]
    _assert_nothing_outside(before, root, cwd / "out")
    return proc


def _run_refused(source: str, cwd: Path, root: Path, prefect_api: str) -> str:
    """`synthpipe run` of `source` exits 1 with one line (returned) and no traceback, having written
    nothing but the output's lock file."""
    before = _files(root)
    proc = synthpipe(["run", "--source", source, "--out", "out", *RUN], cwd, prefect_api)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert _files(root) - before <= {cwd / ".out.lock"}
    return lines[0]


def _synthetic_columns(out: Path) -> list[str]:
    files = sorted((out / "synthetic").glob("*.parquet"))
    assert files
    return pq.read_schema(files[0]).names


def test_markup_formulas_and_paths_in_names_and_values_stay_data(prefect_api: str, tmp_path: Path) -> None:
    cwd, root = _workspace(tmp_path)
    source = cwd / "hostile.csv"
    table = _hostile_table()
    table.to_csv(source, index=False)
    out = cwd / "out"
    proc = _run_completes(str(source), cwd, root, prefect_api, "--target", SCRIPT)
    assert "Traceback" not in proc.stderr
    assert not (root.parent / "escape").exists() and not (root / "escape").exists()
    assert _synthetic_columns(out) == list(table.columns)
    synthetic = pd.read_parquet(out / "synthetic")
    assert set(synthetic[PASSWD].unique()) <= set(HOSTILE)  # values are data, emitted as they were
    report = json.loads((out / "report.json").read_text())
    assert report["checks"]
    assert (out / "report.html").is_file()


def test_nul_bytes_in_a_csv_are_refused_with_a_clear_message(prefect_api: str, tmp_path: Path) -> None:
    cwd, root = _workspace(tmp_path)
    source = cwd / "nul.csv"
    source.write_bytes(b"a,b\x00c\n1,x\x00y\n2,z\n3,w\n")
    message = _run_refused(str(source), cwd, root, prefect_api)
    assert "nul.csv" in message and "NUL" in message, message


def test_nul_bytes_in_parquet_names_and_values_are_data(prefect_api: str, tmp_path: Path) -> None:
    """Parquet can hold NUL in names and strings; they pass through as data."""
    cwd, root = _workspace(tmp_path)
    rng = np.random.default_rng(1)
    n = 60
    values = ["a\x00b", "c", "\x00"]  # Python strings: numpy's fixed-width ones would cut them at the NUL
    table = pa.table({"nul\x00name": [values[i] for i in rng.integers(0, 3, n)], "v\x00": rng.normal(size=n)})
    pq.write_table(table, cwd / "nul.parquet")
    _run_completes("nul.parquet", cwd, root, prefect_api)
    assert _synthetic_columns(cwd / "out") == ["nul\x00name", "v\x00"]
    assert set(pd.read_parquet(cwd / "out" / "synthetic")["nul\x00name"]) <= {"a\x00b", "c", "\x00"}


def test_a_10_mb_csv_cell_is_refused_naming_the_limit(prefect_api: str, tmp_path: Path) -> None:
    """A CSV line is read in one block of the Arrow reader (1 MiB): a 10 MB cell is refused
    before the engine starts, with the limit and the way around it (Parquet)."""
    cwd, root = _workspace(tmp_path)
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"x": rng.normal(size=50), "label": rng.choice(["a", "b"], 50)})
    table.loc[3, "label"] = "Z" * (10 * 2**20)
    table.to_csv(cwd / "bigcell.csv", index=False)
    message = _run_refused("bigcell.csv", cwd, root, prefect_api)
    assert "bigcell.csv" in message and "bytes, the limit on one CSV line" in message
    assert "Parquet" in message


def test_a_10_mb_parquet_cell_is_handled(prefect_api: str, tmp_path: Path) -> None:
    """Parquet has no line limit: the 10 MB value is one category among others, and the run
    completes (memory: one copy of the value per emitted row that draws it)."""
    cwd, root = _workspace(tmp_path)
    rng = np.random.default_rng(3)
    big = "Z" * (10 * 2**20)
    table = pd.DataFrame({"x": rng.normal(size=60), "label": rng.choice(["a", "b"], 60)})
    table.loc[[3, 4], "label"] = big
    table.to_parquet(cwd / "bigcell.parquet")
    _run_completes("bigcell.parquet", cwd, root, prefect_api)
    labels = set(pd.read_parquet(cwd / "out" / "synthetic")["label"])
    assert labels <= {"a", "b", big}


def test_5000_columns_are_refused_naming_the_limit(prefect_api: str, tmp_path: Path) -> None:
    """Validation compares every pair of columns (12.5 million pairs here): refused at once, before
    the engine starts, with the limit and how to raise it."""
    cwd, root = _workspace(tmp_path)
    rng = np.random.default_rng(4)
    wide = pd.DataFrame(rng.integers(0, 3, (30, 5000)), columns=[f"c{i}" for i in range(5000)])
    wide.to_csv(cwd / "wide.csv", index=False)
    message = _run_refused("wide.csv", cwd, root, prefect_api)
    assert "wide.csv has 5000 columns, above the limit of 1000" in message
    assert "SYNTHPIPE_MAX_COLUMNS=5000" in message


def test_the_column_limit_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from synthpipe.generators.errors import DataError
    from synthpipe.generators.schema import infer_schema

    wide = pd.DataFrame(np.zeros((3, 1001)), columns=[f"c{i}" for i in range(1001)])
    with pytest.raises(DataError, match="1001 columns, above the limit of 1000"):
        infer_schema(wide)
    monkeypatch.setenv("SYNTHPIPE_MAX_COLUMNS", "1001")
    assert len(infer_schema(wide).columns) == 1001


def test_ids_minted_for_huge_text_keys_stay_short() -> None:
    """An ID column of 10 MB cells: fresh IDs are capped at 64 characters, not 10 MB each."""
    import numpy as np

    from synthpipe.generators.ids import generate_ids, learn_id_format

    keys = pd.Series([f"{i}" + "k" * (10 * 2**20) for i in range(3)])
    minted = generate_ids(learn_id_format(keys), 1000, 0, np.random.default_rng(0))
    assert len(set(minted)) == 1000 and max(map(len, minted)) == 64
