"""flows/io/scan.py and generators/profile.py: ingest in one streaming pass, whole-table profile,
seeded uniform reservoir samples, bounded memory. Every test reads real files the test makes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from test_io import every_kind  # tests/ is on sys.path (pytest prepend mode)

from synthpipe.flows.io import read_table
from synthpipe.flows.io.reservoir import row_keys, split_positions
from synthpipe.flows.io.scan import ScanResult, peek_source, scan_source
from synthpipe.flows.pipeline import split_holdout
from synthpipe.generators.errors import ConfigError, DataError
from synthpipe.generators.profile import ProfileAccumulator, TableProfile
from synthpipe.generators.schema import infer_schema
from synthpipe.generators.seeding import SeedStream, numpy_rng


def sample_of(result: ScanResult) -> pd.DataFrame:
    return pd.concat([result.train, result.holdout]).sort_index()


def numbered(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pos": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        }
    )


# ---- small tables behave as before ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "parquet", "sqlite"])
def test_small_table_is_read_whole_and_split_as_before(tmp_path, acs12, kind):
    if kind == "csv":
        source = Path(__file__).resolve().parent.parent / "examples" / "acs12.csv"
    elif kind == "parquet":
        source = tmp_path / "e.parquet"
        every_kind(60).to_parquet(source)
    else:
        source = tmp_path / "a.db"
        with sqlite3.connect(source) as con:
            acs12.to_sql("acs", con, index=False)
    options = {"table": "acs"} if kind == "sqlite" else {}
    whole, provenance = read_table(source, **options)
    result = scan_source(source, holdout_fraction=0.2, seed=3, **options)

    sample = sample_of(result)
    assert sample.reset_index(drop=True).equals(whole) and list(sample.dtypes) == list(whole.dtypes)
    train, holdout = split_holdout.fn(whole, 0.2, 3)
    assert result.train.reset_index(drop=True).equals(train.reset_index(drop=True))
    assert result.holdout.reset_index(drop=True).equals(holdout.reset_index(drop=True))
    assert list(result.train.index) == list(train.index) and list(result.holdout.index) == list(holdout.index)
    assert result.profile.rows == len(whole) == result.provenance.rows
    assert result.provenance.options["sample"]["whole_table"] is True
    if kind != "sqlite":
        assert result.provenance.content_hash == provenance.content_hash  # the file's sha256, as before
    # the schema from sample + profile is the schema of the whole table, as before
    assert infer_schema(sample, profile=result.profile).to_dict() == infer_schema(whole).to_dict()


def test_the_holdout_split_uses_its_named_stream():
    train, holdout = split_positions(50, 0.2, seed=5)
    perm = numpy_rng(5, SeedStream.HOLDOUT_SPLIT).permutation(50)
    assert list(holdout) == sorted(perm[:10]) and list(train) == sorted(perm[10:])
    assert len(split_positions(2, 0.2, 0)[1]) == 0  # too small for a holdout: all rows train


# ---- large tables: reservoirs ----------------------------------------------------------------------


def test_sample_does_not_depend_on_batch_size(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(numbered(30_000), preserve_index=False), path, row_group_size=4_000)
    a = scan_source(path, max_train_rows=1_000, holdout_fraction=0.2, seed=1, batch_rows=997)
    b = scan_source(path, max_train_rows=1_000, holdout_fraction=0.2, seed=1, batch_rows=65_536)
    assert a.train.equals(b.train) and a.holdout.equals(b.holdout)
    assert len(a.train) == 1_000 and len(a.holdout) == 250  # 1000 * 0.2 / 0.8
    assert not set(a.train.index) & set(a.holdout.index)
    assert (a.train["pos"].to_numpy() == a.train.index).all()  # the index is the row's position
    assert a.provenance.options["sample"] == {
        "train_rows": 1_000, "holdout_rows": 250, "max_train_rows": 1_000, "whole_table": False
    }
    assert a.profile.rows == 30_000 and a.profile.to_dict() == b.profile.to_dict()
    c = scan_source(path, max_train_rows=1_000, holdout_fraction=0.2, seed=2)
    assert not c.train.index.equals(a.train.index)  # another seed, another sample


def test_row_keys_are_row_addressable():
    whole = row_keys(7, SeedStream.RESERVOIR_TRAIN, 0, 200_000)
    parts = np.concatenate([row_keys(7, SeedStream.RESERVOIR_TRAIN, s, 33_333) for s in range(0, 200_000, 33_333)])
    assert np.array_equal(whole, parts[:200_000])


def test_reservoir_samples_are_uniform_over_row_positions(tmp_path):
    """Chi-squared on the positions drawn, pooled over seeds: every part of the table alike."""
    n, bins = 20_000, 20
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(numbered(n), preserve_index=False), path)
    train_counts, holdout_counts = np.zeros(bins), np.zeros(bins)
    for seed in range(8):
        result = scan_source(path, max_train_rows=2_000, holdout_fraction=0.2, seed=seed, batch_rows=3_000)
        assert len(result.train) == 2_000 and len(result.holdout) == 500
        assert not set(result.train.index) & set(result.holdout.index)
        train_counts += np.histogram(result.train.index, bins=bins, range=(0, n))[0]
        holdout_counts += np.histogram(result.holdout.index, bins=bins, range=(0, n))[0]
    for counts in (train_counts, holdout_counts):
        assert stats.chisquare(counts).pvalue > 0.001
    # and the first and last batches are not favoured: a position test across the whole range
    assert stats.kstest(np.asarray(result.train.index) / n, "uniform").pvalue > 0.001


def test_profile_knows_rare_values_that_the_sample_missed(tmp_path):
    n = 40_000
    frame = numbered(n)
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    first = scan_source(path, max_train_rows=2_000, holdout_fraction=0.2, seed=0)
    outside = int(np.setdiff1d(np.arange(n), sample_of(first).index)[n // 3])
    frame.loc[outside, "city"] = "Rarewater"
    frame.loc[outside, "x"] = 1e9
    frame.to_parquet(path)

    result = scan_source(path, max_train_rows=2_000, holdout_fraction=0.2, seed=0)
    sample = sample_of(result)
    assert sample.index.equals(sample_of(first).index)  # keys depend on positions only
    assert "Rarewater" not in set(sample["city"]) and sample["x"].max() < 1e9
    assert result.profile["x"].max == 1e9 and result.profile["city"].distinct == 4
    assert ["Rarewater", 1] in result.profile["city"].frequencies
    schema = infer_schema(sample, profile=result.profile)
    assert "Rarewater" in schema["city"].categories and schema["city"].categories[-1] == "Rarewater"
    assert schema["x"].max == 1e9
    assert schema["pos"].min == 0 and schema["pos"].max == n - 1


def test_profile_counts_nulls_distincts_and_caps():
    accumulator = ProfileAccumulator(max_categories=3, distinct_cap=50)
    for start in range(0, 1_000, 100):
        values = np.arange(start, start + 100)
        accumulator.update(
            pa.record_batch(
                {
                    "k": pa.array(values % 5),
                    "many": pa.array(values),
                    "s": pa.array([None if v % 10 == 0 else f"v{v % 7}" for v in values]),
                    "t": pa.array(pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC") + pd.Timedelta(hours=start)),
                }
            )
        )
    profile = accumulator.result()
    assert profile.rows == 1_000
    assert profile["k"].distinct == 5 and not profile["k"].distinct_capped
    assert profile["k"].frequencies == [[0, 200], [1, 200], [2, 200]] and profile["k"].frequencies_truncated
    assert profile["many"].distinct_capped and profile["many"].frequencies is None
    assert (profile["many"].min, profile["many"].max) == (0, 999)
    assert profile["s"].nulls == 100 and profile.null_fraction("s") == 0.1
    assert profile["t"].min == pd.Timestamp("2024-01-01", tz="UTC")
    assert profile["t"].max == pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=999)
    assert TableProfile.from_dict(profile.to_dict()).to_dict() == profile.to_dict()


# ---- CSV types over a stream -------------------------------------------------------------------------


def test_csv_types_learnt_late_in_the_stream_match_the_whole_file_reader(tmp_path):
    """pyarrow's streaming reader infers types from its first block; later blocks that disagree
    (a float, a word, a late first value) restart the scan with the wider type."""
    n = 6_000
    rows = [f"{i},{i},{'' if i < n - 5 else i},{i}" for i in range(n)]
    rows[n - 10] = f"{n - 10},{n - 10}.5,,word"
    path = tmp_path / "late.csv"
    path.write_text("a,b,c,d\n" + "\n".join(rows) + "\n")
    whole, _ = read_table(path)
    result = scan_source(path, max_train_rows=100_000, csv_block_bytes=4_096)
    sample = sample_of(result)
    assert sample.reset_index(drop=True).equals(whole)
    assert whole["b"].dtype == "float64" and whole["c"].dtype == "Int64" and whole["d"].dtype == object
    assert result.profile["b"].max == n - 1 and result.profile["c"].nulls == n - 5


def test_csv_decimal_commas_and_big_unsigned_decided_over_the_whole_file(tmp_path):
    lines = [f"{i};{i}" for i in range(3_000)] + ["2,5;18446744073709551615"]
    path = tmp_path / "euro.csv"
    path.write_text("a;b\n" + "\n".join(lines) + "\n")
    result = scan_source(path, csv_block_bytes=2_048)
    sample = sample_of(result)
    assert sample["a"].dtype == "float64" and sample["a"].iloc[-1] == 2.5
    assert sample["b"].dtype == "uint64" and sample["b"].iloc[-1] == 2**64 - 1
    assert result.provenance.options["decimal"] == ","


# ---- pre-flight reads the head only ------------------------------------------------------------------


def test_peek_reads_the_head_only(tmp_path):
    path = tmp_path / "t.csv"
    body = "\n".join(f"{i},x{i}" for i in range(200_000))
    path.write_text("a,b\n" + body + "\n1,2,3,4\n")  # a ragged last line, far past the head
    head = peek_source(path)
    assert list(head.columns) == ["a", "b"] and 0 < len(head) < 200_000
    with pytest.raises(DataError, match="line 200002 has 4 fields"):
        scan_source(path)
    with pytest.raises(DataError, match="no such file"):
        peek_source(tmp_path / "absent.csv")
    parquet = tmp_path / "t.parquet"
    numbered(5_000).to_parquet(parquet)
    assert len(peek_source(parquet)) <= 1024


# ---- memory does not depend on the table's size ------------------------------------------------------

_CAPPED = textwrap.dedent(
    """
    import resource, sys
    from synthpipe.flows.io.scan import scan_source
    from synthpipe.flows.io import read_table

    big, tiny, mode, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    scan_source(tiny, max_train_rows=1_000)  # thread pools and imports settle before the cap
    read_table(tiny)
    size = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + budget, size + budget))
    if mode == "scan":
        result = scan_source(big, max_train_rows=20_000, holdout_fraction=0.2, seed=0)
        print(result.profile.rows, len(result.train), len(result.holdout))
    else:
        df, _ = read_table(big)
        print(len(df))
    """
)


def test_a_table_that_does_not_fit_the_memory_cap_is_still_scanned(tmp_path):
    rows, chunk = 4_000_000, 500_000
    big = tmp_path / "big.parquet"
    schema = pa.schema([("x", pa.float64()), ("k", pa.int64()), ("city", pa.string()), ("tag", pa.string())])
    rng = np.random.default_rng(0)
    names = np.array([f"city-{i:03d}" for i in range(300)], dtype=object)
    with pq.ParquetWriter(big, schema) as writer:
        for start in range(0, rows, chunk):
            writer.write_table(
                pa.table(
                    {
                        "x": rng.normal(size=chunk),
                        "k": np.arange(start, start + chunk),
                        "city": names[rng.integers(0, 300, chunk)],
                        "tag": pa.array(np.char.add("t", np.arange(start, start + chunk).astype(str)).astype(object)),
                    },
                    schema=schema,
                ),
                row_group_size=100_000,
            )
    tiny = tmp_path / "tiny.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0], "k": [1, 2], "city": ["a", "b"], "tag": ["t1", "t2"]}), tiny)
    script = tmp_path / "capped.py"
    script.write_text(_CAPPED)
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "1", "OMP_NUM_THREADS": "1"}
    budget = 250 * 2**20  # the whole table as pandas needs well over this (4M distinct strings)

    def run(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), str(big), str(tiny), mode, str(budget)],
            capture_output=True, text=True, env=env, timeout=600,
        )

    scanned = run("scan")
    assert scanned.returncode == 0, scanned.stderr[-2000:]
    assert scanned.stdout.split() == [str(rows), "20000", "5000"]
    loaded = run("load")
    assert loaded.returncode != 0, "the cap must be too small for the whole table, or the test proves nothing"
    assert "MemoryError" in loaded.stderr or loaded.returncode < 0, loaded.stderr[-2000:]


# ---- non-finite numbers (issue 14, point 1) ----------------------------------------------------------


def _infinite_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    a = rng.normal(size=100).round(3).astype(object)
    a[[3, 17, 50]] = "inf"
    a[[20, 90]] = "-inf"
    b = rng.integers(0, 9, 100)
    path.write_text("a,b\n" + "\n".join(f"{x},{y}" for x, y in zip(a, b)) + "\n")
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_infinities_become_nulls_counted_per_column(tmp_path, kind):
    path = _infinite_csv(tmp_path / "inf.csv")
    if kind == "parquet":
        frame, _ = read_table(path)
        assert np.isinf(frame["a"]).sum() == 5  # the plain reader keeps them: they are data
        path = tmp_path / "inf.parquet"
        frame.to_parquet(path)
    for max_train_rows in (1_000, 40):  # whole table, and a sample of it
        result = scan_source(path, max_train_rows=max_train_rows, holdout_fraction=0.2)
        sample = sample_of(result)
        assert not np.isinf(sample["a"].to_numpy(dtype=float)).any()
        assert result.profile["a"].infinities == 5 and result.profile["b"].infinities == 0
        assert result.profile["a"].nulls == 5 and result.profile.infinities == {"a": 5}
        assert result.provenance.options["infinities"] == {"a": 5}  # report.json: source.options
        assert np.isfinite([result.profile["a"].min, result.profile["a"].max]).all()
    schema = infer_schema(sample, profile=result.profile)
    assert np.isfinite([schema["a"].min, schema["a"].max]).all() and schema["a"].nullable
    assert schema["a"].null_fraction == 0.05


def test_on_infinite_error_names_the_file_the_column_and_the_count(tmp_path):
    path = _infinite_csv(tmp_path / "inf.csv")
    with pytest.raises(DataError, match=r"inf\.csv: column 'a' has 5 infinite value\(s\)"):
        scan_source(path, on_infinite={"a": "error"})
    assert len(sample_of(scan_source(path, on_infinite={"a": "null", "b": "error"}))) == 100
    with pytest.raises(ConfigError, match="on_infinite must be one of"):
        scan_source(path, on_infinite={"a": "drop"})
    with pytest.raises(ConfigError, match="lacks"):
        scan_source(path, on_infinite={"nope": "error"})
    # the override sits in the schema overrides; the schema accepts it and does not store it
    result = scan_source(path)
    schema = infer_schema(sample_of(result), {"a": {"on_infinite": "error"}}, result.profile)
    assert "on_infinite" not in schema["a"].to_dict()
