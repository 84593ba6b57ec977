"""The whole-table profile: what every row of a source says about each column, gathered in the
one pass that also draws the training sample.

Why: a model trains on a bounded sample, but the schema's bounds, categories and null rates must
describe the whole table, or a rare category or an extreme value that the sample missed would be
unknown to the schema, the expectations and the drift check. The profile is plain data (JSON
round-trip through `to_dict` / `from_dict`); `ProfileAccumulator` builds it from Arrow record
batches in bounded memory: per column a few counters, min/max, and value counts only up to a cap.
No file I/O happens here; the readers in `flows/io` feed it.

Infinities: inf / -inf in a floating column are counted per column and turned into nulls by
`ProfileAccumulator.update`, which returns the cleaned batch, so no infinite value reaches a sample
or a model. `ColumnProfile.nulls` includes them; `ColumnProfile.infinities` says how many there were.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synthpipe.generators.schema import NamedColumns
from synthpipe.generators.serialize import to_jsonable

# Distinct values tracked per column before counting stops (memory stays bounded).
DISTINCT_CAP = 10_000
# Category frequencies listed per column (the generators fold categories beyond their own cap).
MAX_CATEGORIES = 500


@dataclass
class ColumnProfile:
    """One column over the whole table.

    `distinct` is exact when `distinct_capped` is False; otherwise there are more than
    `distinct` values. `frequencies` lists (value, count) pairs, most frequent first (ties by
    value's text), for non-floating, non-temporal columns; `frequencies_truncated` says that
    values are missing from the list (more than max_categories of them, or counting stopped at
    the distinct cap, in which case the counts are those seen up to then).
    """

    name: str
    type: str
    nulls: int = 0
    infinities: int = 0
    min: Any = None
    max: Any = None
    distinct: int = 0
    distinct_capped: bool = False
    frequencies: list[list[Any]] | None = None
    frequencies_truncated: bool = False

    @property
    def categories(self) -> list[Any] | None:
        """Values by frequency (most frequent first), or None when not counted."""
        return None if self.frequencies is None else [v for v, _ in self.frequencies]


@dataclass
class TableProfile(NamedColumns):
    """The whole table: rows, one ColumnProfile per column (source order) and its content hash."""

    rows: int
    columns: list[ColumnProfile] = field(default_factory=list)
    content_hash: str | None = None
    max_categories: int = MAX_CATEGORIES
    distinct_cap: int = DISTINCT_CAP

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns)

    def null_fraction(self, name: str) -> float:
        return self[name].nulls / self.rows if self.rows else 0.0

    @property
    def infinities(self) -> dict[str, int]:
        """Columns that held inf / -inf (now nulls), with their counts."""
        return {c.name: c.infinities for c in self.columns if c.infinities}

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self), finite=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableProfile:
        values = dict(data)
        values["columns"] = [ColumnProfile(**c) for c in data.get("columns", [])]
        return cls(**values)


class _ColumnState:
    """Counters for one column. Value counts are kept as Arrow tables (value, count) and merged
    every few batches with a vectorised group-by, until the distinct cap is passed."""

    MERGE_EVERY = 16

    def __init__(self, name: str, type_: pa.DataType, cap: int):
        self.name = name
        self.type = type_
        self.cap = cap
        self.nulls = 0
        self.infinities = 0
        self.min: Any = None
        self.max: Any = None
        self.counts: pa.Table | None = None  # merged (values, counts)
        self.pending: list[pa.Table] = []
        self.capped = False

    def update(self, array: pa.Array) -> None:
        if pa.types.is_null(self.type) and not pa.types.is_null(array.type):
            self.type = array.type
        self.nulls += array.null_count
        if array.null_count == len(array):
            return
        if _has_order(array.type):
            low, high = (_python(v) for v in pc.min_max(array).values())
            if low is not None:
                self.min = low if self.min is None else min(self.min, low)
                self.max = high if self.max is None else max(self.max, high)
        if self.capped:
            return
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        counts = pc.value_counts(array.drop_null()).flatten()
        self.pending.append(pa.Table.from_arrays(counts, names=["values", "counts"]))
        if len(self.pending) >= self.MERGE_EVERY or len(counts[0]) > self.cap:
            self._merge()

    def _merge(self) -> None:
        if not self.pending:
            return
        parts = ([self.counts] if self.counts is not None else []) + self.pending
        self.pending = []
        table = pa.concat_tables(parts, promote_options="permissive")
        merged = table.group_by("values").aggregate([("counts", "sum")])
        if merged.num_rows > self.cap:
            self.capped, self.counts = True, None  # free it: the cap is all we say from now on
            return
        self.counts = merged.rename_columns(["values", "counts"])

    def result(self, max_categories: int) -> ColumnProfile:
        if not self.capped:
            self._merge()
        frequencies, truncated, distinct = None, False, self.cap
        if self.counts is not None:
            distinct = self.counts.num_rows
            if _counted(self.type):
                pairs = zip(self.counts.column("values").to_pylist(), self.counts.column("counts").to_pylist())
                ranked = sorted(pairs, key=lambda kv: (-kv[1], str(kv[0])))
                frequencies = [[to_jsonable(v), int(c)] for v, c in ranked[:max_categories]]
                truncated = len(ranked) > max_categories
        elif _counted(self.type):
            truncated = True
        return ColumnProfile(
            name=self.name,
            type=str(self.type),
            nulls=int(self.nulls),
            infinities=int(self.infinities),
            min=self.min,
            max=self.max,
            distinct=distinct,
            distinct_capped=self.capped,
            frequencies=frequencies,
            frequencies_truncated=truncated,
        )


class ProfileAccumulator:
    """Feed it every batch of a table once (`update`); `result()` is the TableProfile.

    With `hash_rows`, it also hashes every row's values (as text, so that a column typed null in
    one chunk and int64 in the next hashes alike), giving a content hash that does not depend on
    how the table was cut into batches. File sources hash their bytes instead and pass that hash
    to `result`.
    """

    def __init__(self, max_categories: int = MAX_CATEGORIES, distinct_cap: int = DISTINCT_CAP, hash_rows: bool = False):
        self.max_categories = max_categories
        self.distinct_cap = max(distinct_cap, max_categories)
        self.rows = 0
        self.columns: dict[str, _ColumnState] = {}
        self._row_digest = hashlib.sha256() if hash_rows else None

    def update(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Count `batch` in, and return it with inf / -inf replaced by nulls (counted)."""
        arrays = []
        for name, array in zip(batch.schema.names, batch.columns):
            state = self.columns.get(name)
            if state is None:
                state = self.columns[name] = _ColumnState(name, array.type, self.distinct_cap)
            array, infinite = _nullify_infinities(array)
            state.infinities += infinite
            state.update(array)
            arrays.append(array)
        self.rows += batch.num_rows
        cleaned = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
        if self._row_digest is not None and batch.num_rows:
            self._row_digest.update(row_hashes(cleaned).tobytes())
        return cleaned

    def result(self, content_hash: str | None = None) -> TableProfile:
        if content_hash is None and self._row_digest is not None:
            header = json.dumps([[n, str(s.type)] for n, s in self.columns.items()]).encode()
            content_hash = hashlib.sha256(header + self._row_digest.digest()).hexdigest()
        return TableProfile(
            rows=self.rows,
            columns=[s.result(self.max_categories) for s in self.columns.values()],
            content_hash=content_hash,
            max_categories=self.max_categories,
            distinct_cap=self.distinct_cap,
        )


def row_hashes(batch: pa.RecordBatch) -> np.ndarray:
    """A 64-bit hash per row of `batch`, from the values' text (null distinct from any text)."""
    columns = {}
    for i, array in enumerate(batch.columns):
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        try:
            text = pc.cast(array, pa.string())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            text = pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())
        columns[i] = pc.fill_null(text, "\x00null").to_numpy(zero_copy_only=False)
    return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy()


def _python(scalar: pa.Scalar) -> Any:
    """A scalar as a Python value; timestamps as pandas Timestamps (nanoseconds and zone kept)."""
    if pa.types.is_timestamp(scalar.type) and scalar.is_valid:
        stamp = pd.Timestamp(scalar.cast(pa.int64()).as_py(), unit=scalar.type.unit)
        return stamp.tz_localize("UTC").tz_convert(scalar.type.tz) if scalar.type.tz else stamp
    return scalar.as_py()


def _nullify_infinities(array: pa.Array) -> tuple[pa.Array, int]:
    if not pa.types.is_floating(array.type):
        return array, 0
    infinite = pc.is_inf(array)
    count = pc.sum(infinite).as_py() or 0
    if not count:
        return array, 0
    return pc.if_else(infinite, pa.scalar(None, array.type), array), int(count)


def _has_order(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_temporal(type_) or (
        pa.types.is_decimal(type_)
    )


def _counted(type_: pa.DataType) -> bool:
    """Columns whose values are counted (possible categories): not floats, not times."""
    if pa.types.is_dictionary(type_):
        return True
    return not (pa.types.is_floating(type_) or pa.types.is_temporal(type_) or pa.types.is_decimal(type_))
