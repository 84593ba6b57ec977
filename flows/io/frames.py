"""Arrow -> pandas without losing a value, and the one content hash of a frame.

Why: pandas would turn integers with nulls into float64 (which cannot hold every int64) and
booleans with nulls into object; every reader (CSV, Parquet, SQL, the reservoir samples) goes
through `arrow_to_pandas` so they all agree on dtypes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd
import pyarrow as pa

from synthpipe.generators.errors import DataError

_NULLABLE_INT = {
    pa.int8(): "Int8", pa.int16(): "Int16", pa.int32(): "Int32", pa.int64(): "Int64",
    pa.uint8(): "UInt8", pa.uint16(): "UInt16", pa.uint32(): "UInt32", pa.uint64(): "UInt64",
}



def arrow_to_pandas(table: pa.Table, label: str) -> pd.DataFrame:
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
    check_unique_names(list(df.columns), label)
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



def check_unique_names(names: list[str], label: str) -> None:
    seen, dupes = set(), []
    for n in names:
        if n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    if dupes:
        raise DataError(f"{label} has duplicate column names: {dupes}; rename them so each is unique")



def frame_hash(df: pd.DataFrame) -> str:
    """A content hash of a table: column names, dtypes and values (row order matters).

    The one frame hash of the project (the registry's fingerprint and SQL provenance use it).
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    if len(df.columns):
        try:
            rows = pd.util.hash_pandas_object(df, index=False)
        except TypeError:  # unhashable cells (lists, dicts from JSON columns): hash their text
            rows = pd.util.hash_pandas_object(df.astype(str), index=False)
        digest.update(rows.to_numpy().tobytes())
    digest.update(str(len(df)).encode())
    return digest.hexdigest()
