"""Read a table or query from a SQL database (PostgreSQL, SQLite, anything SQLAlchemy 2 speaks).

Why this shape:
- Table names go through SQLAlchemy's identifier quoting (reflection with bound parameters, then
  `select(table)`), never through string formatting, so a name such as `students; DROP TABLE x` is
  looked up as one (non-existent) identifier.
- Rows are streamed in chunks (`yield_per`, a server-side cursor on PostgreSQL) so the driver never
  buffers the whole result twice; chunks are kept as plain Python values and each column's dtype is
  decided once over all rows, so a column that is NULL only in some chunks still comes back as
  `Int64` rather than a float in one chunk and an int in another.
- A server that cannot be reached is retried with exponential back-off, then fails loudly.
- Passwords never leave this module: every message, log line and exception shows the URL through
  `mask_url`, and driver messages are scrubbed of the password as well.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthpipe.flows.io.secrets import mask_url, reason
from synthpipe.flows.io.sources import check_sqlite_exists, is_sql_source, to_sqlalchemy_url
from synthpipe.generators.errors import ConfigError, DataError

__all__ = ["create_engine", "is_sql_source", "mask_url", "read_sql", "to_sqlalchemy_url"]

log = logging.getLogger(__name__)

# Driver messages that mean "retrying will not help" (bad credentials, missing database, bad URL).
_PERMANENT = re.compile(
    r"authentication failed|password|does not exist|no such|unknown database|access denied|"
    r"invalid dsn|role .* is not permitted",
    re.IGNORECASE,
)


def read_sql(url: str, *, allow_empty: bool = False, **options: Any) -> pd.DataFrame:
    """Read `table` (a quoted identifier, optionally in `schema_name`) or the result of `query`;
    `options` are SqlBatches' (table, query, chunksize, schema_name, retries, backoff_s,
    connect_timeout_s).

    `url` is a SQLAlchemy URL or a bare SQLite file path. Connection attempts that fail for a
    transient reason are retried `retries` times, sleeping `backoff_s * 2**attempt` between them.
    The read runs in a read-only transaction (see `SqlBatches`), so a query that writes fails
    and the source is unchanged. Types are kept: integer columns stay int64 (Int64 with NULLs),
    booleans stay bool (boolean with NULLs), timestamps become datetime64 (UTC for `timestamptz`),
    NUMERIC/DECIMAL become float64. Raises ConfigError for a bad call (both or neither of
    table/query, unknown dialect) and DataError for everything the database says (unreachable,
    unknown table, failing query, a query that writes, no rows).
    """
    source = SqlBatches(url, **options)
    chunks = list(source.row_chunks())
    assert source.columns is not None
    frame = _assemble(source.columns, chunks, source.type_hints)
    if not len(frame) and not allow_empty:
        raise DataError(f"{source.what} on {source.shown} returned no rows; there is nothing to learn from")
    log.info("read %d rows x %d columns from %s (%s)", len(frame), frame.shape[1], source.shown, source.what)
    return frame


class SqlBatches:
    """A table or query read in chunks, in a read-only transaction, as Arrow record batches.

    Read-only, so that `--query "DELETE FROM t"` or a writing CTE cannot change the source:
    PostgreSQL connections start with `default_transaction_read_only=on` and the transaction
    says `SET TRANSACTION READ ONLY`; SQLite files are opened with a `mode=ro` URI and
    `PRAGMA query_only`; MySQL/MariaDB get `SET SESSION TRANSACTION READ ONLY`. A password may
    come from the URL, or, left out of it, from $PGPASSWORD or ~/.pgpass ($PGPASSFILE), which
    libpq reads itself; either way no message shows it.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str | None = None,
        query: str | None = None,
        chunksize: int = 50_000,
        schema_name: str | None = None,
        retries: int = 3,
        backoff_s: float = 1.0,
        connect_timeout_s: float = 10.0,
    ):
        if (table is None) == (query is None):
            raise ConfigError("give exactly one of table or query for a SQL source")
        if chunksize < 1:
            raise ConfigError(f"chunksize must be >= 1, got {chunksize}")
        self.sa_url = _parse_url(url)
        self.shown = mask_url(str(self.sa_url))
        self.label = self.shown
        self.secret = self.sa_url.password
        self.table, self.query, self.schema_name = table, query, schema_name
        self.chunksize, self.retries, self.backoff_s = chunksize, retries, backoff_s
        self.connect_timeout_s = connect_timeout_s
        self.what = (
            f"table {table!r}" + (f" (schema {schema_name!r})" if schema_name else "") if table is not None else "query"
        )
        self.columns: list[str] | None = None
        self.type_hints: dict[str, Any] = {}

    def row_chunks(self) -> Iterator[list[tuple]]:
        """Column-wise chunks of driver values (a tuple per column), `chunksize` rows each."""
        import sqlalchemy as sa

        engine = _create_engine(self.sa_url, self.shown, self.connect_timeout_s, read_only=True)
        try:
            conn = _connect(engine, self.shown, self.secret, self.retries, self.backoff_s)
            with conn:
                try:
                    _begin_read_only(conn)
                    if self.table is not None:
                        source = _reflect_table(conn, self.table, self.schema_name, self.shown)
                        stmt: Any = sa.select(source)
                        self.type_hints = {c.name: c.type for c in source.columns}
                    else:
                        stmt = sa.text(self.query)
                    result = conn.execution_options(yield_per=self.chunksize).execute(stmt)
                    if not result.returns_rows:
                        raise DataError(f"{self.what} on {self.shown} returns no rows: give a SELECT")
                    self.columns = list(result.keys())
                    for rows in result.partitions():
                        yield list(zip(*rows))
                except sa.exc.DBAPIError as exc:
                    raise self._failure(exc) from None
        finally:
            engine.dispose()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows as Arrow record batches, each chunk typed as `read_sql` types a whole result."""
        for chunk in self.row_chunks():
            assert self.columns is not None
            yield _to_batch(_assemble(self.columns, [chunk], self.type_hints))

    def _failure(self, exc: BaseException) -> DataError:
        why = reason(exc, [self.secret])
        if _READ_ONLY.search(why):
            return DataError(
                f"{self.what} on {self.shown} tries to change the database ({why}); synthpipe reads "
                "sources in a read-only transaction and never modifies them: give a SELECT"
            )
        return DataError(f"{self.what} failed on {self.shown}: {why}")


# What PostgreSQL, SQLite and MySQL say when a read-only transaction is asked to write; and what
# PostgreSQL says when a writing statement is put in the server-side cursor that streams results.
_READ_ONLY = re.compile(
    r"read-only transaction|readonly database|read only|must not contain data-modifying|"
    r"CURSOR WITHOUT HOLD FOR (?:DELETE|UPDATE|INSERT|MERGE|DROP|CREATE|ALTER|TRUNCATE|GRANT|REVOKE|COPY)\b",
    re.IGNORECASE,
)


def _begin_read_only(conn: Any) -> None:
    backend = conn.engine.url.get_backend_name()
    if backend == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif backend == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    elif backend in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
    else:
        log.warning("%s: cannot make the session read-only for this dialect; reading anyway", conn.engine.url.drivername)


def _to_batch(frame: pd.DataFrame) -> pa.RecordBatch:
    """One chunk as Arrow; a column Arrow cannot type (huge ints, odd objects) goes as text."""
    try:
        return pa.RecordBatch.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        fixed = frame.copy()
        for name in frame.columns:
            try:
                pa.array(frame[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                fixed[name] = frame[name].map(lambda v: None if v is None else str(v))
        return pa.RecordBatch.from_pandas(fixed, preserve_index=False)


# ---- connection ---------------------------------------------------------------------------------


def _parse_url(url: str, must_exist: bool = True) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = to_sqlalchemy_url(url)
    try:
        parsed = make_url(text)
    except ArgumentError:
        raise ConfigError(
            f"{mask_url(text)!r} is not a valid database URL (dialect://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ConfigError(f"{mask_url(text)}: an in-memory SQLite database holds no table to read")
        if must_exist:
            check_sqlite_exists(database)
    return parsed


def create_engine(url: str, *, connect_timeout_s: float = 10.0) -> Any:
    """A SQLAlchemy engine for `url` (or a bare SQLite path) with no connection pool, a connect
    timeout, and whichever PostgreSQL driver is installed. Tests and tools use it to set up tables."""
    sa_url = _parse_url(url, must_exist=False)
    return _create_engine(sa_url, mask_url(str(sa_url)), connect_timeout_s)


def _with_installed_driver(sa_url: Any) -> Any:
    """SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3; fall back to psycopg2 when only
    psycopg2(-binary) is installed, so users need not spell the driver."""
    import importlib.util

    if sa_url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is not None:
            return sa_url.set(drivername="postgresql+psycopg2")
    return sa_url


def _create_engine(sa_url: Any, shown: str, connect_timeout_s: float, read_only: bool = False) -> Any:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    sa_url = _with_installed_driver(sa_url)
    connect_args: dict[str, Any] = {}
    backend, driver = sa_url.get_backend_name(), sa_url.get_driver_name()
    if (
        backend == "postgresql"
        and driver in ("psycopg2", "psycopg")
        and "connect_timeout" not in sa_url.query
    ):
        connect_args["connect_timeout"] = max(1, int(round(connect_timeout_s)))
    elif backend == "sqlite":
        connect_args["timeout"] = connect_timeout_s
    extra: dict[str, Any] = {}
    if read_only and backend == "postgresql" and driver in ("psycopg2", "psycopg"):
        connect_args["options"] = "-c default_transaction_read_only=on"
    elif read_only and backend == "sqlite":
        extra["creator"] = _read_only_sqlite(sa_url.database, connect_timeout_s)
    try:
        return sa.create_engine(sa_url, poolclass=NullPool, connect_args=connect_args, **extra)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise ConfigError(
            f"no SQLAlchemy driver for {shown} ({exc.__class__.__name__}: {exc}); "
            "install the driver package (psycopg2-binary for PostgreSQL)"
        ) from None


def _read_only_sqlite(database: str, timeout_s: float) -> Any:
    """A connection factory that opens the SQLite file read-only (`mode=ro` URI): no write, and
    no file is created where there was none."""
    import sqlite3
    from pathlib import Path
    from urllib.parse import quote

    uri = f"file:{quote(str(Path(database).resolve()))}?mode=ro"
    return lambda: sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)


def _connect(engine: Any, shown: str, secret: str | None, retries: int, backoff_s: float) -> Any:
    """Open a connection, retrying transient failures with exponential back-off."""
    import sqlalchemy as sa

    attempts = max(0, retries) + 1
    for attempt in range(attempts):
        try:
            return engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            why = reason(exc, [secret])
            permanent = bool(_PERMANENT.search(why))
            if permanent or attempt == attempts - 1:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise DataError(f"cannot reach database at {shown}{tries}: {why}") from None
            delay = backoff_s * 2**attempt
            log.warning(
                "cannot reach database at %s (%s); retry %d/%d in %.1fs",
                shown,
                why,
                attempt + 1,
                retries,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _reflect_table(conn: Any, table: str, schema_name: str | None, shown: str) -> Any:
    """The table's columns and types, looked up by name with bound parameters (no SQL built from it)."""
    import sqlalchemy as sa

    if not isinstance(table, str) or not table:
        raise ConfigError(f"table name must be a non-empty string, got {table!r}")
    try:
        return sa.Table(table, sa.MetaData(), autoload_with=conn, schema=schema_name)
    except sa.exc.NoSuchTableError:
        try:
            known = sorted(sa.inspect(conn).get_table_names(schema=schema_name))
        except sa.exc.SQLAlchemyError:
            known = []
        listing = f"; tables are {known[:30]}" if known else ""
        where = f" in schema {schema_name!r}" if schema_name else ""
        raise DataError(f"table {table!r} not found{where} in {shown}{listing}") from None
    except sa.exc.DBAPIError as exc:
        raise DataError(
            f"cannot read the definition of table {table!r} in {shown}: {reason(exc)}"
        ) from None


# ---- typing the result ----------------------------------------------------------------------------


def _assemble(columns: Sequence[str], chunks: list[list[tuple]], type_hints: dict[str, Any]) -> pd.DataFrame:
    """One DataFrame from column-wise chunks, each column typed once over all its values."""
    data = {}
    for i, name in enumerate(columns):
        parts = [np.array(chunk[i], dtype=object) for chunk in chunks if chunk]
        values = np.concatenate(parts) if parts else np.empty(0, dtype=object)
        data[name] = _typed(values, type_hints.get(name))
    if len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if list(columns).count(c) > 1})
        raise DataError(f"the result has duplicated column name(s) {duplicated}; alias them in the query")
    return pd.DataFrame(data, columns=list(columns))


def _typed(values: np.ndarray, sa_type: Any | None) -> pd.Series:
    """A Series with the narrowest faithful dtype for the driver's Python values."""
    series = pd.Series(values, dtype=object)
    has_null = bool(series.isna().any())
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind == "empty":
        return _empty_column(series, sa_type)
    if kind == "integer":
        try:
            return series.astype("Int64") if has_null else series.astype("int64")
        except (OverflowError, TypeError, ValueError):
            return series  # beyond int64: keep the exact Python ints
    if kind == "boolean":
        return series.astype("boolean") if has_null else series.astype(bool)
    if kind in ("floating", "mixed-integer-float", "decimal"):
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if kind in ("datetime", "datetime64", "date"):
        return _datetimes(series)
    if kind in ("timedelta", "timedelta64"):
        return pd.to_timedelta(series)
    if kind == "mixed" and all(_is_text_like(v) for v in _sample(series)):
        return series.map(lambda v: v if v is None or isinstance(v, str) else str(v))  # e.g. UUIDs
    return series


def _datetimes(series: pd.Series) -> pd.Series:
    first = series.dropna().iloc[0]
    aware = isinstance(first, dt.datetime) and first.tzinfo is not None
    # timestamptz arrives in the session's time zone with a fixed offset; UTC is the stable choice.
    try:
        return pd.to_datetime(series, utc=aware)
    except (ValueError, OverflowError):  # outside pandas' nanosecond range: keep the Python values
        return series


def _empty_column(series: pd.Series, sa_type: Any | None) -> pd.Series:
    """An all-NULL column: use the declared type when there is one."""
    import sqlalchemy as sa

    if sa_type is not None:
        if isinstance(sa_type, sa.Boolean):
            return series.astype("boolean")
        if isinstance(sa_type, sa.Integer):
            return series.astype("Int64")
        if isinstance(sa_type, sa.Float | sa.Numeric):
            return series.astype("float64")
        if isinstance(sa_type, sa.DateTime):
            return pd.to_datetime(series, utc=bool(getattr(sa_type, "timezone", False)))
        if isinstance(sa_type, sa.Date):
            return pd.to_datetime(series)
    return series


def _sample(series: pd.Series, n: int = 100) -> Iterable[Any]:
    return series.dropna().iloc[:n]


def _is_text_like(value: Any) -> bool:
    import uuid

    return isinstance(value, str | uuid.UUID)
