"""Whole-output validation in bounded memory: a Parquet dataset read batch by batch, and the
per-batch results of a great-expectations suite combined into the whole table's.

A run may emit 100M rows; classifier checks read bounded samples, but an out-of-range value or
an unknown category in row 90,000,001 must still fail the run. So the expectation suite runs
on every batch, and its results are merged exactly:

- row-wise ("map") expectations (nulls, ranges, category sets, types of object columns) add up
  their unexpected and non-missing counts, and `mostly` is applied to the totals;
- table-shape expectations (columns, the dtype of a typed column) must hold in every batch;
- mean, standard deviation, most common value and uniqueness are recomputed from statistics
  streamed alongside (Chan's parallel moments, merged value counts, 64-bit value hashes);
- any other aggregate expectation in a user-edited suite cannot be merged from batches and is
  reported from the bounded sample, with the rows it saw.

Memory is one batch plus the statistics: a few numbers per column, at most `MAX_TRACKED_VALUES`
counts per most-common-value column, and 8 bytes per row of a uniqueness column, up to
`MAX_UNIQUE_ROWS` rows (reported when it stops short).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.errors import DataError

BATCH_ROWS = 65_536
MAX_TRACKED_VALUES = 100_000  # distinct values counted per most-common-value column
MAX_UNIQUE_ROWS = 20_000_000  # hashes kept per uniqueness column (160 MB)

ALL_BATCHES = {  # must hold in every batch
    "expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set", "expect_column_to_exist",
    "expect_column_values_to_be_of_type",
}
STREAMED_STATS = {  # recomputed from streamed statistics
    "expect_column_mean_to_be_between", "expect_column_stdev_to_be_between",
    "expect_column_most_common_value_to_be_in_set", "expect_column_values_to_be_unique",
    "expect_table_row_count_to_be_between", "expect_table_row_count_to_equal",
}


def dataset_files(path: str | Path) -> list[Path]:
    """The part files of a Parquet dataset directory (split subdirectories included), in order;
    hidden and underscore files (the writer's sidecar) are not data."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"synthetic dataset {str(path)!r} does not exist")
    files = sorted(p for p in path.rglob("*.parquet")
                   if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    if not files:
        raise DataError(f"synthetic dataset {str(path)!r} holds no Parquet part files")
    return files


def dataset_batches(path: str | Path, batch_rows: int = BATCH_ROWS, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The dataset as DataFrames of at most `batch_rows` rows, one part file at a time and with no
    read-ahead, so memory is one batch (and one row group being decoded)."""
    import pyarrow.parquet as pq

    for file in dataset_files(path):
        reader = pq.ParquetFile(file, pre_buffer=False)
        try:
            for batch in reader.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
                yield batch.to_pandas()
        finally:
            reader.close()


def key(expectation_type: str, kwargs: dict) -> str:
    """Identifies one expectation of a suite in GX's results (which do not keep the suite's order)."""
    kept = {k: v for k, v in kwargs.items() if k != "batch_id"}
    return expectation_type + json.dumps(kept, sort_keys=True, default=str)


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al., 1979)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if not len(values):
            return
        n_b, mean_b = len(values), float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:  # pandas' (and GX's) sample standard deviation, ddof=1
        return float(np.sqrt(self.m2 / (self.n - 1))) if self.n > 1 else float("nan")


@dataclass
class ColumnStream:
    """What the merged expectations need of one column."""

    moments: Moments | None = None
    counts: Counter | None = None
    counts_overflow: int = 0
    hashes: list[np.ndarray] | None = None
    hashed_rows: int = 0
    hash_capped: bool = False

    def add(self, series: pd.Series) -> None:
        values = series.dropna()
        if self.moments is not None:
            numeric = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(values) \
                else values.astype("int64")
            self.moments.add(np.asarray(numeric, dtype=float))
        if self.counts is not None:
            for value, count in values.value_counts(sort=False).items():
                if value in self.counts or len(self.counts) < MAX_TRACKED_VALUES:
                    self.counts[value] += int(count)
                else:
                    self.counts_overflow += int(count)
        if self.hashes is not None and not self.hash_capped:
            room = MAX_UNIQUE_ROWS - self.hashed_rows
            if len(values) > room:
                values, self.hash_capped = values.iloc[:room], True
            self.hashes.append(pd.util.hash_pandas_object(values, index=False).to_numpy())
            self.hashed_rows += len(values)


@dataclass
class Merged:
    """Per-expectation totals over the batches seen so far."""

    type: str
    kwargs: dict
    rows: int = 0
    unexpected: int = 0
    nonmissing: int = 0
    map_style: bool = False
    all_success: bool = True
    observed: Any = None
    examples: list = field(default_factory=list)


class SuiteStream:
    """Feed it every batch (`add`) with GX's per-batch results, then read the merged results."""

    def __init__(self, expectations: list[dict]):
        self.expectations = expectations
        self.merged: dict[str, list[Merged]] = {}
        self.columns: dict[str, ColumnStream] = {}
        self.rows = 0
        self.batches = 0
        for e in expectations:
            kwargs = e.get("kwargs") or {}
            self.merged.setdefault(key(e["type"], kwargs), []).append(Merged(e["type"], kwargs))
            column = kwargs.get("column")
            if column is None or e["type"] not in STREAMED_STATS:
                continue
            stream = self.columns.setdefault(column, ColumnStream())
            if e["type"] in ("expect_column_mean_to_be_between", "expect_column_stdev_to_be_between"):
                stream.moments = stream.moments or Moments()
            elif e["type"] == "expect_column_most_common_value_to_be_in_set":
                stream.counts = stream.counts if stream.counts is not None else Counter()
            elif e["type"] == "expect_column_values_to_be_unique":
                stream.hashes = stream.hashes if stream.hashes is not None else []

    def add(self, frame: pd.DataFrame, results: list[tuple[str, bool, dict]]) -> None:
        """One batch: the frame GX saw and its results as (key, success, result dict)."""
        self.rows += len(frame)
        self.batches += 1
        for name, stream in self.columns.items():
            if name in frame.columns:
                stream.add(frame[name])
        seen: Counter = Counter()
        for k, success, result in results:
            slots = self.merged.get(k)
            if not slots:
                continue
            m = slots[min(seen[k], len(slots) - 1)]
            seen[k] += 1
            m.rows += len(frame)
            if "unexpected_count" in result and "element_count" in result:
                m.map_style = True
                m.unexpected += int(result.get("unexpected_count") or 0)
                m.nonmissing += int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
                room = 5 - len(m.examples)
                if room > 0:
                    m.examples += list(result.get("partial_unexpected_list") or [])[:room]
            else:
                m.all_success = m.all_success and bool(success)
                m.observed = result.get("observed_value", m.observed)

    def results(self) -> dict[str, list[dict]]:
        """key -> [{"success", "observed", "rows_seen"}] for the expectations merged exactly;
        the others are absent (the caller reports them from the bounded sample)."""
        out: dict[str, list[dict]] = {}
        for k, slots in self.merged.items():
            for m in slots:
                merged = self._merge(m)
                if merged is not None:
                    out.setdefault(k, []).append(merged)
        return out

    def _merge(self, m: Merged) -> dict | None:
        kw = m.kwargs
        column = kw.get("column")
        if m.type in STREAMED_STATS:
            return self._from_stats(m, self.columns.get(column) if column else None)
        if m.map_style:
            mostly = float(kw.get("mostly", 1.0))
            share_ok = 1 - m.unexpected / m.nonmissing if m.nonmissing else 1.0
            text = f"{m.unexpected} unexpected ({(m.unexpected / m.nonmissing if m.nonmissing else 0):.2%})"
            if m.examples:
                text += ", e.g. " + ", ".join(map(str, m.examples[:5]))
            return {"success": share_ok >= mostly, "observed": text, "rows_seen": m.rows}
        if m.type in ALL_BATCHES or m.type == "expect_column_values_to_be_in_type_list":
            return {"success": m.all_success, "observed": m.observed, "rows_seen": m.rows}
        return None

    def _from_stats(self, m: Merged, stream: ColumnStream | None) -> dict | None:
        kw = m.kwargs
        if m.type.startswith("expect_table_row_count"):
            if m.type.endswith("equal"):
                return {"success": self.rows == kw.get("value"), "observed": self.rows, "rows_seen": self.rows}
            return {"success": _between(self.rows, kw), "observed": self.rows, "rows_seen": self.rows}
        if stream is None:
            return None
        if m.type == "expect_column_mean_to_be_between":
            value = stream.moments.mean if stream.moments.n else float("nan")
            return {"success": _between(value, kw), "observed": value, "rows_seen": self.rows}
        if m.type == "expect_column_stdev_to_be_between":
            value = stream.moments.std
            return {"success": _between(value, kw), "observed": value, "rows_seen": self.rows}
        if m.type == "expect_column_most_common_value_to_be_in_set":
            if not stream.counts:
                return {"success": False, "observed": None, "rows_seen": self.rows}
            top = max(stream.counts.values())
            modes = [v for v, c in stream.counts.items() if c == top]
            allowed = set(kw.get("value_set") or [])
            ok = any(v in allowed for v in modes) if kw.get("ties_okay") else all(v in allowed for v in modes)
            return {"success": bool(ok) and stream.counts_overflow < top, "observed": modes[:5], "rows_seen": self.rows}
        if m.type == "expect_column_values_to_be_unique":
            hashes = np.concatenate(stream.hashes) if stream.hashes else np.array([], np.uint64)
            _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
            duplicated = int((counts[inverse] > 1).sum())
            mostly = float(kw.get("mostly", 1.0))
            ok = (1 - duplicated / len(hashes) if len(hashes) else 1.0) >= mostly
            seen = self.rows if not stream.hash_capped else stream.hashed_rows
            return {"success": ok, "observed": f"{duplicated} unexpected (rows with a repeated value)", "rows_seen": seen}
        return None


def _between(value: float, kwargs: dict) -> bool:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return False
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    return (lo is None or value >= lo) and (hi is None or value <= hi)
