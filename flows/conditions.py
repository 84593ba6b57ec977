"""The command line's condition syntax: `COL=VALUE` and `COL=LOW..HIGH` (open ends allowed).

Only the text syntax lives here; typing the values against the schema and every check on them
is `synthpipe.generators.conditions.Conditions.parse`, which the generators call.
"""

from __future__ import annotations

from typing import Any

from synthpipe.generators.conditions import Conditions
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import TableSchema

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
    """Check `conditions` against the schema now, before any output is staged, and return them
    as given: the generator's `Conditions.parse` (the one place that types and checks them)
    reads the same strings again when it samples."""
    Conditions.parse(conditions, schema, 1)
    return dict(conditions)
