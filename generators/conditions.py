"""Conditions for a sample, parsed once against the schema into one typed object.

Why one object: a condition used to be typed in the CLI layer, re-checked in every `sample()`,
turned into ranges in the base class and compiled again by each model, so the same error had
three wordings and a range was checked twice. Here every condition error is raised once, and a
family's codec only translates an already valid `Conditions` into its own terms.

Discrete columns (categorical, boolean) hold one typed value per row (None = free). Continuous
columns (numerical, integer, datetime) hold one closed range per row as float64 low/high arrays
in the column's numeric units (NaN = open end; both NaN = free). Datetimes are seconds since
the epoch of the naive wall clock in the column's zone. A scalar v on a continuous column is
the range (v, v). Range ends stay real numbers on integer columns: 30.5..40 does not admit 30.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import CONTINUOUS_KINDS, ColumnKind, ColumnSchema, TableSchema

DISCRETE_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass
class Conditions:
    """Per-row conditions for `n` sampled rows (see the module docstring for the encoding)."""

    n: int
    values: dict[str, np.ndarray] = field(default_factory=dict)  # object [n], None = free
    ranges: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # float64 [n] x 2

    @property
    def columns(self) -> list[str]:
        return [*self.values, *self.ranges]

    @classmethod
    def parse(
        cls, conditions: Mapping[str, Any] | pd.DataFrame | Conditions | None, schema: TableSchema, n: int
    ) -> Conditions | None:
        """Typed values or CLI/YAML strings -> Conditions for `n` rows; None when nothing is asked.

        A mapping applies its values to every row; a frame gives one row of conditions per
        sampled row (NaN or None cells leave that row free on that column).
        """
        if conditions is None:
            return None
        if isinstance(conditions, Conditions):
            if conditions.n != n:
                raise ConfigError(f"conditions are for {conditions.n} rows but {n} were requested")
            return conditions if conditions.columns else None
        if isinstance(conditions, pd.DataFrame):
            if len(conditions) != n:
                raise ConfigError(f"conditions has {len(conditions)} rows but {n} were requested")
            cells: dict[str, Any] = {str(k): conditions[k].tolist() for k in conditions.columns}
            per_row = True
        else:
            cells, per_row = {str(k): v for k, v in conditions.items()}, False
        if not cells:
            return None
        out = cls(n)
        for name, given in cells.items():
            column = _column(schema, name)
            if column.kind in DISCRETE_KINDS:
                parsed = [_discrete(v, column) for v in given] if per_row else [_discrete(given, column)]
                out.values[name] = _column_array(parsed, n, per_row)
            else:
                pairs = _distinct_ranges(given if per_row else [given], column)
                low = np.array([p[0] for p in pairs], dtype=np.float64)
                high = np.array([p[1] for p in pairs], dtype=np.float64)
                if not per_row:
                    low, high = np.broadcast_to(low, (n,)), np.broadcast_to(high, (n,))
                out.ranges[name] = (low, high)
        return out

    def rows(self, start: int, stop: int) -> Conditions:
        """The conditions of rows start..stop (views, no copy)."""
        stop = min(stop, self.n)
        return Conditions(
            max(stop - start, 0),
            {k: v[start:stop] for k, v in self.values.items()},
            {k: (lo[start:stop], hi[start:stop]) for k, (lo, hi) in self.ranges.items()},
        )

    def padded(self, before: int, total: int) -> Conditions:
        """These rows placed at rows before..before+n of `total` rows, the others free (a
        partly requested sample block)."""
        if before == 0 and total == self.n:
            return self
        values = {}
        for k, v in self.values.items():
            out = np.full(total, None, dtype=object)
            out[before : before + self.n] = v
            values[k] = out
        ranges = {}
        for k, (lo, hi) in self.ranges.items():
            low, high = np.full(total, np.nan), np.full(total, np.nan)
            low[before : before + self.n], high[before : before + self.n] = lo, hi
            ranges[k] = (low, high)
        return Conditions(total, values, ranges)

    def constrained(self, name: str) -> np.ndarray:
        """Bool [n]: rows on which `name` is conditioned."""
        if name in self.values:
            return np.fromiter((v is not None for v in self.values[name]), dtype=bool, count=self.n)
        low, high = self.ranges[name]
        return ~(np.isnan(low) & np.isnan(high))

    def is_point(self, name: str) -> np.ndarray:
        """Bool [n]: rows on which continuous column `name` must equal one value (low == high)."""
        low, high = self.ranges[name]
        return low == high

    def unique_rows(self) -> tuple[pd.DataFrame, np.ndarray]:
        """(distinct condition rows as a frame, index of each row's distinct row), so that a codec
        compiles a 10M-row condition with one lookup per distinct row."""
        frame = pd.DataFrame(
            {
                **{k: pd.Series(v, dtype=object) for k, v in self.values.items()},
                **{f"{k}\0low": lo for k, (lo, _) in self.ranges.items()},
                **{f"{k}\0high": hi for k, (_, hi) in self.ranges.items()},
            }
        )
        if frame.empty:
            return frame, np.zeros(self.n, dtype=np.int64)
        codes, uniques = pd.MultiIndex.from_frame(frame.astype(object).where(frame.notna(), None)).factorize()
        return frame.iloc[_first_of_each(codes, len(uniques))].reset_index(drop=True), codes.astype(np.int64)

    def __len__(self) -> int:
        return self.n


# ----------------------------------------------------------------------------------------------
# parsing one column
# ----------------------------------------------------------------------------------------------


def _column(schema: TableSchema, name: str) -> ColumnSchema:
    if name not in schema:
        raise ConfigError(f"condition on unknown column {name!r}; columns are {schema.names}")
    column = schema[name]
    if column.kind not in DISCRETE_KINDS and column.kind not in CONTINUOUS_KINDS:
        raise ConfigError(
            f"cannot condition on {name!r}: {column.kind.value} columns are not modelled (they are minted/filled)"
        )
    return column


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return not isinstance(value, str | tuple | list) and bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _discrete(value: Any, column: ColumnSchema) -> Any:
    """One categorical/boolean cell -> the typed category, None when free."""
    name = column.name
    if isinstance(value, tuple | list):
        raise ConfigError(f"condition {name}: a LOW..HIGH range needs a numeric or datetime column")
    if _is_missing(value):
        return None
    if column.kind == ColumnKind.BOOLEAN:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"condition {name}={value!r}: expected true or false")
    known = column.categories
    if known is None:  # a hand-written schema without categories: nothing to check against
        return value
    for category in known:
        if category == value and type(category) is not bool and type(value) is not bool:
            return category
    text = str(value)
    for category in known:
        if str(category) == text:
            return category
    raise ConfigError(
        f"condition {name}={value!r}: value not seen in training; known values are "
        f"{[k for k in known if k is not None][:50]}"
    )


def _column_array(parsed: list[Any], n: int, per_row: bool) -> np.ndarray:
    if per_row:
        out = np.empty(n, dtype=object)
        out[:] = parsed if parsed else []
        return out
    one = np.empty(1, dtype=object)
    one[0] = parsed[0]
    return np.broadcast_to(one, (n,))


def _distinct_ranges(cells: list[Any], column: ColumnSchema) -> list[tuple[float, float]]:
    """Each cell -> (low, high) floats, every distinct cell parsed and checked once."""
    seen: dict[Any, tuple[float, float]] = {}
    out = []
    for cell in cells:
        key = tuple(cell) if isinstance(cell, list) else cell
        try:
            hash(key)
        except TypeError:
            key = repr(cell)
        if key not in seen:
            seen[key] = _range(cell, column)
        out.append(seen[key])
    return out


def _range(cell: Any, column: ColumnSchema) -> tuple[float, float]:
    name = column.name
    if isinstance(cell, tuple | list):
        if len(cell) != 2:
            raise ConfigError(f"condition {name}: a range is (low, high), exactly two ends, got {cell!r}")
        low, high = to_units(cell[0], column), to_units(cell[1], column)
        shown = f"{cell[0]}..{cell[1]}"
    elif _is_missing(cell):
        return math.nan, math.nan
    else:
        low = high = to_units(cell, column)
        shown = str(cell)
    if not math.isnan(low) and not math.isnan(high) and low > high:
        raise ConfigError(f"condition {name}={shown}: low {cell[0]} is above high {cell[1]}")
    if column.kind == ColumnKind.INTEGER and not math.isnan(low) and not math.isnan(high) and (
        math.ceil(low) > math.floor(high)
    ):
        raise ConfigError(f"condition {name}={shown}: no integer lies in this range ({name!r} is an integer column)")
    lo_bound, hi_bound = to_units(column.min, column), to_units(column.max, column)
    if (not math.isnan(low) and not math.isnan(hi_bound) and low > hi_bound) or (
        not math.isnan(high) and not math.isnan(lo_bound) and high < lo_bound
    ):
        raise ConfigError(
            f"condition {name}={shown} lies outside the training range {column.min}..{column.max}"
        )
    return low, high


def to_units(value: Any, column: ColumnSchema) -> float:
    """A number, numeric string, or datetime (string or Timestamp) -> float64 in the column's
    units (datetimes: seconds since the epoch of the naive wall clock in the column's zone);
    None/NaN/empty -> NaN."""
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return math.nan
    if column.kind == ColumnKind.DATETIME:
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"condition {column.name}={value!r}: not a date/time") from None
        if stamp is pd.NaT:
            return math.nan
        return wall_clock(stamp, column).value / 1e9
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"condition {column.name}={value!r}: not a number") from None


def wall_clock(stamp: pd.Timestamp, column: ColumnSchema) -> pd.Timestamp:
    """The naive wall-clock time of `stamp` in the column's zone (UTC for naive columns); a naive
    stamp already is a wall-clock time in that zone."""
    if stamp.tz is None:
        return stamp
    return stamp.tz_convert(column.timezone or "UTC").tz_localize(None)


def from_units(seconds: float, column: ColumnSchema) -> pd.Timestamp:
    """Inverse of `to_units` for datetime columns: a naive wall-clock Timestamp, rounded to the
    microsecond (float64 seconds hold that exactly; nanoseconds they do not)."""
    return pd.Timestamp(round(seconds * 1e6), unit="us")


def _first_of_each(codes: np.ndarray, count: int) -> np.ndarray:
    """Index of the first row carrying each of the `count` distinct codes."""
    first = np.full(count, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first
