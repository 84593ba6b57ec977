"""Where a table comes from: dispatch of a source (file, directory, glob or SQL URL) to its
reader, discovery of the data files behind a path, and the provenance record of what was read.

Every problem with the input is a `DataError` that names the file and says what is wrong.
"""

from __future__ import annotations

import codecs
import glob as globlib
import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthpipe.flows.io.atomic import now
from synthpipe.flows.io.csv import CSV_SUFFIXES, read_csv_files, read_head
from synthpipe.flows.io.frames import arrow_to_pandas, frame_hash
from synthpipe.flows.io.parquet import PARQUET_SUFFIXES, read_parquet_files
from synthpipe.flows.io.secrets import mask_secrets, mask_url
from synthpipe.generators.errors import ConfigError, DataError

SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
_JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".geojson"})
_SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})
FORMATS = ("csv", "parquet", "sql")
_GLOB_CHARS = re.compile(r"[*?\[]")
_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class Provenance:
    """Where a table came from, so that a report or a Parquet file can say exactly what was read.

    `source` never holds a password. `content_hash` is the sha256 of the file's bytes (for a
    directory or glob: of the sorted files' names and hashes; for SQL: of the rows read), so two
    runs can tell whether they saw the same data. `options` records what was sniffed or chosen
    (format, delimiter, encoding, number of files, table/query).
    """

    source: str
    kind: str  # "csv" | "parquet" | "sql"
    rows: int
    columns: int
    content_hash: str
    read_at: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """A source resolved and checked: what it is, where its files are, how to read them."""

    kind: str  # "csv" | "parquet" | "sql"
    text: str  # the path as given (user-expanded) or the URL (not masked: the driver needs it)
    label: str  # what messages and provenance call it (secrets masked, paths absolute)
    files: list[Path]
    base: Path | None  # None: one file
    delimiter: str | None = None
    encoding: str | None = None
    table: str | None = None
    query: str | None = None


def resolve_source(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    table: str | None = None,
    query: str | None = None,
) -> Plan:
    """Check the arguments against the source and find its files (nothing is read yet but the
    first bytes that tell CSV from Parquet). ConfigError for contradictory arguments."""
    fmt = _check_format(format)
    text = os.fspath(source)
    _refuse_remote(text)
    if fmt == "sql" or (fmt is None and is_sql_source(text)):
        if delimiter is not None or encoding is not None:
            raise ConfigError(f"delimiter/encoding apply only to CSV files, not to SQL source {mask_url(text)}")
        if "://" not in text:
            check_sqlite_exists(os.path.expanduser(text))
        return Plan("sql", text, mask_url(to_sqlalchemy_url(text)), [], None, table=table, query=query)
    text = os.path.expanduser(text)
    if table is not None or query is not None:
        raise ConfigError(
            f"table/query apply only to SQL sources, but {text!r} is a file path; "
            "pass a SQLAlchemy URL such as sqlite:///path.db or postgresql://user@host/db"
        )
    if fmt == "parquet" and (delimiter is not None or encoding is not None):
        raise ConfigError(f"delimiter/encoding apply only to CSV files, not to Parquet source {text!r}")
    delimiter = _check_delimiter(delimiter)
    encoding = _check_encoding(encoding)
    files, base = resolve_files(text)
    kind = classify_files(files, fmt, text)
    return Plan(kind, text, os.path.abspath(text), files, base, delimiter, encoding)


def files_hash(plan: Plan, hashes: list[str] | None = None) -> str:
    """sha256 of the file's bytes; for a directory or glob, of the sorted names and hashes."""
    hashes = hashes if hashes is not None else [_sha256_file(f) for f in plan.files]
    return hashes[0] if plan.base is None else _combine_hashes(plan.files, hashes, plan.base)


def read_table(source: str | os.PathLike[str], **where: str | None) -> tuple[pd.DataFrame, Provenance]:
    """Read a CSV file, a Parquet file, a directory of Parquet (or CSV) files, a glob, or SQL,
    whole (`synthpipe.flows.io.scan.scan_source` reads a source of any size in bounded memory).

    `where` are `resolve_source`'s options (format, delimiter, encoding, table, query), as in
    scan_source. `format` ("csv", "parquet" or "sql") overrides detection by suffix and content. For CSV the
    delimiter and encoding are sniffed unless given. A SQLAlchemy URL (anything with ``://``) or
    a ``.db/.sqlite/.sqlite3`` file is read with `synthpipe.flows.sql.read_sql` using `table` or
    `query`. The source is only ever read. Raises DataError (naming the file) for input that
    cannot be used and ConfigError for contradictory arguments.
    """
    plan = resolve_source(source, **where)
    if plan.kind == "sql":
        return _read_sql_source(plan.text, table=plan.table, query=plan.query)
    text = plan.text
    if plan.kind == "csv":
        arrow, options, hashes = read_csv_files(plan.files, plan.delimiter, plan.encoding, text)
    else:
        arrow = read_parquet_files(plan.files, plan.base, text)
        hashes = None
        options = {}
    df = arrow_to_pandas(arrow, text)
    if len(df) == 0:
        raise DataError(f"{text} has columns but no rows")
    provenance = Provenance(
        source=plan.label,
        kind=plan.kind,
        rows=len(df),
        columns=df.shape[1],
        content_hash=files_hash(plan, hashes),
        read_at=now(),
        options={"format": plan.kind, **options, "files": len(plan.files)},
    )
    return df, provenance


def _check_format(format: str | None) -> str | None:
    if format is None:
        return None
    fmt = format.lower().lstrip(".")
    if fmt == "parq" or fmt == "pq":
        fmt = "parquet"
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {list(FORMATS)} or leave it out to detect it")
    return fmt


def _check_delimiter(delimiter: str | None) -> str | None:
    if delimiter is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(delimiter.lower(), delimiter)
    if len(value) != 1 or value in "\r\n\"":
        raise ConfigError(f"delimiter must be a single character other than a quote or newline, got {delimiter!r}")
    return value


def _check_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}; use a Python codec name such as 'utf-8' or 'latin-1'") from None
    return encoding



_REMOTE_SCHEMES = frozenset({"http", "https", "ftp", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "hdfs", "file"})


def is_sql_source(source: str | os.PathLike[str]) -> bool:
    """True for a database URL (`dialect[+driver]://...`) or a bare `.db/.sqlite/.sqlite3` path.

    A remote file URL (https://, s3://, ...) is not a database: it is refused by `read_table`.
    """
    text = os.fspath(source)
    if "://" in text:
        return text.split("://", 1)[0].lower() not in _REMOTE_SCHEMES
    return Path(text).suffix.lower() in SQLITE_SUFFIXES


def to_sqlalchemy_url(source: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL for `source`: URLs pass through, a bare `.db/.sqlite/.sqlite3` path becomes
    `sqlite:///<absolute path>`, and the common `postgres://` spelling becomes `postgresql://`."""
    text = os.fspath(source)
    if "://" not in text:
        if Path(text).suffix.lower() in SQLITE_SUFFIXES:
            return f"sqlite:///{Path(text).expanduser().resolve()}"
        raise ConfigError(
            f"{text!r} is not a database URL; use dialect://user@host/db (e.g. postgresql://...) "
            f"or a SQLite file ending in {', '.join(sorted(SQLITE_SUFFIXES))}"
        )
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    return text


def check_sqlite_exists(database: str | None) -> None:
    """SQLite creates a missing database file on connect; refuse instead, the source is read-only."""
    if database and database != ":memory:" and not database.startswith("file:") and not Path(database).is_file():
        raise DataError(f"no such SQLite database file: {database} does not exist")


def _refuse_remote(text: str) -> None:
    if "://" in text and not is_sql_source(text):
        raise ConfigError(
            f"{mask_secrets(text)} is a remote file URL; synthpipe reads local files and SQL URLs: "
            "download the file first"
        )


def _read_sql_source(text: str, *, table: str | None, query: str | None) -> tuple[pd.DataFrame, Provenance]:
    url = to_sqlalchemy_url(text)
    from synthpipe.flows.sql import read_sql  # a separate module; only SQL sources need it

    df = read_sql(url if "://" in text else text, table=table, query=query)
    masked = mask_url(url)
    what = f"table {table!r}" if table else ("query" if query else "source")
    if df.columns.duplicated().any():
        dupes = sorted(set(map(str, df.columns[df.columns.duplicated()])))
        raise DataError(f"{what} of {masked} has duplicate column names: {dupes}")
    if len(df) == 0:
        raise DataError(f"{what} of {masked} returned no rows")
    provenance = Provenance(
        source=masked,
        kind="sql",
        rows=len(df),
        columns=df.shape[1],
        content_hash=frame_hash(df),
        read_at=now(),
        options={"format": "sql", "table": table, "query": query},
    )
    return df, provenance


# ---- locating files ------------------------------------------------------------------------

def _hidden(relative: Path) -> bool:
    """Files Spark, Hive and pyarrow treat as not data: names starting with '.' or '_'."""
    return any(part.startswith((".", "_")) for part in relative.parts)


def resolve_files(text: str) -> tuple[list[Path], Path | None]:
    """The data files behind a path, directory or glob, and the base directory (None: one file)."""
    path = Path(text)
    if path.is_file():
        return [path], None
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f.relative_to(path)))
        if not files:
            raise DataError(f"directory {text} holds no data files")
        return files, path
    if _GLOB_CHARS.search(text):
        matches = sorted(Path(m) for m in globlib.glob(text, recursive=True))
        files = [m for m in matches if m.is_file() and not m.name.startswith((".", "_"))]
        if not files:
            raise DataError(f"glob {text!r} matches no files")
        base = Path(os.path.commonpath([str(f.parent.absolute()) for f in files]))
        return files, base
    if path.exists():
        raise DataError(f"{text} is neither a regular file nor a directory")
    raise DataError(f"{text}: no such file or directory")




def classify_files(files: list[Path], fmt: str | None, label: str) -> str:
    """Decide "csv" or "parquet" for a set of files: content (Parquet magic) beats suffix."""
    kinds: dict[str, list[Path]] = {}
    for f in files:
        suffix = f.suffix.lower()
        if fmt is not None:
            kind = fmt
        elif suffix in _JSON_SUFFIXES:
            raise DataError(f"{f} is JSON, not a table: synthpipe reads CSV, Parquet or a SQL table")
        elif suffix in _SPREADSHEET_SUFFIXES:
            raise DataError(f"{f} is a spreadsheet workbook, not a table: export the sheet to CSV")
        elif suffix in PARQUET_SUFFIXES or read_head(f, 4) == b"PAR1":
            kind = "parquet"
        elif suffix in CSV_SUFFIXES or len(files) == 1:
            kind = "csv"  # the CSV reader rejects binary and non-tabular text with a precise message
        else:
            kind = "other"
        kinds.setdefault(kind, []).append(f)
    if "other" in kinds:
        names = ", ".join(str(f) for f in kinds["other"][:5])
        raise DataError(f"{label} holds files that are neither CSV nor Parquet: {names}")
    if len(kinds) > 1:
        raise DataError(
            f"{label} mixes CSV files ({kinds['csv'][0]}) and Parquet files ({kinds['parquet'][0]}); "
            "point at one kind, for example with a glob such as dir/*.parquet"
        )
    return next(iter(kinds))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_BLOCK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _combine_hashes(files: list[Path], hashes: list[str], base: Path | None) -> str:
    """One hash for many files: sorted relative names with each file's sha256."""
    digest = hashlib.sha256()
    entries = sorted(
        (os.path.relpath(f.absolute(), base.absolute()) if base is not None else f.name, h)
        for f, h in zip(files, hashes)
    )
    for name, h in entries:
        digest.update(f"{Path(name).as_posix()}\0{h}\n".encode())
    return digest.hexdigest()
