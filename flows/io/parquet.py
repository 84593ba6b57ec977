"""Parquet: reading files and datasets (directories, globs, hive partitions), writing the
synthetic dataset chunk by chunk, and reading back synthpipe's metadata.

Output is a Parquet dataset directory written chunk by chunk, so memory stays flat however many
rows are emitted, and swapped into place only when complete (`atomic_directory`), so a crash or a
failing generator never leaves partial output or damages the previous run's files.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from synthpipe.flows.io.atomic import atomic_directory, now
from synthpipe.flows.io.csv import read_head
from synthpipe.flows.io.frames import arrow_to_pandas, check_unique_names
from synthpipe.flows.io.secrets import reason
from synthpipe.generators.errors import ConfigError, DataError
from synthpipe.generators.serialize import dumps

PARQUET_SUFFIXES = frozenset({".parquet", ".parq", ".pq"})
METADATA_KEY = b"synthpipe"
SCHEMA_KEY = b"synthpipe.schema"
SIDECAR = "_synthpipe.json"


def check_parquet_magic(path: Path) -> None:
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


def read_parquet_files(files: list[Path], base: Path | None, label: str) -> pa.Table:
    """The whole of one Parquet file or dataset as one Arrow table."""
    source = ParquetBatches(files, base, label)
    try:
        if base is None:
            return pq.read_table(files[0])
        assert source.dataset is not None
        return source.dataset.to_table()
    except MemoryError:  # pa.ArrowMemoryError too: the machine, not the file, is at fault
        raise
    except (pa.ArrowException, OSError) as exc:
        raise source.failure(exc) from None


class ParquetBatches:
    """Record batches of a Parquet file or dataset (directory, glob, hive partitions), checked
    first: magic bytes, readable footers, one set of column names."""

    def __init__(self, files: list[Path], base: Path | None, label: str):
        self.files, self.base, self.label = files, base, label
        schemas = []
        for f in files:
            check_parquet_magic(f)
            try:
                schemas.append(pq.read_schema(f))
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"{f} is a truncated or corrupt Parquet file: {reason(exc)}") from None
        check_unique_names(schemas[0].names, str(files[0]))
        for f, s in zip(files[1:], schemas[1:]):
            if set(s.names) != set(schemas[0].names):
                raise DataError(
                    f"{f} has columns {s.names} but {files[0]} has {schemas[0].names}; "
                    f"every file of {label} must have the same columns"
                )
        self.dataset = None if base is None else _parquet_dataset(files, base, schemas, label)
        self.schema = schemas[0] if self.dataset is None else self.dataset.schema

    def batches(self, batch_size: int = 65_536, max_batches: int | None = None) -> Iterator[pa.RecordBatch]:
        """Every row once, `batch_size` rows at a time (at most `max_batches` batches)."""
        try:
            if self.dataset is None:
                handle = pq.ParquetFile(self.files[0])
                stream: Iterator[pa.RecordBatch] = handle.iter_batches(batch_size=batch_size)
            else:
                # little read-ahead: memory stays a few batches whatever the dataset's size
                stream = self.dataset.to_batches(batch_size=batch_size, batch_readahead=2, fragment_readahead=1)
            for index, batch in enumerate(stream):
                if max_batches is not None and index >= max_batches:
                    return
                if batch.num_rows:
                    yield batch.replace_schema_metadata(self.schema.metadata)
        except MemoryError:
            raise
        except (pa.ArrowException, OSError) as exc:
            raise self.failure(exc) from None

    def failure(self, exc: BaseException) -> DataError:
        """A DataError naming the file at fault."""
        for f in self.files:
            try:
                for _ in pq.ParquetFile(f).iter_batches(batch_size=1 << 16):
                    pass
            except (pa.ArrowException, OSError) as inner:
                return DataError(f"{f} is a corrupt Parquet file: {reason(inner)}")
        return DataError(f"{self.label} cannot be read as one Parquet dataset: {reason(exc)}")


def _parquet_dataset(files: list[Path], base: Path, schemas: list[pa.Schema], label: str) -> pads.Dataset:
    """Files under `base` as one dataset, hive partitions (key=value folders) as columns."""
    paths = [str(f) for f in files]
    discovered = pads.dataset(paths, format="parquet", partitioning="hive", partition_base_dir=str(base))
    if all(s.equals(schemas[0]) for s in schemas[1:]):
        return discovered
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"the Parquet files of {label} disagree on column types: {reason(exc)}") from None
    partitions = [f for f in discovered.schema if f.name not in unified.names]
    return pads.dataset(
        paths,
        format="parquet",
        schema=pa.schema([*unified, *partitions], metadata=unified.metadata),
        partitioning=pads.partitioning(pa.schema(partitions), flavor="hive") if partitions else None,
        partition_base_dir=str(base),
    )



@dataclass(frozen=True)
class WriteResult:
    """What write_parquet put on disk: the dataset directory, rows, part files and total bytes."""

    path: Path
    rows: int
    files: int
    bytes: int



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
    metadata_json = dumps(dict(metadata or {}))
    schema_json = dumps(dict(schema) if schema is not None else None)
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
            "written_at": now(),
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
                        f"converted to the first chunk's {target.type}: {reason(exc)}"
                    ) from None
            arrays.append(column)
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)


def _from_pandas(chunk: pd.DataFrame, index: int) -> pa.Table:
    try:
        return pa.Table.from_pandas(chunk, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"chunk {index} cannot be converted to Arrow: {reason(exc)}") from None


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




def read_parquet_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a dataset directory written by write_parquet (or any Parquet file/dir/glob)."""
    from synthpipe.flows.io.sources import resolve_files  # discovery lives with dispatch

    text = os.fspath(path)
    files, base = resolve_files(text)
    bad = [f for f in files if f.suffix.lower() not in PARQUET_SUFFIXES and read_head(f, 4) != b"PAR1"]
    if bad:
        raise DataError(f"{text} holds files that are not Parquet: {', '.join(map(str, bad[:5]))}")
    return arrow_to_pandas(read_parquet_files(files, base, text), text)


def read_parquet_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The synthpipe metadata and schema stored in a Parquet file or dataset, with its size.

    Returns {"metadata": dict | None, "schema": dict | None, "rows": int, "files": int}; read
    from the Parquet footers (not the sidecar), so it works for copied files too.
    """
    from synthpipe.flows.io.sources import resolve_files

    text = os.fspath(path)
    files, _ = resolve_files(text)
    rows = 0
    key_values: dict[bytes, bytes] = {}
    for i, f in enumerate(files):
        check_parquet_magic(f)
        try:
            footer = pq.read_metadata(f)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{f} is a truncated or corrupt Parquet file: {reason(exc)}") from None
        rows += footer.num_rows
        if i == 0:
            key_values = footer.metadata or {}

    def decode(key: bytes) -> Any:
        raw = key_values.get(key)
        return None if raw is None else json.loads(raw)

    return {"metadata": decode(METADATA_KEY), "schema": decode(SCHEMA_KEY), "rows": rows, "files": len(files)}
