"""The canonical form of a row, and a 64-bit key per row, shared by training and validation.

Real and synthetic tables rarely share dtypes exactly (a nullable integer read back from Parquet
as float, booleans as objects, categories as strings or ints). Two rows are the same row when
their canonical forms are equal: floats for numbers and datetimes (seconds since the epoch, UTC),
canonical string labels for categories and booleans. It lives in generators/ because the
training loop's copy guard needs it and imports run flows -> validators -> generators; the
validators' checks (validators/encoding.py) use the same functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthpipe.generators.schema import ColumnKind, ColumnSchema

NUMERIC_KINDS = (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME)
NULL_LABEL = "<null>"


def is_numeric(column: ColumnSchema) -> bool:
    return column.kind in NUMERIC_KINDS


def numeric_values(series: pd.Series, column: ColumnSchema) -> np.ndarray:
    """A float array (NaN for nulls and unparseable values); datetimes as seconds since the epoch."""
    if column.kind == ColumnKind.DATETIME:
        as_dt = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        out = as_dt.astype("int64").to_numpy(dtype=float) / 1e9
        out[as_dt.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _canonical(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def labels(series: pd.Series) -> np.ndarray:
    """Canonical string labels (1 and 1.0 alike, True and 'True' alike), NULL_LABEL for nulls."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    canon = np.array([_canonical(u) for u in uniques] + [NULL_LABEL], dtype=object)
    return canon[np.where(codes < 0, len(uniques), codes)]


def row_keys(frame: pd.DataFrame, columns: list[ColumnSchema]) -> np.ndarray:
    """A 64-bit hash per row over the canonical form of `columns` (equal rows, equal keys)."""
    canonical = {}
    for column in columns:
        if is_numeric(column):
            canonical[column.name] = numeric_values(frame[column.name], column)
        else:
            canonical[column.name] = labels(frame[column.name])
    return pd.util.hash_pandas_object(pd.DataFrame(canonical), index=False).to_numpy()
