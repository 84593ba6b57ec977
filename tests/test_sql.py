"""SQL sources: SQLite files and a real PostgreSQL server (the `pg_url` fixture)."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from services import free_port

from synthpipe.flows.sql import create_engine, is_sql_source, mask_url, read_sql, to_sqlalchemy_url
from synthpipe.generators.errors import ConfigError, DataError

INJECTION = "students; DROP TABLE students"


# ---- URLs and masking -------------------------------------------------------------------------------


def test_mask_url_hides_passwords_everywhere():
    assert (
        mask_url("postgresql://alice:hunter2@db.example:5432/prod")
        == "postgresql://alice:***@db.example:5432/prod"
    )
    assert "hunter2" not in mask_url("postgresql://alice@db/prod?password=hunter2&sslmode=require")
    assert "sslmode=require" in mask_url("postgresql://alice@db/prod?password=hunter2&sslmode=require")
    assert mask_url("postgres://bob:pw%40x@h/d") == "postgresql://bob:***@h/d"
    assert "topsecret" not in mask_url("weird://x:topsecret@[bad")
    assert mask_url("postgresql://alice@db/prod") == "postgresql://alice@db/prod"


def test_source_detection_and_sqlite_paths(tmp_path):
    assert is_sql_source("postgresql://u@h/d") and is_sql_source("postgresql+psycopg2://u@h/d")
    assert is_sql_source("data/app.sqlite3") and is_sql_source("x.db") and is_sql_source("sqlite:///x")
    assert not is_sql_source("data/table.csv") and not is_sql_source("s3://bucket/x.parquet")
    assert to_sqlalchemy_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(ConfigError, match="not a database URL"):
        to_sqlalchemy_url("table.csv")


# ---- SQLite -----------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path):
    """A SQLite file with typed columns; NULLs only in the last rows, so only late chunks hold them."""
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE students (id INTEGER, age INTEGER, score REAL, name TEXT, active BOOLEAN, "
        "enrolled DATETIME, born DATE)"
    )
    rows = [
        (
            i,
            18 + i % 7 if i < 45 else None,
            i / 4,
            f"s{i}",
            i % 3 == 0,
            f"2024-01-{1 + i % 28:02d} 10:00:00",
            f"2000-02-{1 + i % 28:02d}",
        )
        for i in range(50)
    ]
    con.executemany("INSERT INTO students VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE empty_t (a INTEGER, b TEXT)")
    con.commit()
    con.close()
    return path


def test_sqlite_table_streams_in_chunks_and_keeps_types(sqlite_db):
    df = read_sql(str(sqlite_db), table="students", chunksize=7)  # bare path -> SQLite
    assert len(df) == 50 and list(df.columns) == ["id", "age", "score", "name", "active", "enrolled", "born"]
    assert df["id"].dtype == "int64"
    assert df["age"].dtype == "Int64" and df["age"].isna().sum() == 5 and df["age"].iloc[0] == 18
    assert df["score"].dtype == "float64"
    assert df["active"].dtype == bool and df["active"].sum() == 17
    assert df["enrolled"].dtype == "datetime64[ns]" and df["enrolled"].iloc[1] == pd.Timestamp(
        "2024-01-02 10:00"
    )
    assert pd.api.types.is_datetime64_dtype(df["born"])
    assert df.equals(read_sql(f"sqlite:///{sqlite_db}", table="students", chunksize=50_000))


def test_sqlite_query(sqlite_db):
    df = read_sql(
        str(sqlite_db), query="SELECT id, name FROM students WHERE id < 10 ORDER BY id", chunksize=3
    )
    assert df["id"].tolist() == list(range(10)) and df["id"].dtype == "int64"
    assert df["name"].iloc[9] == "s9"


def test_sqlite_table_name_is_an_identifier_not_sql(sqlite_db):
    with pytest.raises(DataError, match=r"table 'students; DROP TABLE students' not found.*students"):
        read_sql(str(sqlite_db), table=INJECTION)
    con = sqlite3.connect(sqlite_db)
    assert con.execute("SELECT count(*) FROM students").fetchone()[0] == 50
    con.close()


def test_sqlite_errors(sqlite_db, tmp_path):
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(DataError, match="missing.sqlite does not exist"):
        read_sql(str(missing), table="t")
    assert not missing.exists()  # SQLite would have created it
    with pytest.raises(ConfigError, match="exactly one of table or query"):
        read_sql(str(sqlite_db), table="students", query="SELECT 1")
    with pytest.raises(ConfigError, match="exactly one of table or query"):
        read_sql(str(sqlite_db))
    with pytest.raises(DataError, match="query failed on sqlite:///.*no such table: nope"):
        read_sql(str(sqlite_db), query="SELECT * FROM nope")
    with pytest.raises(DataError, match="returned no rows"):
        read_sql(str(sqlite_db), table="empty_t")
    empty = read_sql(str(sqlite_db), table="empty_t", allow_empty=True)
    assert list(empty.columns) == ["a", "b"] and len(empty) == 0 and empty["a"].dtype == "Int64"


# ---- unreachable server -------------------------------------------------------------------------------


def test_unreachable_server_retries_then_fails_without_password(caplog):
    url = f"postgresql://alice:S3cr3tPw@127.0.0.1:{free_port()}/nowhere"
    with caplog.at_level(logging.WARNING, logger="synthpipe.flows.sql"):
        with pytest.raises(DataError) as info:
            read_sql(url, table="students", retries=2, backoff_s=0.01)
    message = str(info.value)
    assert message.startswith(
        f"cannot reach database at postgresql://alice:***@127.0.0.1:{url.split(':')[3]}"
    )
    assert "after 3 attempts" in message and "refused" in message.lower()
    assert "S3cr3tPw" not in message and "S3cr3tPw" not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2
    assert all("S3cr3tPw" not in r.getMessage() for r in caplog.records)


# ---- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def pg(pg_url):
    """An engine on the test server; every table a test makes is dropped afterwards."""
    engine = create_engine(pg_url)
    made: list[str] = []
    yield engine, made
    with engine.begin() as conn:
        for name in made:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name} CASCADE"))
        conn.execute(sa.text("DROP SCHEMA IF EXISTS sp_test_schema CASCADE"))
    engine.dispose()


def _make_table(pg, prefix: str, columns: str, select: str, time_zone: str | None = None) -> str:
    """A fresh table `prefix_<random>` (dropped after the test) filled by `INSERT ... <select>`,
    written in a session set to `time_zone` when one is given."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pg[1].append(name)
    session = [f"SET TIME ZONE '{time_zone}'"] if time_zone is not None else []
    _execute(pg, *session, f"CREATE TABLE {name} ({columns})", f"INSERT INTO {name} {select}")
    return name


def _execute(pg, *statements: str) -> None:
    """Run these SQL statements on the test server, in order, in one transaction."""
    engine, _ = pg
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


@pytest.mark.postgres
def test_postgres_types_survive(pg, pg_url):
    name = _make_table(
        pg,
        "types",
        "id bigint, n integer, price numeric(10,2), ratio double precision, "
        "ok boolean, maybe boolean, at timestamptz, local timestamp, day date, label text, code uuid",
        "SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g * 2 END, g * 1.25, g / 3.0, "
        "g % 2 = 0, CASE WHEN g > 90 THEN NULL ELSE g % 2 = 1 END, "
        "timestamptz '2024-03-01 12:00:00+00' + g * interval '1 hour', "
        "timestamp '2024-03-01 00:00:00' + g * interval '1 day', date '2024-01-01' + g, "
        "'row ' || g, md5(g::text)::uuid FROM generate_series(1, 100) g",
        time_zone="Europe/Paris",
    )
    df = read_sql(pg_url, table=name, chunksize=13)
    assert len(df) == 100
    assert df["id"].dtype == "int64" and df["id"].tolist() == list(range(1, 101))
    assert df["n"].dtype == "Int64" and df["n"].isna().sum() == 10 and df["n"].iloc[0] == 2
    assert df["price"].dtype == "float64" and df["price"].iloc[3] == 5.0
    assert df["ratio"].dtype == "float64"
    assert df["ok"].dtype == bool and df["maybe"].dtype == "boolean" and df["maybe"].isna().sum() == 10
    assert str(df["at"].dtype) == "datetime64[ns, UTC]"
    assert df["at"].iloc[0] == pd.Timestamp("2024-03-01 13:00", tz="UTC")
    assert str(df["local"].dtype) == "datetime64[ns]" and df["local"].iloc[0] == pd.Timestamp("2024-03-02")
    assert pd.api.types.is_datetime64_dtype(df["day"])
    assert df["label"].iloc[4] == "row 5"
    assert isinstance(df["code"].iloc[0], str) and len(df["code"].iloc[0]) == 36


@pytest.mark.postgres
def test_postgres_query_streams_in_chunks(pg, pg_url):
    name = _make_table(pg, "big", "k integer, c text", "SELECT g, (g % 7)::text FROM generate_series(1, 1000) g")
    df = read_sql(pg_url, query=f"SELECT k, c, k * 0.5 AS half FROM {name} ORDER BY k", chunksize=64)
    assert df["k"].tolist() == list(range(1, 1001)) and df["k"].dtype == "int64"
    assert df["half"].dtype == "float64" and df["half"].iloc[-1] == 500.0
    assert (
        read_sql(pg_url, table=name, chunksize=1000).sort_values("k", ignore_index=True)["c"].equals(df["c"])
    )


@pytest.mark.postgres
def test_postgres_table_name_is_an_identifier_not_sql(pg, pg_url):
    _, made = pg
    made.append("students")
    odd = 'odd "name"; DROP TABLE students'
    made.append('"odd ""name""; DROP TABLE students"')
    _execute(
        pg,
        "CREATE TABLE IF NOT EXISTS students (id integer, name text)",
        "DELETE FROM students",
        "INSERT INTO students VALUES (1, 'ada'), (2, 'bo')",
        'CREATE TABLE "odd ""name""; DROP TABLE students" (v integer)',
        'INSERT INTO "odd ""name""; DROP TABLE students" VALUES (7)',
    )
    with pytest.raises(
        DataError,
        match="table 'students; DROP TABLE students' not found in postgresql://synthpipe:\\*\\*\\*@",
    ):
        read_sql(pg_url, table=INJECTION)
    assert read_sql(pg_url, table="students")["name"].tolist() == ["ada", "bo"]
    # A real table whose name contains quotes and SQL is read as that one table, nothing else happens.
    assert read_sql(pg_url, table=odd)["v"].tolist() == [7]
    assert read_sql(pg_url, table="students")["id"].tolist() == [1, 2]


@pytest.mark.postgres
def test_postgres_schema_name(pg, pg_url):
    _execute(
        pg,
        "CREATE SCHEMA IF NOT EXISTS sp_test_schema",
        "CREATE TABLE sp_test_schema.items (v numeric)",
        "INSERT INTO sp_test_schema.items VALUES (1.5), (NULL)",
    )
    df = read_sql(pg_url, table="items", schema_name="sp_test_schema")
    assert df["v"].dtype == "float64" and df["v"].iloc[0] == 1.5 and pd.isna(df["v"].iloc[1])
    with pytest.raises(DataError, match="table 'items' not found in"):
        read_sql(pg_url, table="items")


@pytest.mark.postgres
def test_postgres_wrong_password_fails_fast_and_masked(caplog, pg_url):
    url = sa.engine.make_url(pg_url).set(password="Wr0ngPassw0rd").render_as_string(hide_password=False)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(DataError, match="password authentication failed") as info:
            read_sql(url, table="students", retries=3, backoff_s=5)  # permanent: no retries, no sleeping
    assert "Wr0ngPassw0rd" not in str(info.value) and ":***@" in str(info.value)
    assert not any("retry" in r.getMessage() for r in caplog.records)
    assert all("Wr0ngPassw0rd" not in r.getMessage() for r in caplog.records)


def test_decimal_and_bigint_values_are_typed():
    from synthpipe.flows.sql import _assemble

    # Two chunks, stored column-wise as read_sql keeps them: (d, big, nothing).
    chunks = [[(Decimal("1.10"),), (2**62,), (None,)], [(None,), (5,), (None,)]]
    df = _assemble(["d", "big", "nothing"], chunks, {})
    assert df["d"].dtype == "float64" and df["d"].iloc[0] == 1.1 and pd.isna(df["d"].iloc[1])
    assert df["big"].dtype == "int64" and df["big"].iloc[0] == 2**62
    assert df["nothing"].isna().all()


# ---- least privilege: reads cannot write (issue 14, point 7) -----------------------------------------

WRITES_SQLITE = [
    "DELETE FROM students",
    "DELETE FROM students RETURNING *",
    "UPDATE students SET age = 0 RETURNING id",
    "DROP TABLE students",
    "INSERT INTO students (id) VALUES (999) RETURNING id",
]


@pytest.mark.parametrize("query", WRITES_SQLITE)
def test_sqlite_queries_cannot_change_the_source(sqlite_db, query):
    from synthpipe.flows.io import read_table
    from synthpipe.flows.io.scan import scan_source

    before = sqlite_db.read_bytes()
    con = sqlite3.connect(sqlite_db)
    contents = con.execute("SELECT count(*), sum(age) FROM students").fetchone()
    con.close()
    for read in (
        lambda: read_sql(str(sqlite_db), query=query),
        lambda: read_table(sqlite_db, query=query),
        lambda: scan_source(f"sqlite:///{sqlite_db}", query=query),
    ):
        with pytest.raises(DataError, match="tries to change the database .*read-only transaction and never modifies them"):
            read()
    con = sqlite3.connect(sqlite_db)
    assert con.execute("SELECT count(*), sum(age) FROM students").fetchone() == contents == (50, 939)
    con.close()
    assert sqlite_db.read_bytes() == before


WRITES_POSTGRES = [
    "DELETE FROM {t}",
    "DELETE FROM {t} RETURNING *",
    "WITH d AS (DELETE FROM {t} RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE {t} SET v = 0 RETURNING *) SELECT count(*) FROM u",
    "SELECT * FROM {t}; DROP TABLE {t}",
    "CREATE TABLE {t}_copy AS SELECT * FROM {t}",
    "SELECT nextval('{t}_seq')",  # a SELECT that writes: only the read-only transaction stops it
]


@pytest.mark.postgres
@pytest.mark.parametrize("query", WRITES_POSTGRES)
def test_postgres_queries_cannot_change_the_source(pg, pg_url, query):
    from synthpipe.flows.io.scan import scan_source

    engine, made = pg
    name = _make_table(pg, "guarded", "id int, v int", "SELECT g, g FROM generate_series(1, 20) g")
    made.append(f"{name}_copy")
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SEQUENCE {name}_seq OWNED BY {name}.id"))
    for read in (
        lambda: read_sql(pg_url, query=query.format(t=name)),
        lambda: scan_source(pg_url, query=query.format(t=name)),
    ):
        with pytest.raises(DataError, match="read-only transaction") as info:
            read()
        assert "tries to change the database" in str(info.value) and ":***@" in str(info.value)
        assert "synthpipe@" not in str(info.value).replace(":***@", "")  # no password shown
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*), sum(v) FROM {name}")).one() == (20, 210)
        assert not sa.inspect(conn).has_table(f"{name}_copy")
        assert conn.execute(sa.text(f"SELECT last_value, is_called FROM {name}_seq")).one() == (1, False)


@pytest.mark.postgres
def test_postgres_reads_still_work_read_only(pg, pg_url):
    from synthpipe.flows.io.scan import scan_source

    name = _make_table(pg, "plain", "id int, label text", "SELECT g, 'l' || (g % 3) FROM generate_series(1, 500) g")
    result = scan_source(pg_url, table=name, max_train_rows=100, holdout_fraction=0.2, batch_rows=64)
    assert result.profile.rows == 500 and len(result.train) == 100 and len(result.holdout) == 25
    assert result.profile["label"].distinct == 3 and result.profile["id"].max == 500
    assert result.provenance.source == mask_url(pg_url) and "synthpipe:synthpipe@" not in result.provenance.source
    again = scan_source(pg_url, table=name, max_train_rows=100, holdout_fraction=0.2, batch_rows=500)
    assert again.profile.content_hash == result.profile.content_hash  # chunking does not change it
    assert again.train.equals(result.train)


def _without_password(url: str) -> str:
    parsed = sa.engine.make_url(url)
    return f"postgresql://{parsed.username}@{parsed.host}:{parsed.port or 5432}/{parsed.database}"


@pytest.mark.postgres
def test_postgres_password_from_the_environment(pg, pg_url, monkeypatch, tmp_path, caplog):
    name = _make_table(pg, "envpw", "a int", "VALUES (1), (2)")
    bare = _without_password(pg_url)
    password = sa.engine.make_url(pg_url).password
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))  # only the variable under test
    monkeypatch.setenv("PGPASSWORD", password)
    assert read_sql(bare, table=name)["a"].tolist() == [1, 2]
    monkeypatch.setenv("PGPASSWORD", "Wr0ngFromEnv")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(DataError, match="password authentication failed") as info:
            read_sql(bare, table=name, retries=0)
    assert "Wr0ngFromEnv" not in str(info.value) and all("Wr0ngFromEnv" not in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["PGPASSFILE", "HOME"])
def test_postgres_password_from_pgpass(pg, pg_url, monkeypatch, tmp_path, where):
    name = _make_table(pg, "pgpass", "a int", "VALUES (7)")
    url = sa.engine.make_url(pg_url)
    pgpass = tmp_path / ".pgpass"
    pgpass.write_text(f"{url.host}:{url.port or 5432}:{url.database}:{url.username}:{url.password}\n")
    pgpass.chmod(0o600)  # libpq ignores a .pgpass others can read
    monkeypatch.delenv("PGPASSWORD", raising=False)
    if where == "PGPASSFILE":
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
    else:
        monkeypatch.delenv("PGPASSFILE", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
    assert read_sql(_without_password(pg_url), table=name)["a"].tolist() == [7]
