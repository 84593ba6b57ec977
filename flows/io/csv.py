"""CSV: sniffing the encoding and delimiter, and reading with pyarrow's CSV reader.

pyarrow's reader is multi-threaded and infers int64, bool and timestamps itself; Python's `csv`
module is used only for what pyarrow cannot do: sniffing the delimiter and naming the line of a
ragged row. Every problem is a DataError naming the file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from synthpipe.flows.io.frames import check_unique_names
from synthpipe.flows.io.secrets import reason
from synthpipe.generators.errors import DataError

# Candidate delimiters in order of preference when two explain the sample equally well.
CSV_SUFFIXES = frozenset({".csv", ".tsv", ".tab", ".txt", ".psv", ".dat"})
DELIMITERS = (",", ";", "\t", "|")
# pandas' default null markers; pyarrow's list lacks the last two.
NULL_VALUES = [*pacsv.ConvertOptions().null_values, "None", "<NA>"]

_HEAD_BYTES = 64 * 1024  # enough to sniff the delimiter and recognise binary files
_BLOCK_BYTES = 1 << 20
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


def read_head(path: Path, n: int = _HEAD_BYTES) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror or exc}") from None



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


def read_csv_files(
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
    head = read_head(path)
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
    check_unique_names(table.schema.names, name)
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
        ragged = _find_ragged_line(path, delimiter, encoding)
        if ragged is not None:
            line, got, expected = ragged
            raise DataError(
                f"{path}: line {line} has {got} fields but the header has {expected} "
                f"(delimiter {delimiter!r}); fix that row or quote values that contain the delimiter"
            ) from None
        raise DataError(f"{path} is not a readable CSV table: {reason(exc)}") from None


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
