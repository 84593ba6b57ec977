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
from collections.abc import Iterator
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


def _scan_file(path: Path, encoding: str, limit: int | None = None) -> _Scan:
    """Hash and check the bytes of `path` (only its first `limit` bytes, if given)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)()
    error = None
    has_c1 = has_undefined = False
    lines = 1
    left = limit
    with open(path, "rb") as handle:
        while (left is None or left > 0) and (chunk := handle.read(_BLOCK_BYTES if left is None else min(left, _BLOCK_BYTES))):
            left = None if left is None else left - len(chunk)
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
    if error is None and limit is None:
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


@dataclass(frozen=True)
class CsvFile:
    """One CSV file, sniffed: how to read it and the sha256 of its bytes (None: head only)."""

    path: Path
    delimiter: str
    encoding: str
    sha256: str | None
    header: tuple[str, ...]


def sniff_csv(path: Path, delimiter: str | None, encoding: str | None, whole: bool = True) -> CsvFile:
    """Encoding (from every byte when `whole`, else from the head), delimiter (from the head).

    The whole-file pass also hashes the bytes; `whole=False` is the cheap look of pre-flight.
    """
    name = str(path)
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes)")
    head = read_head(path)
    bom = _bom_encoding(head)
    wide = (encoding is not None and _is_wide(encoding)) or bom in ("utf-16", "utf-32")
    if not wide:
        _reject_binary(head, name)
    scan = _scan_file(path, encoding or bom or "utf-8", limit=None if whole else len(head))
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
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return CsvFile(path, delimiter, encoding, scan.sha256 if whole else None, tuple(header))


class RestartScan(Exception):  # noqa: N818 - a signal, not an error
    """The reader learnt a better type for a column: the scan must start again from row 0."""


# pyarrow's own inference order; a column that fails its type moves to the first later one that
# parses the offending value (and, on the next pass, every other value, or moves on again).
_LADDER = (pa.int64(), pa.bool_(), pa.date32(), pa.timestamp("s"), pa.timestamp("ns"), pa.float64(), pa.string())
_CONVERSION = re.compile(r"column #(\d+).*?conversion error to ([^:]+): invalid value '(.*)'", re.DOTALL)
# A number written with a decimal comma (and optional dot thousands separators): "12,5", "1.234,5".
_DECIMAL_COMMA = r"^[+-]?(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?$"
BLOCK_BYTES = 4 << 20


class CsvBatches:
    """Record batches of one or more sniffed CSV files, with one set of column types.

    Why passes: pyarrow's streaming reader infers types from the first block, where its
    whole-file reader looks at every value. To give the same types, `batches()` keeps a plan
    (column types, quoted newlines, decimal-comma columns, exact uint64 columns) and raises
    RestartScan when a later block shows that the plan was wrong; the caller starts a fresh pass
    and the new plan holds. A typical file takes one pass; each correction costs one more.
    """

    def __init__(self, files: list[CsvFile], label: str, block_bytes: int = BLOCK_BYTES):
        self.files = files
        self.label = label
        self.block_bytes = block_bytes  # rows per batch follow from it; types are inferred from the first block
        self.names: list[str] | None = None
        self.types: dict[str, pa.DataType] = {}
        self.newlines = False
        self.decimal_comma: set[str] = set()
        self._not_decimal: set[str] = set()
        self._tried_uint64: set[str] = set()

    @property
    def options(self) -> dict[str, Any]:
        per_file = [
            {"delimiter": f.delimiter, "encoding": f.encoding, "decimal": "," if self.decimal_comma else "."}
            for f in self.files
        ]
        return {k: v if len({o[k] for o in per_file}) == 1 else [o[k] for o in per_file] for k, v in per_file[0].items()}

    def batches(self, max_batches: int | None = None) -> Iterator[pa.RecordBatch]:
        """Every row once, as batches in file order; raises RestartScan when the plan changed."""
        candidates: dict[str, list[bool]] = {}  # decimal-comma evidence: [all match, any comma]
        big_integers: set[str] = set()
        produced = 0
        for file in self.files:
            rows = 0
            for batch in self._file_batches(file):
                batch = self._conform(batch, file)
                self._observe(batch, file.delimiter, candidates, big_integers)
                rows += batch.num_rows
                produced += 1
                yield batch
                if max_batches is not None and produced >= max_batches:
                    return
            if rows == 0:
                raise DataError(f"{file.path} has a header but no data rows")
        changed = False
        for name in big_integers - self._tried_uint64:
            self._tried_uint64.add(name)
            self.types[name] = pa.uint64()
            changed = True
        for name, (all_match, any_comma) in candidates.items():
            if all_match and any_comma and name not in self.decimal_comma:
                self.decimal_comma.add(name)
                changed = True
        if changed:
            raise RestartScan()

    def _file_batches(self, file: CsvFile) -> Iterator[pa.RecordBatch]:
        try:
            reader = pacsv.open_csv(file.path, **self._arrow_options(file))
            if not self.types:
                self.types = {f.name: f.type for f in reader.schema}
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch
        except UnicodeDecodeError as exc:
            raise DataError(f"{file.path} cannot be read as {file.encoding}: {exc.reason}") from None
        except MemoryError:  # pa.ArrowMemoryError too: the machine, not the file, is at fault
            raise
        except (pa.ArrowException, OSError) as exc:
            self._diagnose(exc, file)

    def _arrow_options(self, file: CsvFile) -> dict[str, Any]:
        types = {n: t for n, t in self.types.items() if n in file.header}
        return _csv_options(file.delimiter, file.encoding, self.newlines, types, self.block_bytes)

    def _diagnose(self, exc: BaseException, file: CsvFile) -> None:
        """Turn a reader error into a better plan (RestartScan) or a DataError naming the line."""
        message = str(exc)
        conversion = _CONVERSION.search(message)
        if conversion is not None and int(conversion.group(1)) < len(file.header):
            name = file.header[int(conversion.group(1))]
            wider = _wider_type(self.types.get(name), conversion.group(3))
            if wider is not None:
                self.types[name] = wider
                raise RestartScan() from None
        if "Empty CSV file" in message:
            raise DataError(f"{file.path} holds no table: it has no header line") from None
        if "straddling object" in message:  # one line longer than the reader's block
            raise DataError(
                f"{file.path}: a line is longer than {self.block_bytes} bytes, the limit on one CSV line "
                "(the reader's block size); shorten that cell, or convert the table to Parquet, which has no such limit"
            ) from None
        if not self.newlines:
            self.newlines = True  # quoted newlines confuse the fast block splitter: allow them
            raise RestartScan() from None
        ragged = _find_ragged_line(file.path, file.delimiter, file.encoding)
        if ragged is not None:
            line, got, expected = ragged
            raise DataError(
                f"{file.path}: line {line} has {got} fields but the header has {expected} "
                f"(delimiter {file.delimiter!r}); fix that row or quote values that contain the delimiter"
            ) from None
        raise DataError(f"{file.path} is not a readable CSV table: {reason(exc)}") from None

    def _conform(self, batch: pa.RecordBatch, file: CsvFile) -> pa.RecordBatch:
        names = batch.schema.names
        if not all(n.strip() for n in names):  # a blank header cell (a saved pandas/R index)
            names = [n if n.strip() else f"Unnamed: {i}" for i, n in enumerate(names)]
            batch = pa.RecordBatch.from_arrays(batch.columns, names=names)
        if self.names is None:
            check_unique_names(names, str(file.path))
            self.names = list(names)
        elif names != self.names:
            if set(names) != set(self.names):
                raise DataError(
                    f"{file.path} has columns {names} but {self.files[0].path} has {self.names}; "
                    f"every file matched by {self.label} must have the same columns"
                )
            batch = batch.select(self.names)
        for name in self.decimal_comma:
            batch = self._decimal(batch, name)
        return batch

    def _decimal(self, batch: pa.RecordBatch, name: str) -> pa.RecordBatch:
        i = batch.schema.get_field_index(name)
        column = batch.column(i)
        if not pa.types.is_string(column.type):
            return batch
        values = pc.drop_null(column)
        if len(values) and not pc.all(pc.match_substring_regex(values, _DECIMAL_COMMA)).as_py():
            self.decimal_comma.discard(name)
            self._not_decimal.add(name)
            raise RestartScan()
        text = pc.replace_substring(pc.replace_substring(column, ".", ""), ",", ".")
        return batch.set_column(i, name, pc.cast(text, pa.float64()))

    def _observe(
        self, batch: pa.RecordBatch, delimiter: str, candidates: dict[str, list[bool]], big: set[str]
    ) -> None:
        """Evidence for the next plan: exact integers beyond int64, numbers with decimal commas."""
        for f, column in zip(batch.schema, batch.columns):
            if pa.types.is_floating(f.type) and f.name not in self._tried_uint64 and f.name not in big:
                finite = pc.filter(column, pc.is_finite(column))
                if len(finite) and pc.max(pc.abs(finite)).as_py() >= 2.0**63:
                    if pc.all(pc.equal(finite, pc.floor(finite))).as_py():
                        big.add(f.name)
            elif (
                delimiter != ","
                and pa.types.is_string(f.type)
                and f.name not in self._not_decimal
                and f.name not in self.decimal_comma
            ):
                state = candidates.setdefault(f.name, [True, False])
                values = pc.drop_null(column)
                if state[0] and len(values):
                    state[0] = bool(pc.all(pc.match_substring_regex(values, _DECIMAL_COMMA)).as_py())
                    state[1] = state[1] or bool(pc.any(pc.match_substring(values, ",")).as_py())


def _wider_type(current: pa.DataType | None, value: str) -> pa.DataType | None:
    """The first type after `current` in pyarrow's inference order that parses `value`."""
    rank = _rank(current)
    for candidate in _LADDER[rank + 1 :]:
        try:
            pc.cast(pa.array([value]), candidate)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return candidate
    return None


def _rank(type_: pa.DataType | None) -> int:
    if type_ is None or pa.types.is_null(type_):
        return -1
    if pa.types.is_integer(type_):
        return 0
    if pa.types.is_boolean(type_):
        return 1
    if pa.types.is_date(type_) or pa.types.is_time(type_):
        return 2
    if pa.types.is_timestamp(type_):
        return 3 if type_.unit == "s" else 4
    if pa.types.is_floating(type_):
        return 5
    return len(_LADDER) - 1


def scan_passes(source: Any, consume: Any, max_passes: int = 32) -> Any:
    """Run `consume(source.batches())` until a pass completes without RestartScan; its result."""
    for _ in range(max_passes):
        try:
            return consume(source.batches())
        except RestartScan:
            continue
    raise DataError(f"{source.label}: column types kept changing over {max_passes} passes; pass a schema")


def read_csv_files(
    files: list[Path], delimiter: str | None, encoding: str | None, label: str
) -> tuple[pa.Table, dict[str, Any], list[str]]:
    """The whole of one or more CSV files as one Arrow table (the same reader the scan uses)."""
    sniffed = [sniff_csv(f, delimiter, encoding) for f in files]
    source = CsvBatches(sniffed, label)
    batches = scan_passes(source, list)
    table = pa.Table.from_batches(batches) if batches else None
    assert table is not None  # every file has rows, or batches() raised
    return table, source.options, [f.sha256 for f in sniffed]


def _csv_options(
    delimiter: str, encoding: str, newlines: bool, column_types: dict | None = None, block_bytes: int = BLOCK_BYTES
) -> dict[str, Any]:
    arrow_encoding = "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
    return dict(
        read_options=pacsv.ReadOptions(encoding=arrow_encoding, block_size=block_bytes),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=newlines),
        convert_options=pacsv.ConvertOptions(
            null_values=NULL_VALUES, strings_can_be_null=True, column_types=column_types or {}
        ),
    )


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
