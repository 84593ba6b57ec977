"""Restoring what a codec does not model, and the source's dtypes, at decode time.

Shared by every codec (mode-specific and tokenising) so that a decoded table looks the same
whatever the family: identifier columns get fresh IDs numbered by absolute row position,
constant columns their constant, integers are rounded, clipped to the training range and kept
nullable where needed, categoricals get their categorical dtype (categories and order) back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.ids import generate_ids
from synthpipe.generators.schema import ColumnKind, ColumnSchema, TableSchema

UNMODELLED_KINDS = (ColumnKind.ID, ColumnKind.CONSTANT)


def assemble(
    schema: TableSchema,
    decoded: Mapping[str, pd.Series],
    n: int,
    rng: np.random.Generator,
    start_index: int = 0,
) -> pd.DataFrame:
    """The modelled columns in `decoded`, plus fresh IDs and constants, in the schema's order."""
    out = {}
    for column in schema.columns:
        if column.kind == ColumnKind.ID:
            out[column.name] = restore_ids(generate_ids(column.id_format, n, start_index, rng), column)
        elif column.kind == ColumnKind.CONSTANT:
            out[column.name] = restore_constant(column, n)
        else:
            out[column.name] = decoded[column.name].reset_index(drop=True)
    return pd.DataFrame(out, columns=schema.names)


def restore_integer(x: np.ndarray, null: np.ndarray, col: ColumnSchema) -> pd.Series:
    """Rounded floats -> the column's integer dtype, clipped to its training range, nullable
    (pandas' Int64 family) where a value is null."""
    dtype = col.dtype
    target = dtype if ("int" in dtype.lower()) else ("Int64" if col.nullable else "int64")
    info = np.iinfo(np.dtype(target.lower()))
    # float64 cannot hold every int64; keep clear of the edges before the cast
    x = np.clip(np.nan_to_num(x), float(info.min), np.nextafter(float(info.max), 0))
    ints = x.astype(np.dtype(target.lower()))
    if col.min is not None:
        ints = np.clip(ints, col.min, col.max).astype(np.dtype(target.lower()))
    if null.any():
        nullable = target if target[0].isupper() else target.capitalize()
        return pd.Series(pd.array(ints, dtype=nullable), name=col.name).mask(null)
    return pd.Series(ints, name=col.name).astype(target)


def restore_number(x: np.ndarray, null: np.ndarray, col: ColumnSchema) -> pd.Series:
    """Float values of a numerical or integer column -> the column's dtype: clipped to its
    range, integers restored exactly, decimals rounded as in the source, nulls where `null`.
    Every family's decoder ends here, so a number comes back the same whatever made it."""
    if col.min is not None:
        x = np.clip(x, col.min, col.max)
    if col.kind == ColumnKind.INTEGER:
        return restore_integer(np.round(x), null, col)
    if col.decimals is not None:
        x = np.round(x, col.decimals)
    x = np.where(null, np.nan, x)
    return pd.Series(x, name=col.name).astype(col.dtype if col.dtype.lower().startswith("float") else "float64")


def restore_categorical(values: np.ndarray, col: ColumnSchema) -> pd.Series:
    """Typed category values (object array, None = null) -> the column's dtype."""
    dtype = col.dtype
    s = pd.Series(values, name=col.name, dtype=object)
    if dtype == "category":
        cats = col.categories or [v for v in pd.unique(s.dropna())]
        return pd.Series(pd.Categorical(s, categories=cats, ordered=col.ordered), name=col.name)
    null = s.isna()
    if col.kind == ColumnKind.BOOLEAN:
        if dtype == "bool" and not null.any():
            return s.astype(bool)
        return s.astype("boolean") if dtype in ("bool", "boolean") else s
    if dtype in ("object", "string", "str") or dtype.startswith("string"):
        return s.astype(dtype) if dtype != "object" else s
    if null.any() and "int" in dtype.lower():
        dtype = dtype.capitalize() if dtype.islower() else dtype
    return _as_dtype_or_kept(s, dtype)


def _as_dtype_or_kept(s: pd.Series, dtype: str) -> pd.Series:
    """`s` as `dtype`, or `s` as it is when the values do not fit that dtype (a saved dtype the
    generated values cannot take is not worth failing a sample over)."""
    try:
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s


def restore_ids(ids: list[Any], col: ColumnSchema) -> pd.Series:
    return _as_dtype_or_kept(pd.Series(ids, name=col.name), col.dtype)


def restore_constant(col: ColumnSchema, n: int) -> pd.Series:
    value = col.constant_value
    if col.kind == ColumnKind.CONSTANT and value is not None and col.dtype.startswith("datetime64"):
        value = pd.Timestamp(value)
    return _as_dtype_or_kept(pd.Series([value] * n, name=col.name, dtype=object), col.dtype)


def datetime_unit(values: pd.Series) -> str | None:
    """The coarsest unit (D, s, ms) that every datetime of the source respects, on its local wall
    clock, so that decoded datetimes are rounded as the source was recorded."""
    if len(values) == 0:
        return None
    dt = values if pd.api.types.is_datetime64_any_dtype(values.dtype) else pd.to_datetime(
        values, errors="coerce", format="mixed"
    )
    if getattr(dt.dtype, "tz", None) is not None:
        dt = dt.dt.tz_localize(None)  # the local wall clock
    ns = dt.dropna().to_numpy(dtype="datetime64[ns]").astype("int64")
    for unit, step in (("D", 86_400 * 10**9), ("s", 10**9), ("ms", 10**6)):
        if np.all(ns % step == 0):
            return unit
    return None
