"""flows/io.py: ingest (CSV, Parquet file/dir/glob), dtype fidelity, bad-input errors, provenance,
secret masking, and the atomic, chunked Parquet writer. Every test reads and writes real files."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sys
import types
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthpipe.flows.io import (
    Provenance,
    WriteResult,
    atomic_directory,
    mask_secrets,
    read_parquet_dataset,
    read_parquet_metadata,
    read_table,
    write_parquet,
)
from synthpipe.generators.errors import ConfigError, DataError

HUGE = 2**62 + 1  # beyond float64's exact integers
HUGER = 2**63 + 5  # beyond int64: must come back as exact uint64


def every_kind(n: int = 6) -> pd.DataFrame:
    """One column of every dtype the pipeline must carry through Parquet unchanged."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "int": np.arange(n, dtype=np.int64),
            "int_nulls": pd.array([i if i % 3 else None for i in range(n)], dtype="Int64"),
            "float": rng.normal(size=n),
            "bool": np.arange(n) % 2 == 0,
            "bool_nulls": pd.array([None if i % 4 == 1 else i % 2 == 0 for i in range(n)], dtype="boolean"),
            "when": pd.date_range("2024-03-30", periods=n, freq="7h", tz="Europe/Paris"),
            "naive": pd.date_range("2020-01-01", periods=n, freq="D"),
            "level": pd.Categorical(
                (["low", "high"] * n)[:n], categories=["low", "mid", "high"], ordered=True
            ),
            "huge": np.array([HUGE + i for i in range(n)], dtype=np.int64),
            "huger": np.array([HUGER + i for i in range(n)], dtype=np.uint64),
            "text": pd.Series((["a", None, "ç"] * n)[:n], dtype=object),
            "température °C": np.linspace(-5.5, 30.25, n),
        }
    )


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---- CSV -----------------------------------------------------------------------------------


def test_csv_semicolon_latin1_sniffed(tmp_path):
    text = (
        "nom;température °C;n;quand;ok\n"
        "José;12,5;1;2024-01-01T10:00:00+02:00;true\n"
        "Zoë;-3,0;;2024-06-01T10:00:00Z;\n"
        "Ñandú;1.234,5;7;2024-12-31T23:59:59-05:00;false\n"
    )
    path = tmp_path / "mesures.csv"
    path.write_bytes(text.encode("latin-1"))

    df, prov = read_table(path)

    assert prov.options["delimiter"] == ";" and prov.options["encoding"] == "latin-1"
    assert prov.options["decimal"] == ","
    assert list(df.columns) == ["nom", "température °C", "n", "quand", "ok"]
    assert df["nom"].tolist() == ["José", "Zoë", "Ñandú"] and df["nom"].dtype == object
    assert df["température °C"].dtype == np.float64
    assert df["température °C"].tolist() == [12.5, -3.0, 1234.5]
    assert str(df["n"].dtype) == "Int64" and df["n"].isna().tolist() == [False, True, False]
    assert str(df["ok"].dtype) == "boolean" and df["ok"].isna().sum() == 1
    assert str(df["quand"].dt.tz) == "UTC"
    assert df["quand"][0] == pd.Timestamp("2024-01-01T08:00:00Z")
    assert df["quand"][2] == pd.Timestamp("2025-01-01T04:59:59Z")
    assert prov.kind == "csv" and prov.rows == 3 and prov.columns == 5
    assert prov.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_windows_1252_and_utf8_bom_and_explicit_options(tmp_path):
    cp = tmp_path / "cp.csv"
    cp.write_bytes("item,price\n“quoted”,5 €\n".encode("cp1252"))
    df, prov = read_table(cp)
    assert prov.options["encoding"] == "cp1252" and df["item"][0] == "“quoted”" and df["price"][0] == "5 €"

    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffa\tb\n1\tx\n".encode())
    df, prov = read_table(bom)
    assert list(df.columns) == ["a", "b"] and prov.options["delimiter"] == "\t"

    piped = tmp_path / "piped.txt"
    piped.write_bytes("a|b\n1|ä\n".encode("utf-16"))
    df, prov = read_table(piped, delimiter="|", encoding="utf-16")
    assert df.to_dict("list") == {"a": [1], "b": ["ä"]}


def test_csv_dtypes_survive(tmp_path):
    path = tmp_path / "types.csv"
    path.write_text(
        "i,i_null,f,b,b_null,t,s,huge,huger,blank\n"
        f"1,1,0.5,true,true,2024-01-01T00:00:00+01:00,x,{HUGE},{HUGER},\n"
        f"2,,1.5,false,,2024-01-02T00:00:00+01:00,,{HUGE + 1},1,\n"
        f"3,3,nan,True,False,2024-01-03T00:00:00+01:00,\"z, with comma\",-{HUGE},2,\n"
    )
    df, _ = read_table(path)
    assert df["i"].dtype == np.int64
    assert str(df["i_null"].dtype) == "Int64" and df["i_null"].tolist()[::2] == [1, 3]
    assert df["f"].dtype == np.float64 and np.isnan(df["f"][2])
    assert df["b"].dtype == bool and df["b"].tolist() == [True, False, True]
    assert str(df["b_null"].dtype) == "boolean" and df["b_null"].isna().tolist() == [False, True, False]
    assert isinstance(df["t"].dtype, pd.DatetimeTZDtype)
    assert df["s"].dtype == object and df["s"].isna().tolist() == [False, True, False]
    assert df["s"][2] == "z, with comma"
    assert df["huge"].dtype == np.int64 and df["huge"].tolist() == [HUGE, HUGE + 1, -HUGE]
    assert df["huger"].dtype == np.uint64 and df["huger"].tolist() == [HUGER, 1, 2]
    assert df["blank"].isna().all()


def test_csv_encoding_is_sniffed_from_the_whole_file(tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(b"a,b\n" + b"1,plain\n" * 20_000 + "2,café\n".encode("latin-1"))  # beyond the sniffed head
    df, prov = read_table(path)
    assert prov.options["encoding"] == "latin-1" and df["b"].iloc[-1] == "café" and len(df) == 20_001


def test_csv_quoted_newlines_and_unnamed_index_column(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(',note,n\n0,"line one\nline two",1\n1,"plain",2\n')
    df, _ = read_table(path)
    assert list(df.columns) == ["Unnamed: 0", "note", "n"]
    assert df["note"].tolist() == ["line one\nline two", "plain"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sep=st.sampled_from([",", ";", "\t", "|"]),
    rows=st.lists(
        st.tuples(
            st.integers(-(2**40), 2**40),
            st.text(alphabet="abcé ,;|\"'", min_size=0, max_size=8),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_csv_sniffing_recovers_any_delimiter(tmp_path, sep, rows):
    frame = pd.DataFrame({"number": [r[0] for r in rows], "label": ["s_" + r[1] for r in rows], "k": 1})
    path = tmp_path / "sniff.csv"
    frame.to_csv(path, sep=sep, index=False)
    df, prov = read_table(path)
    assert prov.options["delimiter"] == sep
    pd.testing.assert_frame_equal(df, frame)


# ---- Parquet -------------------------------------------------------------------------------


def test_parquet_file_keeps_every_dtype(tmp_path):
    frame = every_kind()
    path = tmp_path / "all.parquet"
    frame.to_parquet(path)
    df, prov = read_table(path)
    pd.testing.assert_frame_equal(df, frame)
    assert df["level"].cat.ordered and list(df["level"].cat.categories) == ["low", "mid", "high"]
    assert prov.kind == "parquet" and prov.rows == len(frame) and prov.columns == frame.shape[1]
    assert prov.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert Provenance(**prov.to_dict()) == prov


def test_parquet_named_index_becomes_a_column(tmp_path):
    frame = every_kind().set_index("int")
    frame.to_parquet(tmp_path / "indexed.parquet")
    df, _ = read_table(tmp_path / "indexed.parquet")
    assert list(df.columns) == list(every_kind().columns) and df["int"].tolist() == list(range(6))


def test_parquet_without_pandas_metadata_gets_nullable_dtypes(tmp_path):
    table = pa.table(
        {
            "i": pa.array([HUGE, None, 3], pa.int64()),
            "u": pa.array([1, None, 2], pa.uint32()),
            "b": pa.array([True, None, False]),
            "d": pa.array([19000, 19001, None], pa.date32()),
            "c": pa.array(["x", "y", "x"]).dictionary_encode(),
            "s": pa.array(["x", None, "z"], pa.large_string()),
        }
    )
    path = tmp_path / "spark_style.parquet"
    pq.write_table(table, path, store_schema=False)
    df, _ = read_table(path)
    assert str(df["i"].dtype) == "Int64" and df["i"][0] == HUGE and df["i"].isna()[1]
    assert str(df["u"].dtype) == "UInt32"
    assert str(df["b"].dtype) == "boolean"
    assert pd.api.types.is_datetime64_any_dtype(df["d"]) and df["d"][0] == pd.Timestamp("2022-01-08")
    assert df["c"].dtype == object  # without an Arrow schema Parquet keeps no dictionary type
    assert df["s"].dtype == object and df["s"].tolist() == ["x", None, "z"]


def test_parquet_directory_and_glob(tmp_path):
    frame = every_kind(12)
    data = tmp_path / "data"
    data.mkdir()
    frame.iloc[:5].to_parquet(data / "part-0.parquet")
    frame.iloc[5:].to_parquet(data / "part-1.parquet")  # an index starting at 5 is no data
    (data / "_SUCCESS").write_text("")
    (data / ".part-0.parquet.crc").write_bytes(b"\x00\x01")

    from_dir, prov_dir = read_table(data)
    pd.testing.assert_frame_equal(from_dir, frame)
    assert prov_dir.options["files"] == 2 and prov_dir.kind == "parquet"

    from_glob, prov_glob = read_table(str(data / "part-*.parquet"))
    pd.testing.assert_frame_equal(from_glob, frame)
    assert prov_glob.source == str(data / "part-*.parquet")
    assert prov_glob.content_hash == prov_dir.content_hash

    frame.iloc[:5].assign(int=99).to_parquet(data / "part-0.parquet")
    assert read_table(data)[1].content_hash != prov_dir.content_hash


def test_hive_partitions_and_csv_glob(tmp_path):
    for year, values in ((2023, [1, 2]), (2024, [3])):
        folder = tmp_path / "hive" / f"year={year}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"v": values}), folder / "f.parquet")
    df, _ = read_table(tmp_path / "hive")
    assert sorted(zip(df["year"].astype(int), df["v"])) == [(2023, 1), (2023, 2), (2024, 3)]

    (tmp_path / "a.csv").write_text("x,y\n1,a\n")
    (tmp_path / "b.csv").write_text("y,x\nb,2.5\n")  # columns in another order, x wider
    df, prov = read_table(str(tmp_path / "*.csv"))
    assert df.to_dict("list") == {"x": [1.0, 2.5], "y": ["a", "b"]} and prov.options["files"] == 2


def test_reading_never_modifies_the_source(tmp_path):
    csv_path = tmp_path / "src.csv"
    csv_path.write_text("a,b\n1,2\n")
    parquet_path = tmp_path / "src.parquet"
    every_kind().to_parquet(parquet_path)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (csv_path, parquet_path)}
    read_table(csv_path)
    read_table(parquet_path)
    read_table(tmp_path / "src.parquet", format="parquet")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.csv", "src.parquet"]


# ---- bad input -----------------------------------------------------------------------------


def _write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _truncated_parquet(path: Path) -> Path:
    every_kind().to_parquet(path)
    data = path.read_bytes()
    return _write(path, data[: len(data) // 2])


def _corrupt_parquet(path: Path) -> Path:
    every_kind().to_parquet(path)
    data = bytearray(path.read_bytes())
    footer_length = int.from_bytes(data[-8:-4], "little")
    data[-8 - footer_length : -8] = b"\xff" * footer_length  # footer garbled, magic bytes intact
    return _write(path, bytes(data))


BAD_INPUTS = {
    "missing": (lambda d: d / "nowhere.csv", "no such file"),
    "empty": (lambda d: _write(d / "empty.csv", b""), "empty (0 bytes)"),
    "empty_parquet": (lambda d: _write(d / "empty.parquet", b""), "empty (0 bytes)"),
    "blank_lines": (lambda d: _write(d / "blank.csv", "\n\n  \n"), "blank lines"),
    "header_only": (lambda d: _write(d / "header.csv", "a,b,c\n"), "no data rows"),
    "ragged": (lambda d: _write(d / "ragged.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n"), "line 4 has 3 fields"),
    "truncated_parquet": (lambda d: _truncated_parquet(d / "cut.parquet"), "truncated or corrupt"),
    "corrupt_footer": (lambda d: _corrupt_parquet(d / "garbled.parquet"), "corrupt"),
    "not_parquet": (lambda d: _write(d / "fake.parquet", "a,b\n1,2\n"), "not a Parquet file"),
    "png": (lambda d: _write(d / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)), "PNG image"),
    "png_named_csv": (lambda d: _write(d / "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00"), "PNG image"),
    "binary": (lambda d: _write(d / "blob.dat", bytes(range(256)) * 4), "binary"),
    "json": (lambda d: _write(d / "records.json", '[{"a": 1}]'), "JSON"),
    "json_named_csv": (lambda d: _write(d / "records.csv", '{"a": 1}\n{"a": 2}\n'), "JSON"),
    "html": (lambda d: _write(d / "page.csv", "<!DOCTYPE html><html><body>404</body></html>"), "HTML"),
    "xlsx": (lambda d: _write(d / "book.xlsx", b"PK\x03\x04" + bytes(40)), "spreadsheet"),
    "duplicate_csv": (lambda d: _write(d / "dupes.csv", "a,b,a\n1,2,3\n"), "duplicate column names"),
    "duplicate_parquet": (
        lambda d: (
            pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"]), d / "dupes.parquet"),
            d / "dupes.parquet",
        )[1],
        "duplicate column names",
    ),
    "unknown_encoding": (
        lambda d: _write(d / "sjis.csv", b"a,b\n" + "東京,大阪\n".encode("shift_jis") * 3),
        "cannot tell its text encoding",
    ),
    "mixed_encoding": (
        lambda d: _write(d / "mixed.csv", "a,b\n1,Ünïcödé straße\n".encode() + "2,caf\xe9\n".encode("latin-1")),
        "UTF-8 text with some bytes in another encoding (byte 0xE9 at line 3)",
    ),
    "empty_dir": (lambda d: (d / "emptydir").mkdir() or d / "emptydir", "holds no data files"),
    "glob_no_match": (lambda d: d / "nothing-*.parquet", "matches no files"),
    "mixed_dir": (
        lambda d: (
            _write(d / "mixed" / "a.csv", "a\n1\n"),
            every_kind().to_parquet(d / "mixed" / "b.parquet"),
            d / "mixed",
        )[2],
        "mixes CSV files",
    ),
    "columns_differ": (
        lambda d: (
            pq.write_table(pa.table({"a": [1]}), _dir(d / "cols") / "p0.parquet"),
            pq.write_table(pa.table({"b": [1]}), d / "cols" / "p1.parquet"),
            d / "cols",
        )[2],
        "same columns",
    ),
    "zero_rows_parquet": (
        lambda d: (every_kind().iloc[:0].to_parquet(d / "none.parquet"), d / "none.parquet")[1],
        "no rows",
    ),
}


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_data_error_naming_the_file(tmp_path, case):
    make, expected = BAD_INPUTS[case]
    source = make(tmp_path)
    with pytest.raises(DataError) as info:
        read_table(source)
    message = str(info.value)
    assert expected in message
    assert Path(source).name in message or str(source) in message


def test_wrong_explicit_encoding_names_the_line(tmp_path):
    path = _write(tmp_path / "latin.csv", "a,b\n1,x\n2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv cannot be read as utf-8: byte 0xE9 at line 3"):
        read_table(path, encoding="utf-8")


def test_a_file_in_a_directory_is_named_when_corrupt(tmp_path):
    data = _dir(tmp_path / "ds")
    every_kind().to_parquet(data / "good.parquet")
    _truncated_parquet(data / "bad.parquet")
    with pytest.raises(DataError, match="bad.parquet"):
        read_table(data)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"table": "people"}, "only to SQL"),
        ({"query": "select 1"}, "only to SQL"),
        ({"format": "xlsx"}, "unknown format"),
        ({"encoding": "no-such-codec"}, "unknown encoding"),
        ({"delimiter": ";;"}, "delimiter"),
        ({"format": "parquet", "delimiter": ","}, "only to CSV"),
    ],
)
def test_usage_errors_are_config_errors(tmp_path, options, message):
    path = _write(tmp_path / "t.csv", "a\n1\n")
    with pytest.raises(ConfigError, match=message):
        read_table(path, **options)


def test_remote_files_and_absent_databases_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="remote file"):
        read_table("https://user:pw@example.com/data.csv")
    with pytest.raises(DataError, match="no such SQLite database file"):
        read_table(tmp_path / "absent.db")  # must not be created by connecting
    assert not (tmp_path / "absent.db").exists()


# ---- provenance and masking ----------------------------------------------------------------


def test_sql_provenance_masks_the_password(monkeypatch):
    """SQL itself is flows/sql.py's business: a stand-in read_sql checks only dispatch and masking."""
    calls = []
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    def fake_read_sql(url, *, table=None, query=None):
        calls.append((url, table, query))
        return frame

    stand_in = types.ModuleType("synthpipe.flows.sql")
    stand_in.read_sql = fake_read_sql
    monkeypatch.setitem(sys.modules, "synthpipe.flows.sql", stand_in)
    df, prov = read_table("postgresql://u:secret@h/db", table="people")

    assert calls == [("postgresql://u:secret@h/db", "people", None)]  # the driver gets the real URL
    assert df is frame
    assert prov.source == "postgresql://u:***@h/db" and prov.kind == "sql" and prov.rows == 2
    assert "secret" not in json.dumps(prov.to_dict()) and "secret" not in repr(prov)
    assert prov.content_hash == read_table("postgresql://u:other@h/db", table="people")[1].content_hash
    with pytest.raises(ConfigError, match="only to CSV"):
        read_table("postgresql://u:secret@h/db", table="people", delimiter=";")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        ("postgresql+psycopg2://u:s3cr%40t@h:5432/db?sslmode=require", "postgresql+psycopg2://u:***@h:5432/db?sslmode=require"),
        ("failed: mysql://root:p@ss@db:3306/x; retrying", "failed: mysql://root:***@db:3306/x; retrying"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("postgresql://u@h/db?password=hunter2&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("dsn host=h password=hunter2 user=u", "dsn host=h password=*** user=u"),
        ("no urls here", "no urls here"),
    ],
)
def test_mask_secrets(text, expected):
    assert mask_secrets(text) == expected


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Z", "C"), blacklist_characters="?#'\"<>`"), min_size=1))
def test_mask_secrets_hides_any_password(password):
    url = f"postgresql://user:{password}@host:5432/db"
    assert mask_secrets(f"connecting to {url} failed") == "connecting to postgresql://user:***@host:5432/db failed"


# ---- writing -------------------------------------------------------------------------------


def chunks_of(frame: pd.DataFrame, size: int):
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size].reset_index(drop=True)


def test_write_round_trip_keeps_dtypes_order_and_splits_files(tmp_path):
    frame = every_kind(60)
    out = tmp_path / "synthetic"
    result = write_parquet(out, chunks_of(frame, 7), rows_per_file=25)

    assert isinstance(result, WriteResult)
    assert result.path == out and result.rows == 60 and result.files == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "_synthpipe.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]
    assert result.bytes == sum(p.stat().st_size for p in out.iterdir())
    assert [pq.ParquetFile(p).metadata.num_rows for p in sorted(out.glob("part-*"))] == [25, 25, 10]
    # rows 0-24: chunks of 7,7,7 and the first 4 of the fourth chunk
    assert [rg.num_rows for rg in (pq.ParquetFile(out / "part-00000.parquet").metadata.row_group(i) for i in range(4))] == [7, 7, 7, 4]

    back = read_parquet_dataset(out)
    pd.testing.assert_frame_equal(back, frame)
    assert back["level"].cat.ordered and list(back["level"].cat.categories) == ["low", "mid", "high"]
    assert str(back["when"].dt.tz) == "Europe/Paris"
    assert back["huge"].tolist() == frame["huge"].tolist() and back["huger"].dtype == np.uint64
    pd.testing.assert_frame_equal(read_table(out)[0], frame)  # the output is a valid source


def test_write_casts_later_chunks_to_the_first_chunks_types(tmp_path):
    first = pd.DataFrame(
        {
            "n": pd.array([1, 2], dtype="Int64"),
            "s": ["a", "b"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
            "c": pd.Categorical(["x", "y"], categories=["x", "y", "z"]),
            "f": [0.5, 1.5],
        }
    )
    all_null = pd.DataFrame(
        {"n": [np.nan, np.nan], "s": [None, None], "t": [pd.NaT, pd.NaT], "c": [None, None], "f": [None, None]}
    )
    later = pd.DataFrame(
        {
            "f": [2, 3],  # other column order and int instead of float
            "c": ["z", "x"],  # plain strings for a categorical
            "t": pd.to_datetime(["2024-05-01 12:00"]).tz_localize("Asia/Tokyo").repeat(2),
            "s": ["c", None],
            "n": [5.0, 6.0],
        }
    )
    write_parquet(tmp_path / "o", [first, all_null, later])
    back = read_parquet_dataset(tmp_path / "o")
    assert list(back.columns) == ["n", "s", "t", "c", "f"]
    assert str(back["n"].dtype) == "Int64" and back["n"].tolist()[4:] == [5, 6] and back["n"].isna().sum() == 2
    assert back["s"].tolist() == ["a", "b", None, None, "c", None]
    assert back["t"][4] == pd.Timestamp("2024-05-01 03:00", tz="UTC") and str(back["t"].dt.tz) == "UTC"
    assert list(back["c"].cat.categories) == ["x", "y", "z"] and back["c"].tolist()[4:] == ["z", "x"]
    assert back["f"].dtype == np.float64


def test_all_null_first_chunk_takes_its_type_from_the_schema(tmp_path):
    first = pd.DataFrame({"a": [None, None], "b": [None, None]})
    later = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    schema = {"columns": [{"name": "a", "dtype": "float64"}]}
    write_parquet(tmp_path / "o", [first, later], schema=schema)
    back = read_parquet_dataset(tmp_path / "o")
    assert back["a"].tolist()[2:] == [1.5, 2.5] and back["b"].tolist() == [None, None, "x", "y"]


def test_metadata_round_trip(tmp_path):
    metadata = {
        "generator": "vae",
        "params": {"epochs": np.int64(5), "lr": np.float32(0.5)},
        "seed": 7,
        "version": "0.1.0",
        "source": {"content_hash": "ab" * 32, "path": Path("/data/x.csv")},
        "when": pd.Timestamp("2024-01-01", tz="UTC"),
    }
    schema = {"columns": [{"name": "int", "kind": "integer", "dtype": "int64"}]}
    out = tmp_path / "o"
    write_parquet(out, chunks_of(every_kind(20), 8), schema=schema, metadata=metadata, rows_per_file=10)

    expected = {
        "generator": "vae",
        "params": {"epochs": 5, "lr": 0.5},
        "seed": 7,
        "version": "0.1.0",
        "source": {"content_hash": "ab" * 32, "path": "/data/x.csv"},
        "when": "2024-01-01T00:00:00+00:00",
    }
    info = read_parquet_metadata(out)
    assert info == {"metadata": expected, "schema": schema, "rows": 20, "files": 2}
    for part in sorted(out.glob("part-*.parquet")):
        key_values = pq.read_schema(part).metadata
        assert json.loads(key_values[b"synthpipe"]) == expected
        assert json.loads(key_values[b"synthpipe.schema"]) == schema
        assert b"pandas" in key_values
    sidecar = json.loads((out / "_synthpipe.json").read_text())
    assert sidecar["metadata"] == expected and sidecar["schema"] == schema and sidecar["rows"] == 20
    assert sidecar["files"] == ["part-00000.parquet", "part-00001.parquet"]
    assert read_parquet_metadata(out / "part-00001.parquet")["metadata"] == expected


def test_zero_rows_still_write_a_readable_dataset(tmp_path):
    schema = {
        "columns": [
            {"name": "n", "dtype": "Int64"},
            {"name": "c", "dtype": "category", "categories": ["a", "b"], "ordered": True},
            {"name": "t", "dtype": "datetime64[ns, UTC]"},
        ]
    }
    result = write_parquet(tmp_path / "none", iter([]), schema=schema)
    assert result.rows == 0 and result.files == 1
    back = read_parquet_dataset(tmp_path / "none")
    assert list(back.columns) == ["n", "c", "t"] and len(back) == 0
    assert str(back["n"].dtype) == "Int64" and str(back["t"].dtype) == "datetime64[ns, UTC]"

    result = write_parquet(tmp_path / "empty_chunk", [every_kind().iloc[:0]])
    assert result.rows == 0 and list(read_parquet_dataset(tmp_path / "empty_chunk").columns) == list(every_kind())

    with pytest.raises(ValueError, match="no chunks and no schema"):
        write_parquet(tmp_path / "nothing", iter([]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty_chunk", "none"]


def test_chunks_are_streamed_not_collected(tmp_path):
    """The writer holds at most the current chunk: earlier ones are freed as it goes."""
    refs: list[weakref.ref] = []

    def produce():
        for i in range(4):
            if i >= 2:
                gc.collect()
                assert refs[i - 2]() is None, f"chunk {i - 2} is still alive while chunk {i} is produced"
            chunk = pd.DataFrame({"x": np.arange(1000) + 1000 * i, "s": ["v"] * 1000})
            refs.append(weakref.ref(chunk))
            yield chunk

    assert write_parquet(tmp_path / "o", produce(), rows_per_file=2500).rows == 4000


class Boom(RuntimeError):
    pass


def failing_chunks(frame: pd.DataFrame, fail_after: int):
    for i, chunk in enumerate(chunks_of(frame, 10)):
        if i == fail_after:
            raise Boom("generator failed mid-way")
        yield chunk


def test_failure_mid_way_leaves_previous_output_identical(tmp_path):
    out = tmp_path / "synthetic"
    write_parquet(out, chunks_of(every_kind(30), 10), metadata={"run": 1}, rows_per_file=10)
    before = tree_hashes(out)

    with pytest.raises(Boom):
        write_parquet(out, failing_chunks(every_kind(60), fail_after=3), metadata={"run": 2}, rows_per_file=10)
    assert tree_hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]  # no temp or backup dirs left

    bad = pd.DataFrame({"unexpected": [1]})
    with pytest.raises(DataError, match="chunk 1 does not match"):
        write_parquet(out, [every_kind(), bad], metadata={"run": 3})
    with pytest.raises(DataError, match="outside the first chunk's categories"):
        write_parquet(out, [every_kind(), every_kind().assign(level=["new"] * 6)])
    assert tree_hashes(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]

    with pytest.raises(Boom):
        write_parquet(tmp_path / "fresh", failing_chunks(every_kind(60), fail_after=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_successful_write_replaces_previous_output_whole(tmp_path):
    out = tmp_path / "synthetic"
    write_parquet(out, chunks_of(every_kind(30), 10), rows_per_file=10)
    (out / "stray.txt").write_text("from an older version")
    result = write_parquet(out, chunks_of(every_kind(6), 6), metadata={"run": 2})
    assert result.files == 1
    assert sorted(p.name for p in out.iterdir()) == ["_synthpipe.json", "part-00000.parquet"]
    assert read_parquet_metadata(out)["metadata"] == {"run": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_atomic_directory_contract(tmp_path):
    final = tmp_path / "nested" / "report"
    with atomic_directory(final) as stage:
        assert stage.parent == final.parent and stage.name.startswith(".report.tmp-") and not final.exists()
        (stage / "a.txt").write_text("one")
    assert (final / "a.txt").read_text() == "one"
    assert stage.exists() is False
    mode = final.stat().st_mode & 0o777
    assert mode == 0o777 & ~_umask(), "the directory gets normal permissions, not mkdtemp's 0700"

    with pytest.raises(KeyboardInterrupt), atomic_directory(final) as stage:
        (stage / "a.txt").write_text("two")
        raise KeyboardInterrupt
    assert (final / "a.txt").read_text() == "one" and os.listdir(final.parent) == ["report"]

    with atomic_directory(final) as stage:
        (stage / "b.txt").write_text("three")
    assert sorted(os.listdir(final)) == ["b.txt"] and os.listdir(final.parent) == ["report"]

    target = _dir(tmp_path / "target")
    (target / "keep.txt").write_text("kept")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    with atomic_directory(link) as stage:
        (stage / "new.txt").write_text("new")
    assert not link.is_symlink() and os.listdir(link) == ["new.txt"]
    assert os.listdir(target) == ["keep.txt"]  # the old link's target is not deleted

    blocker = _write(tmp_path / "file", "x")
    with pytest.raises(ConfigError, match="not a directory"), atomic_directory(blocker):
        pass
    assert blocker.read_text() == "x"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.floats(allow_nan=True, allow_infinity=True),
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), st.text(max_size=5)),
        ),
        min_size=1,
        max_size=40,
    ),
    chunk=st.integers(1, 15),
    per_file=st.integers(1, 30),
)
def test_write_read_round_trip_property(tmp_path, data, chunk, per_file):
    frame = pd.DataFrame(
        {
            "i": np.array([d[0] for d in data], dtype=np.int64),
            "i_null": pd.array([d[1] for d in data], dtype="Int64"),
            "f": np.array([d[2] for d in data], dtype=np.float64),
            "b": pd.array([d[3] for d in data], dtype="boolean"),
            "s": pd.Series([d[4] for d in data], dtype=object),
        }
    )
    out = tmp_path / "prop"
    result = write_parquet(out, chunks_of(frame, chunk), rows_per_file=per_file)
    assert result.rows == len(frame) and result.files == -(-len(frame) // per_file)
    pd.testing.assert_frame_equal(read_parquet_dataset(out), frame)
    shutil.rmtree(out)
