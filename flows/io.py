"""Reading source tables and writing synthetic ones.

Ingest goes through pyarrow (its CSV reader is multi-threaded and infers int64, bool and
timestamps itself; Parquet keeps its own types) and then through one Arrow -> pandas conversion
that fixes what pandas would otherwise lose: integers with nulls become "Int64" rather than
float64 (which cannot hold every int64), booleans with nulls become "boolean" rather than object.
Python's `csv` module is used only for what pyarrow cannot do: sniffing the delimiter and naming
the line of a ragged row.

Output is a Parquet dataset directory written chunk by chunk, so memory stays flat however many
rows are emitted, and swapped into place only when complete (`atomic_directory`), so a crash or a
failing generator never leaves partial output or damages the previous run's files.

Every problem with the input is a `DataError` that names the file and says what is wrong.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import glob as globlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from synthpipe.generators.errors import ConfigError, DataError

PARQUET_SUFFIXES = frozenset({".parquet", ".parq", ".pq"})
CSV_SUFFIXES = frozenset({".csv", ".tsv", ".tab", ".txt", ".psv", ".dat"})
SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
_JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".geojson"})
_SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})
FORMATS = ("csv", "parquet", "sql")
# Candidate delimiters in order of preference when two explain the sample equally well.
DELIMITERS = (",", ";", "\t", "|")
# pandas' default null markers; pyarrow's list lacks the last two.
NULL_VALUES = [*pacsv.ConvertOptions().null_values, "None", "<NA>"]
METADATA_KEY = b"synthpipe"
SCHEMA_KEY = b"synthpipe.schema"
SIDECAR = "_synthpipe.json"

_HEAD_BYTES = 64 * 1024  # enough to sniff the delimiter and recognise binary files
_BLOCK_BYTES = 1 << 20
_GLOB_CHARS = re.compile(r"[*?\[]")
_C1_BYTES = re.compile(rb"[\x80-\x9f]")  # control characters in Latin-1, letters/quotes in cp1252
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one: export it to CSV)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Office document (.xls): export it to CSV"),
    (b"\x1f\x8b", "gzip-compressed data: decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data: decompress it first"),
    (b"SQLite format 3\x00", "a SQLite database: give it a .db/.sqlite suffix or pass sqlite:///path"),
    (b"PAR1", "a Parquet file: pass format='parquet'"),
    (b"ARROW1", "an Arrow IPC file: convert it to Parquet"),
)
_NULLABLE_INT = {
    pa.int8(): "Int8", pa.int16(): "Int16", pa.int32(): "Int32", pa.int64(): "Int64",
    pa.uint8(): "UInt8", pa.uint16(): "UInt16", pa.uint32(): "UInt32", pa.uint64(): "UInt64",
}


# --------------------------------------------------------------------------------------------
# Provenance and secret masking
# --------------------------------------------------------------------------------------------

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


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(\w*(?:password|passwd|pwd|secret|token|api_?key|access_?key))(\s*=\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s&;,'\"]+)"
)


def mask_secrets(text: str) -> str:
    """Replace passwords in every URL of `text` (and `password=...`-style settings) with ``***``.

    Used on anything that reaches a log, a report or Parquet metadata. The user-info of a URL is
    taken to end at the last ``@`` before the query string, so an unescaped ``@`` or ``/`` in a
    password is masked too (over-masking a rare odd URL is better than leaking a secret).
    """

    def one_url(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme, rest = url.split("://", 1)
        cut = len(rest)
        for stop in ("?", "#"):
            if (i := rest.find(stop)) >= 0:
                cut = min(cut, i)
        at = rest.rfind("@", 0, cut)
        if at > 0 and (colon := rest.find(":", 0, at)) >= 0:
            rest = rest[: colon + 1] + "***" + rest[at:]
        return f"{scheme}://{rest}"

    masked = _URL.sub(one_url, text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}***", masked)


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url  # sqlalchemy is slow to import; only URLs need it

    try:
        url = make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: the generic masker still applies
        pass
    return mask_secrets(url)


def _reason(exc: BaseException) -> str:
    """A library's error message on one line, short enough to sit inside ours."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------------

def read_table(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    table: str | None = None,
    query: str | None = None,
) -> tuple[pd.DataFrame, Provenance]:
    """Read a CSV file, a Parquet file, a directory of Parquet (or CSV) files, a glob, or SQL.

    `format` ("csv", "parquet" or "sql") overrides detection by suffix and content. For CSV the
    delimiter and encoding are sniffed unless given. A SQLAlchemy URL (anything with ``://``) or
    a ``.db/.sqlite/.sqlite3`` file is read with `synthpipe.flows.sql.read_sql` using `table` or
    `query`. The source is only ever read. Raises DataError (naming the file) for input that
    cannot be used and ConfigError for contradictory arguments.
    """
    fmt = _check_format(format)
    text = os.fspath(source)
    if fmt == "sql" or (fmt is None and _looks_like_sql(text)):
        if delimiter is not None or encoding is not None:
            raise ConfigError(f"delimiter/encoding apply only to CSV files, not to SQL source {_mask_url(text)}")
        return _read_sql_source(text, table=table, query=query)
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

    files, base = _resolve_files(text)
    kind = _classify_files(files, fmt, text)
    if kind == "csv":
        arrow, options, hashes = _read_csv_files(files, delimiter, encoding, text)
    else:
        arrow = _read_parquet_files(files, base, text)
        hashes = [_sha256_file(f) for f in files]
        options = {}
    df = _arrow_to_pandas(arrow, text)
    if len(df) == 0:
        raise DataError(f"{text} has columns but no rows")
    options = {"format": kind, **options, "files": len(files)}
    single = base is None
    provenance = Provenance(
        source=os.path.abspath(text),
        kind=kind,
        rows=len(df),
        columns=df.shape[1],
        content_hash=hashes[0] if single else _combine_hashes(files, hashes, base),
        read_at=_now(),
        options=options,
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


def _looks_like_sql(text: str) -> bool:
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme in _REMOTE_SCHEMES:
            raise ConfigError(
                f"{mask_secrets(text)} is a remote file URL; synthpipe reads local files and SQL URLs: "
                "download the file first"
            )
        return True
    return Path(text).suffix.lower() in SQLITE_SUFFIXES


def _read_sql_source(text: str, *, table: str | None, query: str | None) -> tuple[pd.DataFrame, Provenance]:
    if "://" in text:
        url = text
        _check_sqlite_file(url)
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise DataError(f"{text}: no such SQLite database file")
        url = f"sqlite:///{path.resolve()}"
    from synthpipe.flows.sql import read_sql  # a separate module; only SQL sources need it

    df = read_sql(url, table=table, query=query)
    masked = _mask_url(url)
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
        content_hash=_hash_frame(df),
        read_at=_now(),
        options={"format": "sql", "table": table, "query": query},
    )
    return df, provenance


def _check_sqlite_file(url: str) -> None:
    """SQLite creates a missing database file on connect; refuse instead, the source is read-only."""
    if not url.lower().startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:
        return
    if database and database != ":memory:" and not database.startswith("file:") and not Path(database).is_file():
        raise DataError(f"{mask_secrets(url)}: no such SQLite database file {database!r}")


def _hash_frame(df: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    try:
        rows = pd.util.hash_pandas_object(df, index=False)
    except TypeError:  # unhashable cells (lists, dicts from JSON columns): hash their text
        rows = pd.util.hash_pandas_object(df.astype(str), index=False)
    digest.update(rows.to_numpy().tobytes())
    return digest.hexdigest()


# ---- locating files ------------------------------------------------------------------------

def _hidden(relative: Path) -> bool:
    """Files Spark, Hive and pyarrow treat as not data: names starting with '.' or '_'."""
    return any(part.startswith((".", "_")) for part in relative.parts)


def _resolve_files(text: str) -> tuple[list[Path], Path | None]:
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


def _read_head(path: Path, n: int = _HEAD_BYTES) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def _classify_files(files: list[Path], fmt: str | None, label: str) -> str:
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
        elif suffix in PARQUET_SUFFIXES or _read_head(f, 4) == b"PAR1":
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


# ---- CSV -----------------------------------------------------------------------------------

@dataclass
class _Scan:
    """One pass over a text file: its hash and what the encoding sniffer needs."""

    sha256: str
    decode_error: str | None  # where `encoding` failed, e.g. "byte 0xE9 at line 3"
    has_c1: bool
    has_cp1252_undefined: bool


def _scan_file(path: Path, encoding: str) -> _Scan:
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)()
    error = None
    has_c1 = has_undefined = False
    lines = 1
    with open(path, "rb") as handle:
        while chunk := handle.read(_BLOCK_BYTES):
            digest.update(chunk)
            if error is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    start = max(exc.start, 0)
                    bad = chunk[start : start + 1] or b"?"
                    line = lines + chunk.count(b"\n", 0, start)
                    error = f"byte 0x{bad.hex().upper()} at line {line}"
            has_c1 = has_c1 or _C1_BYTES.search(chunk) is not None
            has_undefined = has_undefined or _CP1252_UNDEFINED.search(chunk) is not None
            lines += chunk.count(b"\n")
    if error is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            error = "an incomplete character at the end of the file"
    return _Scan(digest.hexdigest(), error, has_c1, has_undefined)


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    return None


def _is_wide(encoding: str) -> bool:
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def _reject_binary(head: bytes, name: str) -> None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"{name} is not a CSV table: it is {what}")
    if b"\x00" in head:
        raise DataError(
            f"{name} is not a text table: it holds binary data (NUL bytes); "
            "if it is UTF-16 text without a byte-order mark, pass encoding='utf-16-le'"
        )


def _choose_encoding(scan: _Scan, path: Path) -> str:
    """UTF-8 if every byte decodes; otherwise the single-byte Western encoding the bytes fit.

    Latin-1 decodes anything, so the bytes 0x80-0x9F decide: absent, Latin-1 and cp1252 agree;
    present, they are cp1252's quotes and euro sign, unless one of cp1252's five undefined bytes
    shows the file is in neither (then the user must say which encoding it is).
    """
    if scan.decode_error is None:
        return "utf-8"
    if _mostly_utf8(path):
        raise DataError(
            f"{path} is UTF-8 text with some bytes in another encoding ({scan.decode_error}); "
            "re-save it as UTF-8, or pass the encoding it should be read with"
        )
    if not scan.has_c1:
        return "latin-1"
    if not scan.has_cp1252_undefined:
        return "cp1252"
    raise DataError(
        f"{path}: cannot tell its text encoding: it is not UTF-8 ({scan.decode_error}) and not "
        "Latin-1/Windows-1252 text; pass the encoding, for example encoding='cp1251' or 'shift_jis'"
    )


_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _mostly_utf8(path: Path) -> bool:
    """Whether most non-ASCII bytes of a file that failed UTF-8 still form UTF-8 characters.

    Then it is a UTF-8 file with a few stray bytes (two exports concatenated, say), and reading
    it as Latin-1 would silently garble every accented letter: better to stop and say where.
    """
    utf8_bytes = high_bytes = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_BLOCK_BYTES):
            high_bytes += len(chunk) - len(chunk.translate(None, _HIGH_BYTES))
            utf8_bytes += sum(len(m) for m in _UTF8_MULTIBYTE.findall(chunk))
    return utf8_bytes * 2 > high_bytes


def _sample_text(head: bytes, encoding: str, complete: bool) -> str:
    if not complete:  # drop the last, probably cut, line
        head = head[: head.rfind(b"\n") + 1] or head
    return head.decode(encoding, errors="replace").lstrip("\ufeff")


def _reject_non_tabular_text(text: str, name: str) -> None:
    start = text.lstrip()
    first_line = start.split("\n", 1)[0].strip()
    if start.startswith("{") or (start.startswith("[") and _parses_as_json(first_line, start)):
        raise DataError(f"{name} is JSON, not a table: synthpipe reads CSV, Parquet or a SQL table")
    lowered = start[:100].lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml")):
        raise DataError(f"{name} is HTML/XML, not a table (a download that returned a web page?)")


def _parses_as_json(first_line: str, text: str) -> bool:
    if first_line in ("[", "[{"):
        return True
    for candidate in (first_line, text):
        with contextlib.suppress(ValueError):
            json.loads(candidate)
            return True
    return False


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the sample into the same number (>1) of fields on most rows."""
    best: tuple[tuple[float, int], str] | None = None
    for delimiter in DELIMITERS:
        counts = []
        try:
            for row in csv.reader(io.StringIO(text), delimiter=delimiter):
                if row:
                    counts.append(len(row))
                if len(counts) >= 200:
                    break
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts) / len(counts), counts[0])
        if best is None or score > best[0]:
            best = (score, delimiter)
    return best[1] if best else ","


def _read_csv_files(
    files: list[Path], delimiter: str | None, encoding: str | None, label: str
) -> tuple[pa.Table, dict[str, Any], list[str]]:
    tables, hashes, options = [], [], []
    for f in files:
        table, opts, digest = _read_csv_file(f, delimiter, encoding)
        tables.append(table)
        hashes.append(digest)
        options.append(opts)
    merged = {k: v if len({o[k] for o in options}) == 1 else [o[k] for o in options] for k, v in options[0].items()}
    return _concat_tables(tables, files, label), merged, hashes


def _read_csv_file(path: Path, delimiter: str | None, encoding: str | None) -> tuple[pa.Table, dict[str, Any], str]:
    name = str(path)
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes)")
    head = _read_head(path)
    bom = _bom_encoding(head)
    wide = (encoding is not None and _is_wide(encoding)) or bom in ("utf-16", "utf-32")
    if not wide:
        _reject_binary(head, name)
    scan = _scan_file(path, encoding or bom or "utf-8")
    if encoding is not None:
        if scan.decode_error:
            raise DataError(
                f"{name} cannot be read as {encoding}: {scan.decode_error}; "
                "pass the file's real encoding (for example encoding='latin-1') or leave it out to sniff it"
            )
    elif bom is not None:
        if scan.decode_error:
            raise DataError(f"{name} starts with a {bom} byte-order mark but is not valid {bom}: {scan.decode_error}")
        encoding = bom
    else:
        encoding = _choose_encoding(scan, path)
    text = _sample_text(head, encoding, complete=size <= len(head))
    if not text.strip():
        raise DataError(f"{name} holds no table: it has only blank lines")
    _reject_non_tabular_text(text, name)
    delimiter = delimiter or _sniff_delimiter(text)
    table = _arrow_read_csv(path, delimiter, encoding)
    table = _name_unnamed_columns(table)
    _check_unique_names(table.schema.names, name)
    if table.num_rows == 0:
        raise DataError(f"{name} has a header but no data rows")
    table = _exact_big_unsigned(table, path, delimiter, encoding)
    table, decimal_comma = _decimal_comma_numbers(table, delimiter)
    options = {"delimiter": delimiter, "encoding": encoding, "decimal": "," if decimal_comma else "."}
    return table, options, scan.sha256


def _csv_options(delimiter: str, encoding: str, newlines: bool, column_types: dict | None = None):
    arrow_encoding = "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
    return dict(
        read_options=pacsv.ReadOptions(encoding=arrow_encoding),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=newlines),
        convert_options=pacsv.ConvertOptions(
            null_values=NULL_VALUES, strings_can_be_null=True, column_types=column_types or {}
        ),
    )


def _arrow_read_csv(path: Path, delimiter: str, encoding: str) -> pa.Table:
    try:
        return pacsv.read_csv(path, **_csv_options(delimiter, encoding, newlines=False))
    except (pa.ArrowException, OSError, UnicodeDecodeError):
        pass  # quoted newlines confuse the fast block splitter: retry allowing them, then diagnose
    try:
        return pacsv.read_csv(path, **_csv_options(delimiter, encoding, newlines=True))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} cannot be read as {encoding}: {exc.reason}") from None
    except (pa.ArrowException, OSError) as exc:
        message = str(exc)
        if "Empty CSV file" in message:
            raise DataError(f"{path} holds no table: it has no header line") from None
        if "straddling object" in message:  # one line longer than the reader's block
            raise DataError(
                f"{path}: a line is longer than {pacsv.ReadOptions().block_size} bytes, the limit on one CSV line "
                "(the reader's block size); shorten that cell, or convert the table to Parquet, which has no such limit"
            ) from None
        ragged = _find_ragged_line(path, delimiter, encoding)
        if ragged is not None:
            line, got, expected = ragged
            raise DataError(
                f"{path}: line {line} has {got} fields but the header has {expected} "
                f"(delimiter {delimiter!r}); fix that row or quote values that contain the delimiter"
            ) from None
        raise DataError(f"{path} is not a readable CSV table: {_reason(exc)}") from None


def _find_ragged_line(path: Path, delimiter: str, encoding: str) -> tuple[int, int, int] | None:
    """The first physical line whose record has a different field count from the header."""
    try:
        with open(path, newline="", encoding=encoding, errors="replace") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return None
            for row in reader:
                if row and len(row) != len(header):
                    return reader.line_num, len(row), len(header)
    except csv.Error:
        return None
    return None


def _name_unnamed_columns(table: pa.Table) -> pa.Table:
    """A blank header cell (a saved pandas/R index) gets pandas' name for it, 'Unnamed: i'."""
    names = table.schema.names
    if all(n.strip() for n in names):
        return table
    return table.rename_columns([n if n.strip() else f"Unnamed: {i}" for i, n in enumerate(names)])


def _check_unique_names(names: list[str], label: str) -> None:
    seen, dupes = set(), []
    for n in names:
        if n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    if dupes:
        raise DataError(f"{label} has duplicate column names: {dupes}; rename them so each is unique")


def _exact_big_unsigned(table: pa.Table, path: Path, delimiter: str, encoding: str) -> pa.Table:
    """pyarrow infers float64 for integers beyond int64; re-read such columns as exact uint64."""
    candidates = []
    for f in table.schema:
        if not pa.types.is_floating(f.type):
            continue
        column = table.column(f.name)
        finite = pc.filter(column, pc.is_finite(column))
        if len(finite) == 0 or pc.max(pc.abs(finite)).as_py() < 2.0**63:
            continue
        if pc.all(pc.equal(finite, pc.floor(finite))).as_py():
            candidates.append(f.name)
    for name in candidates:
        try:
            exact = pacsv.read_csv(
                path, **_csv_options(delimiter, encoding, newlines=True, column_types={name: pa.uint64()})
            )
        except pa.ArrowInvalid:
            continue  # negative or beyond uint64: float64 is the best there is
        table = table.set_column(table.schema.get_field_index(name), name, exact.column(name))
    return table


# A number written with a decimal comma (and optional dot thousands separators): "12,5", "1.234,5".
_DECIMAL_COMMA = r"^[+-]?(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?$"


def _decimal_comma_numbers(table: pa.Table, delimiter: str) -> tuple[pa.Table, bool]:
    """In a ';' or tab separated file (the European Excel export), "12,5" is the number 12.5.

    A text column becomes float64 only if every value is such a number and at least one has a
    comma; comma-separated files are left alone (there a comma cannot be the decimal mark).
    """
    if delimiter == ",":
        return table, False
    changed = False
    for i, f in enumerate(table.schema):
        if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
            continue
        column = table.column(i)
        values = pc.drop_null(column)
        if len(values) == 0 or not pc.all(pc.match_substring_regex(values, _DECIMAL_COMMA)).as_py():
            continue
        if not pc.any(pc.match_substring(values, ",")).as_py():
            continue
        text = pc.replace_substring(pc.replace_substring(column, ".", ""), ",", ".")
        try:
            table = table.set_column(i, f.name, pc.cast(text, pa.float64()))
        except pa.ArrowInvalid:
            continue
        changed = True
    return table, changed


def _concat_tables(tables: list[pa.Table], files: list[Path], label: str) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    names = tables[0].schema.names
    aligned = [tables[0]]
    for f, t in zip(files[1:], tables[1:]):
        if set(t.schema.names) != set(names):
            raise DataError(
                f"{f} has columns {t.schema.names} but {files[0]} has {names}; "
                f"every file matched by {label} must have the same columns"
            )
        aligned.append(t.select(names))
    try:
        return pa.concat_tables(aligned, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        clashes = []
        for n in names:
            types = {str(t.schema.field(n).type): f.name for f, t in zip(files, aligned) if t.schema.field(n).type != pa.null()}
            if len(types) > 1:
                clashes.append(f"{n!r}: " + ", ".join(f"{ty} in {fn}" for ty, fn in types.items()))
        raise DataError(f"files matched by {label} disagree on column types: " + "; ".join(clashes)) from None


# ---- Parquet -------------------------------------------------------------------------------

def _check_parquet_magic(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    with open(path, "rb") as handle:
        start = handle.read(4)
        handle.seek(max(size - 4, 0))
        end = handle.read(4)
    if start != b"PAR1":
        raise DataError(f"{path} is not a Parquet file (it does not start with the Parquet magic bytes)")
    if end != b"PAR1" or size < 12:
        raise DataError(f"{path} is a truncated or corrupt Parquet file (its footer is missing)")


def _read_parquet_files(files: list[Path], base: Path | None, label: str) -> pa.Table:
    schemas = []
    for f in files:
        _check_parquet_magic(f)
        try:
            schemas.append(pq.read_schema(f))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{f} is a truncated or corrupt Parquet file: {_reason(exc)}") from None
    _check_unique_names(schemas[0].names, str(files[0]))
    for f, s in zip(files[1:], schemas[1:]):
        if set(s.names) != set(schemas[0].names):
            raise DataError(
                f"{f} has columns {s.names} but {files[0]} has {schemas[0].names}; "
                f"every file of {label} must have the same columns"
            )
    try:
        if base is None:
            return pq.read_table(files[0])
        return _parquet_dataset(files, base, schemas, label).to_table()
    except DataError:
        raise
    except (pa.ArrowException, OSError) as exc:
        for f in files:  # name the file at fault
            try:
                pq.read_table(f)
            except (pa.ArrowException, OSError) as inner:
                raise DataError(f"{f} is a corrupt Parquet file: {_reason(inner)}") from None
        raise DataError(f"{label} cannot be read as one Parquet dataset: {_reason(exc)}") from None


def _parquet_dataset(files: list[Path], base: Path, schemas: list[pa.Schema], label: str) -> pads.Dataset:
    """Files under `base` as one dataset, hive partitions (key=value folders) as columns."""
    paths = [str(f) for f in files]
    discovered = pads.dataset(paths, format="parquet", partitioning="hive", partition_base_dir=str(base))
    if all(s.equals(schemas[0]) for s in schemas[1:]):
        return discovered
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"the Parquet files of {label} disagree on column types: {_reason(exc)}") from None
    partitions = [f for f in discovered.schema if f.name not in unified.names]
    return pads.dataset(
        paths,
        format="parquet",
        schema=pa.schema([*unified, *partitions], metadata=unified.metadata),
        partitioning=pads.partitioning(pa.schema(partitions), flavor="hive") if partitions else None,
        partition_base_dir=str(base),
    )


# ---- Arrow -> pandas -----------------------------------------------------------------------

def _arrow_to_pandas(table: pa.Table, label: str) -> pd.DataFrame:
    """pandas types that keep every value: nullable ints/bools, datetimes not dates, object strings.

    Pandas metadata (from files pandas wrote) is honoured first: categoricals with their order,
    time zones and extension dtypes come back as they were written.
    """
    df = table.to_pandas(date_as_object=False)
    index = df.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        named = any(n is not None for n in index.names)
        df = df.reset_index(drop=not named)  # a named index is data; an unnamed one is an artefact
    fields = {f.name: f for f in table.schema}
    for position, label_ in enumerate(df.columns):
        arrow_field = fields.get(str(label_))
        if arrow_field is None:
            continue
        fixed = _fix_column(df.iloc[:, position], table.column(arrow_field.name), arrow_field.type)
        if fixed is not None:
            df.isetitem(position, fixed)
    if any(not isinstance(c, str) for c in df.columns):
        df.columns = [str(c) for c in df.columns]
    _check_unique_names(list(df.columns), label)
    return df


def _fix_column(column: pd.Series, arrow: pa.ChunkedArray, type_: pa.DataType) -> Any:
    dtype = column.dtype
    if pa.types.is_integer(type_) and not pd.api.types.is_integer_dtype(dtype):
        # nulls made pandas fall back to float64 (inexact beyond 2**53): rebuild from Arrow
        return pd.api.types.pandas_dtype(_NULLABLE_INT[type_]).__from_arrow__(arrow)
    if pa.types.is_boolean(type_) and not pd.api.types.is_bool_dtype(dtype):
        return pd.BooleanDtype().__from_arrow__(arrow)
    if (pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)) and (
        not pd.api.types.is_object_dtype(dtype)
    ):
        return column.astype(object).where(column.notna(), None).to_numpy(dtype=object)
    if pa.types.is_decimal(type_):
        if type_.scale == 0 and type_.precision <= 18:
            as_int = arrow.cast(pa.int64())
            return as_int.to_numpy() if as_int.null_count == 0 else pd.Int64Dtype().__from_arrow__(as_int)
        return arrow.cast(pa.float64()).to_numpy()
    return None


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WriteResult:
    """What write_parquet put on disk: the dataset directory, rows, part files and total bytes."""

    path: Path
    rows: int
    files: int
    bytes: int


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling of `final`; on success it replaces `final` whole.

    On any exception (KeyboardInterrupt included) the temporary directory is removed and an
    existing `final` is left exactly as it was. The swap renames `final` to a sibling backup,
    renames the new directory into place and only then deletes the backup, so at no moment is
    there a half-written `final`.
    """
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise ConfigError(f"output path {final} exists and is not a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = _fresh_sibling(final, "tmp")
    try:
        yield temporary
        _swap_into_place(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _fresh_sibling(final: Path, tag: str) -> Path:
    """Create `.{name}.{tag}-<random>` next to `final` (mkdir, not mkdtemp: normal permissions)."""
    while True:
        candidate = final.parent / f".{final.name}.{tag}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


def _swap_into_place(temporary: Path, final: Path) -> None:
    if not final.exists():
        os.replace(temporary, final)
        return
    if not final.is_dir():
        raise ConfigError(f"output path {final} exists and is not a directory")
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


def write_parquet(
    out_dir: str | os.PathLike[str],
    chunks: Iterable[pd.DataFrame],
    *,
    schema: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    rows_per_file: int = 1_000_000,
) -> WriteResult:
    """Write `chunks` as the Parquet dataset directory `out_dir` (part-00000.parquet, ...).

    Each chunk becomes a row group and a new part file starts every `rows_per_file` rows, so
    only one chunk is in memory at a time. The first chunk fixes the column order and Arrow
    types; later chunks are cast to them. Every file carries `metadata` (key "synthpipe") and
    `schema` (key "synthpipe.schema") as JSON plus pandas' own metadata, and `_synthpipe.json`
    repeats them with the row count. The directory appears only when complete (see
    atomic_directory); if anything fails, including the chunks iterator, a previous `out_dir`
    is left untouched.
    """
    if not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ConfigError(f"rows_per_file must be a positive integer, got {rows_per_file!r}")
    out_dir = Path(out_dir)
    if schema is not None and hasattr(schema, "to_dict"):  # a TableSchema rather than its dict
        schema = schema.to_dict()
    metadata_json = _to_json(dict(metadata or {}))
    schema_json = _to_json(dict(schema) if schema is not None else None)
    key_values = {METADATA_KEY: metadata_json.encode(), SCHEMA_KEY: schema_json.encode()}
    with atomic_directory(out_dir) as temporary:
        writer = _DatasetWriter(temporary, rows_per_file, key_values, schema)
        try:
            for index, chunk in enumerate(chunks):
                writer.write(chunk, index)
        except BaseException:
            writer.abort()
            raise
        names = writer.close()
        sidecar = {
            "metadata": json.loads(metadata_json),
            "schema": json.loads(schema_json),
            "rows": writer.rows,
            "files": names,
            "written_at": _now(),
        }
        (temporary / SIDECAR).write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in out_dir.iterdir() if f.is_file())
    return WriteResult(path=out_dir, rows=writer.rows, files=len(names), bytes=size)


class _DatasetWriter:
    """Streams DataFrames into part files with one fixed Arrow schema."""

    def __init__(self, directory: Path, rows_per_file: int, key_values: dict[bytes, bytes], schema: Mapping | None):
        self.directory = directory
        self.rows_per_file = rows_per_file
        self.key_values = key_values
        self.declared = {c.get("name"): c for c in (schema or {}).get("columns", []) if isinstance(c, Mapping)}
        self.arrow_schema: pa.Schema | None = None
        self.columns: list[Any] = []
        self.categories: dict[Any, pd.CategoricalDtype] = {}
        self.writer: pq.ParquetWriter | None = None
        self.names: list[str] = []
        self.rows = 0
        self.rows_in_file = 0

    def write(self, chunk: pd.DataFrame, index: int) -> None:
        if not isinstance(chunk, pd.DataFrame):
            raise TypeError(f"chunk {index} is a {type(chunk).__name__}, expected a pandas DataFrame")
        table = self._first(chunk) if self.arrow_schema is None else self._conform(chunk, index)
        offset = 0
        while offset < table.num_rows:
            if self.writer is None or self.rows_in_file >= self.rows_per_file:
                self._next_file()
            take = min(self.rows_per_file - self.rows_in_file, table.num_rows - offset)
            self.writer.write_table(table.slice(offset, take), row_group_size=take)
            offset += take
            self.rows_in_file += take
            self.rows += take

    def close(self) -> list[str]:
        if self.arrow_schema is None:  # no chunks at all (0 rows requested): take columns from the schema
            if not self.declared:
                raise ValueError("write_parquet got no chunks and no schema: nothing says what columns to write")
            self._first(_empty_frame(list(self.declared.values())))
        if self.writer is None:
            self._next_file()  # zero rows: still one file, so the dataset has a schema
        self.writer.close()
        self.writer = None
        return self.names

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None

    def _next_file(self) -> None:
        if self.writer is not None:
            self.writer.close()
        name = f"part-{len(self.names):05d}.parquet"
        self.writer = pq.ParquetWriter(self.directory / name, self.arrow_schema)
        self.names.append(name)
        self.rows_in_file = 0

    def _first(self, chunk: pd.DataFrame) -> pa.Table:
        if chunk.columns.duplicated().any():
            dupes = sorted(set(map(str, chunk.columns[chunk.columns.duplicated()])))
            raise DataError(f"cannot write Parquet: duplicate column names {dupes}")
        self.columns = list(chunk.columns)
        self.categories = {c: chunk[c].dtype for c in self.columns if isinstance(chunk[c].dtype, pd.CategoricalDtype)}
        table = _from_pandas(chunk, 0)
        fields = [
            f.with_type(_declared_arrow_type(self.declared.get(f.name))) if pa.types.is_null(f.type) else f
            for f in table.schema
        ]
        self.arrow_schema = pa.schema(fields, metadata={**(table.schema.metadata or {}), **self.key_values})
        return self._cast(table, 0)

    def _conform(self, chunk: pd.DataFrame, index: int) -> pa.Table:
        if list(chunk.columns) != self.columns:
            missing = [c for c in self.columns if c not in chunk.columns]
            extra = [c for c in chunk.columns if c not in self.columns]
            if missing or extra or chunk.columns.duplicated().any():
                raise DataError(
                    f"chunk {index} does not match the first chunk's columns: missing {missing}, extra {extra}"
                )
            chunk = chunk[self.columns]
        for name, dtype in self.categories.items():
            if chunk[name].dtype != dtype:
                chunk = chunk.copy(deep=False)
                chunk[name] = _recode_categorical(chunk[name], dtype, index)
        return self._cast(_from_pandas(chunk, index), index)

    def _cast(self, table: pa.Table, index: int) -> pa.Table:
        arrays = []
        for target, column in zip(self.arrow_schema, table.columns):
            if column.type != target.type:
                try:
                    column = column.cast(target.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                    raise DataError(
                        f"chunk {index} column {target.name!r} has type {column.type} that cannot be "
                        f"converted to the first chunk's {target.type}: {_reason(exc)}"
                    ) from None
            arrays.append(column)
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)


def _from_pandas(chunk: pd.DataFrame, index: int) -> pa.Table:
    try:
        return pa.Table.from_pandas(chunk, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"chunk {index} cannot be converted to Arrow: {_reason(exc)}") from None


def _recode_categorical(values: pd.Series, dtype: pd.CategoricalDtype, index: int) -> pd.Categorical:
    """Give a later chunk the first chunk's categories (and order) so every row group agrees."""
    unknown = values.notna() & ~values.isin(dtype.categories)
    if unknown.any():
        raise DataError(
            f"chunk {index} column {values.name!r} has values {sorted(map(str, values[unknown].unique()))[:5]} "
            f"outside the first chunk's categories"
        )
    return pd.Categorical(values.astype(object), dtype=dtype)


def _empty_frame(columns: list[Mapping[str, Any]]) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes (object where a dtype is unknown)."""
    data = {}
    for column in columns:
        try:
            dtype = pd.api.types.pandas_dtype(column.get("dtype") or "object")
        except TypeError:
            dtype = np.dtype(object)
        if isinstance(dtype, pd.CategoricalDtype) and column.get("categories") is not None:
            dtype = pd.CategoricalDtype(column["categories"], ordered=bool(column.get("ordered")))
        data[column["name"]] = pd.Series([], dtype=dtype)
    return pd.DataFrame(data)


def _declared_arrow_type(column: Mapping[str, Any] | None) -> pa.DataType:
    """The type for a column that is all null in the first chunk: from the schema's dtype, else string."""
    dtype_name = (column or {}).get("dtype")
    if not dtype_name:
        return pa.string()
    try:
        dtype = pd.api.types.pandas_dtype(dtype_name)
    except TypeError:
        return pa.string()
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pa.timestamp(dtype.unit, tz=str(dtype.tz))
    if isinstance(dtype, pd.CategoricalDtype | pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
        return pa.string()
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
    try:
        return pa.from_numpy_dtype(numpy_dtype)
    except (pa.ArrowNotImplementedError, TypeError):
        return pa.string()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=False)


def read_parquet_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a dataset directory written by write_parquet (or any Parquet file/dir/glob)."""
    text = os.fspath(path)
    files, base = _resolve_files(text)
    bad = [f for f in files if f.suffix.lower() not in PARQUET_SUFFIXES and _read_head(f, 4) != b"PAR1"]
    if bad:
        raise DataError(f"{text} holds files that are not Parquet: {', '.join(map(str, bad[:5]))}")
    return _arrow_to_pandas(_read_parquet_files(files, base, text), text)


def read_parquet_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The synthpipe metadata and schema stored in a Parquet file or dataset, with its size.

    Returns {"metadata": dict | None, "schema": dict | None, "rows": int, "files": int}; read
    from the Parquet footers (not the sidecar), so it works for copied files too.
    """
    text = os.fspath(path)
    files, _ = _resolve_files(text)
    rows = 0
    key_values: dict[bytes, bytes] = {}
    for i, f in enumerate(files):
        _check_parquet_magic(f)
        try:
            footer = pq.read_metadata(f)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{f} is a truncated or corrupt Parquet file: {_reason(exc)}") from None
        rows += footer.num_rows
        if i == 0:
            key_values = footer.metadata or {}

    def decode(key: bytes) -> Any:
        raw = key_values.get(key)
        return None if raw is None else json.loads(raw)

    return {"metadata": decode(METADATA_KEY), "schema": decode(SCHEMA_KEY), "rows": rows, "files": len(files)}
