"""Turn user-written conditions (`COL=VALUE`, `COL=LOW..HIGH`) into typed values for a schema.

Command lines and YAML give strings; a model compares against the source's typed categories
(ints, booleans, strings) and numeric or datetime ranges, so the conversion happens once here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import ColumnKind, TableSchema

RANGE_SEPARATOR = ".."


def parse_condition(text: str) -> tuple[str, Any]:
    """`age=30..40` -> ("age", ("30", "40")); `sex=female` -> ("sex", "female"); open ends are None."""
    if "=" not in text:
        raise ConfigError(f"--condition {text!r}: expected COL=VALUE or COL=LOW..HIGH")
    column, value = text.split("=", 1)
    column = column.strip()
    if not column:
        raise ConfigError(f"--condition {text!r}: the column name is empty")
    if RANGE_SEPARATOR in value:
        low, high = value.split(RANGE_SEPARATOR, 1)
        return column, (low.strip() or None, high.strip() or None)
    return column, value


def parse_conditions(texts: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in texts or []:
        column, value = parse_condition(text)
        if column in out:
            raise ConfigError(f"--condition: column {column!r} is given twice")
        out[column] = value
    return out


def coerce_conditions(conditions: dict[str, Any], schema: TableSchema) -> dict[str, Any]:
    """Convert condition values to the types of the schema's columns (strings stay strings)."""
    out = {}
    for column, value in conditions.items():
        if column not in schema:
            raise ConfigError(f"condition on unknown column {column!r}; columns are {schema.names}")
        col = schema[column]
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ConfigError(f"condition {column}: a range needs exactly two ends, got {value!r}")
            # range ends stay real numbers: 30.5..40 on an integer column must not admit 30
            kind = ColumnKind.NUMERICAL if col.kind == ColumnKind.INTEGER else col.kind
            out[column] = tuple(_coerce_scalar(v, kind, column, col.categories) for v in value)
            if col.kind not in (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME):
                raise ConfigError(f"condition {column}: a LOW..HIGH range needs a numeric or datetime column")
        else:
            out[column] = _coerce_scalar(value, col.kind, column, col.categories)
    return out


def _coerce_scalar(value: Any, kind: ColumnKind, column: str, categories: list[Any] | None) -> Any:
    if value is None or not isinstance(value, str):
        return value
    if kind == ColumnKind.BOOLEAN:
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(f"condition {column}={value!r}: expected true or false")
    if kind == ColumnKind.CATEGORICAL:
        for category in categories or []:
            if str(category) == value:
                return category
        return value  # unknown: the generator reports it with the known values
    if kind in (ColumnKind.NUMERICAL, ColumnKind.INTEGER):
        try:
            return float(value) if kind == ColumnKind.NUMERICAL else int(float(value))
        except ValueError:
            raise ConfigError(f"condition {column}={value!r}: not a number") from None
    if kind == ColumnKind.DATETIME:
        try:
            return pd.Timestamp(value)
        except ValueError:
            raise ConfigError(f"condition {column}={value!r}: not a date/time") from None
    return value
