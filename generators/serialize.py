"""One conversion of numpy, pandas and standard-library values to JSON, used by every writer.

Why one: model.json, checkpoints, Parquet metadata, the registry and report.json all store the
same kinds of values (numpy scalars, timestamps, enums, paths). Seven private copies used to
disagree on NaN and timestamps; a value then read back differently depending on who wrote it.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(value: Any, finite: bool = False) -> Any:
    """Plain JSON types, recursively. With `finite`, NaN and infinities become None (strict JSON
    for browsers and GX); otherwise floats pass through as Python's json writes them."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_jsonable(v, finite) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, finite) for v in value]
    if isinstance(value, set | frozenset):
        return [to_jsonable(v, finite) for v in sorted(value, key=str)]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v, finite) for v in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(r, finite) for r in value.to_dict(orient="records")]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if finite and not math.isfinite(value) else value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_jsonable(value.value, finite)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def dumps(value: Any, finite: bool = False, **kwargs: Any) -> str:
    """json.dumps of `to_jsonable(value)`; keyword arguments go to json.dumps."""
    kwargs.setdefault("ensure_ascii", False)
    return json.dumps(to_jsonable(value, finite), **kwargs)
