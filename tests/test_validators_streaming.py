"""Full-coverage validation: the expectation suite sees every emitted row, streamed in bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthpipe.generators.errors import DataError
from synthpipe.generators.schema import infer_schema
from synthpipe.validators import run_validation
from synthpipe.validators.expectations import build_suite, run_expectations
from synthpipe.validators.streaming import dataset_batches, dataset_files

EXPECTATIONS_ONLY = {"checks": ["expectations"], "stream_batch_rows": 4_000}


def _write_dataset(directory: Path, frame: pd.DataFrame, splits: dict[str, slice], rows_per_file: int) -> None:
    """The layout a run writes: split subdirectories of part files, plus the writer's sidecar."""
    for name, rows in splits.items():
        part = frame.iloc[rows]
        (directory / name).mkdir(parents=True, exist_ok=True)
        for k, start in enumerate(range(0, len(part), rows_per_file)):
            table = pa.Table.from_pandas(part.iloc[start:start + rows_per_file], preserve_index=False)
            pq.write_table(table, directory / name / f"part-{k:05d}.parquet", row_group_size=2_000)
        (directory / name / "_synthpipe.json").write_text("{}")


@pytest.fixture(scope="module")
def fresh(acs12: pd.DataFrame) -> pd.DataFrame:
    """A stand-in for a large synthetic table: ACS rows resampled, with fresh unique IDs."""
    rows = acs12.sample(24_000, replace=True, random_state=3).reset_index(drop=True)
    return rows.assign(**{acs12.columns[0]: np.arange(1, len(rows) + 1)})


def test_a_bad_row_beyond_the_sample_is_caught(acs12, fresh, tmp_path):
    bad = fresh.copy()
    last = len(bad) - 1
    bad.loc[last, "age"] = 500  # out of the source's range
    bad.loc[last, "race"] = "<script>unknown</script>"  # not a source category
    _write_dataset(tmp_path / "synthetic", bad, {"train": slice(0, 16_000), "test": slice(16_000, None)}, 5_000)
    sample = bad.iloc[:3_000]
    schema = infer_schema(acs12)

    sampled_only = run_validation(acs12, sample, schema, config=EXPECTATIONS_ONLY)[0]
    assert sampled_only.passed is True and sampled_only.extra["rows_seen"] == 3_000  # the sample misses it

    streamed = run_validation(acs12, sample, schema, config=EXPECTATIONS_ONLY, synthetic_path=tmp_path / "synthetic")[0]
    assert streamed.passed is False
    assert streamed.extra["rows_seen"] == len(bad) and streamed.extra["coverage"] == "stream"
    assert set(streamed.extra["failed_columns"]) == {"age", "race"}
    details = streamed.details.set_index(["expectation", "column"])
    assert (streamed.details["rows_seen"] == len(bad)).all()  # every expectation of the profiled suite merged
    assert "1 unexpected" in details.loc[("expect_column_values_to_be_between", "age"), "observed"]
    assert "1 unexpected" in details.loc[("expect_column_values_to_be_in_set", "race"), "observed"]
    report = streamed.to_dict()
    assert report["extra"]["rows_seen"] == len(bad)  # report.json says how many rows the check saw


def test_merged_batches_equal_one_run_on_the_whole_table(acs12, fresh, tmp_path):
    """Merging per-batch results is exact: the same verdict and observed values as GX on all rows."""
    table = fresh.copy()
    rng = np.random.default_rng(0)
    table.loc[rng.random(len(table)) < 0.2, "income"] = np.nan  # null share beyond the tolerance
    table.loc[rng.choice(len(table), 30, replace=False), acs12.columns[0]] = 7  # repeated IDs across batches
    table["hrs_work"] = table["hrs_work"] * 1.4  # mean moves out of its band
    _write_dataset(tmp_path / "synthetic", table, {"all": slice(0, None)}, 7_000)
    suite = build_suite(acs12, infer_schema(acs12))
    whole = run_expectations(table, suite).details.set_index(["expectation", "column"]).sort_index()
    streamed = run_expectations(table.iloc[:1_000], suite, synthetic_path=tmp_path / "synthetic",
                                config=None).details.set_index(["expectation", "column"]).sort_index()
    assert not whole["success"].all()
    assert whole["success"].to_dict() == streamed["success"].to_dict()
    for name in ("expect_column_mean_to_be_between", "expect_column_stdev_to_be_between"):
        for column in whole.loc[name].index:
            assert float(streamed.loc[(name, column), "observed"]) == pytest.approx(
                float(whole.loc[(name, column), "observed"]), rel=1e-6)
    assert (streamed["rows_seen"] == len(table)).all()


def test_dataset_discovery_and_bounded_batches(tmp_path, fresh):
    _write_dataset(tmp_path / "d", fresh.iloc[:9_000], {"a": slice(0, 5_000), "b": slice(5_000, None)}, 3_000)
    (tmp_path / "d" / ".staging").mkdir()
    pq.write_table(pa.Table.from_pandas(fresh.iloc[:10]), tmp_path / "d" / ".staging" / "part-0.parquet")
    files = dataset_files(tmp_path / "d")
    assert [f.relative_to(tmp_path / "d").as_posix() for f in files] == [
        "a/part-00000.parquet", "a/part-00001.parquet", "b/part-00000.parquet", "b/part-00001.parquet"]
    sizes = [len(b) for b in dataset_batches(tmp_path / "d", batch_rows=1_500)]
    assert sum(sizes) == 9_000 and max(sizes) <= 1_500
    with pytest.raises(DataError, match="does not exist"):
        dataset_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Parquet part files"):
        dataset_files(tmp_path / "empty")


CHILD = textwrap.dedent('''
    import json, resource, sys
    from pathlib import Path
    import pandas as pd, pyarrow.parquet as pq
    from synthpipe.validators import run_validation

    directory, mode, cap_mb = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    real = pd.read_parquet(directory / "real.parquet")
    sample = pq.ParquetFile(directory / "synthetic" / "part-00000.parquet").read_row_group(0).to_pandas()
    config = {"checks": ["expectations"], "stream_batch_rows": 100_000}
    run_validation(real, sample, config=config)  # loads every module the check needs before the cap
    size_mb = next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmSize"))
    limit = (size_mb + cap_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if mode == "stream":
        check = run_validation(real, sample, config=config, synthetic_path=directory / "synthetic")[0]
    else:
        check = run_validation(real, pd.read_parquet(directory / "synthetic"), config=config)[0]
    print(json.dumps({"passed": check.passed, "rows_seen": check.extra.get("rows_seen"),
                      "failed": check.extra.get("failed_columns"), "error": check.extra.get("error")}))
''')


def test_millions_of_rows_stream_under_a_memory_cap(tmp_path):
    """3M rows stream under an address-space cap of 250 MB above the loaded interpreter; the same
    table read whole and validated does not fit that cap, so the cap is a real bound."""
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.integers(0, 100, 2_000), "y": rng.uniform(-5, 5, 2_000),
                         "c": rng.choice(["a", "b", "c", "d"], 2_000)})
    real.loc[:1, "y"] = [-5, 5]
    real.to_parquet(tmp_path / "real.parquet")
    (tmp_path / "synthetic").mkdir()
    n_files, per_file = 3, 1_000_000
    for k in range(n_files):
        part = pd.DataFrame({"x": rng.integers(0, 100, per_file), "y": rng.uniform(-5, 5, per_file),
                             "c": rng.choice(["a", "b", "c", "d"], per_file)})
        if k == n_files - 1:
            part.loc[per_file - 1, "c"] = "zzz"  # the one bad row, in the last row of the last file
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       tmp_path / "synthetic" / f"part-{k:05d}.parquet", row_group_size=100_000)
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}

    def child(mode: str) -> dict:
        out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), mode, "250"], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    streamed = child("stream")
    assert streamed == {"passed": False, "rows_seen": n_files * per_file, "failed": ["c"], "error": None}
    loaded = child("loaded")
    assert loaded["passed"] is False and "MemoryError" in (loaded["error"] or "")
