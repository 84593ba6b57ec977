"""What each column of a table is, inferred from the data and overridable by the user.

The schema is plain data (`to_dict`/`from_dict` round-trip through JSON) so that it can be
stored next to a model, in Parquet metadata and in reports, and edited by hand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from synthpipe.generators.errors import ConfigError, DataError

if TYPE_CHECKING:
    from synthpipe.generators.profile import ColumnProfile, TableProfile


class ColumnKind(StrEnum):
    NUMERICAL = "numerical"
    INTEGER = "integer"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    ID = "id"
    CONSTANT = "constant"


CONTINUOUS_KINDS = (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME)

# An integer column with at most this many distinct values is modelled as categorical:
# codes such as 0/1 flags or 1..5 ratings are categories, not magnitudes.
LOW_CARDINALITY_INTEGER = 5
# Fewer rows than this and "every value distinct" says nothing about being an identifier.
MIN_ROWS_FOR_ID = 20
# Widest table accepted (SYNTHPIPE_MAX_COLUMNS overrides it): pair-wise checks grow with its square.
MAX_COLUMNS = 1_000
_ID_NAME = re.compile(r"(^|_|\b)(id|uuid|guid|key|rownames?|index)$", re.IGNORECASE)


@dataclass
class ColumnSchema:
    """One column: its kind, how to restore its dtype, and what values it may take."""

    name: str
    kind: ColumnKind
    dtype: str
    nullable: bool = False
    null_fraction: float = 0.0
    min: Any = None
    max: Any = None
    categories: list[Any] | None = None
    ordered: bool = False
    decimals: int | None = None
    timezone: str | None = None
    constant_value: Any = None
    id_format: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        return {k: _jsonable(v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSchema:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"column {data.get('name')!r}: unknown schema field(s) {sorted(unknown)}; "
                f"known fields are {sorted(known)}"
            )
        values = dict(data)
        try:
            values["kind"] = ColumnKind(values["kind"])
        except ValueError:
            raise ConfigError(
                f"column {data.get('name')!r}: unknown kind {values['kind']!r}; "
                f"choose one of {[k.value for k in ColumnKind]}"
            ) from None
        return cls(**values)


class NamedColumns:
    """Lookup by column name for a table description with a `columns` list (schema, profile)."""

    columns: list[Any]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> Any:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)


@dataclass
class TableSchema(NamedColumns):
    columns: list[ColumnSchema] = field(default_factory=list)

    def of_kind(self, *kinds: ColumnKind) -> list[ColumnSchema]:
        return [c for c in self.columns if c.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls([ColumnSchema.from_dict(c) for c in data["columns"]])

    def check_compatible(self, df: pd.DataFrame, what: str = "table") -> None:
        """Raise a DataError naming the columns that `df` lacks compared with this schema."""
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise DataError(f"{what} lacks column(s) {missing} that the schema expects")


# Override keys that configure ingest, not the column's schema (read by flows/io/scan.py).
INGEST_OVERRIDES = {"on_infinite": ("null", "error")}


# Largest |value| of a numerical column that the models can represent: spreads and squares of
# larger values overflow float64 in mixtures, quantile bins and the validators' classifiers.
MAX_MAGNITUDE = 1e150


def check_magnitude(name: str, values: np.ndarray) -> None:
    """Refuse values beyond +-MAX_MAGNITUDE (or infinite) in a numeric column, naming it: the one
    check every codec calls before it fits, so no model trains on an overflow."""
    finite = values[~np.isnan(values)]
    big = np.abs(finite) > MAX_MAGNITUDE
    if big.any():
        raise DataError(
            f"column {name!r}: {int(big.sum())} value(s) such as {float(finite[big][0])!r} are infinite or "
            f"beyond +-{MAX_MAGNITUDE:g}, which the models cannot represent; rescale or drop the column"
        )


def max_columns() -> int:
    """MAX_COLUMNS, or SYNTHPIPE_MAX_COLUMNS from the environment."""
    value = os.environ.get("SYNTHPIPE_MAX_COLUMNS", "")
    if value and not value.isdigit():
        raise ConfigError(f"SYNTHPIPE_MAX_COLUMNS must be a whole number, got {value!r}")
    return int(value) if value else MAX_COLUMNS


def check_width(df: pd.DataFrame, what: str = "the table") -> None:
    """Refuse tables wider than max_columns(): validation compares every pair of columns, so a
    5,000-column table would run for hours; say so at once, with the way to allow it."""
    limit = max_columns()
    if df.shape[1] > limit:
        raise DataError(
            f"{what} has {df.shape[1]} columns, above the limit of {limit} (validation compares every pair of "
            f"columns); select fewer columns, or raise the limit with SYNTHPIPE_MAX_COLUMNS={df.shape[1]}"
        )


def infer_schema(
    df: pd.DataFrame,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    profile: TableProfile | None = None,
) -> TableSchema:
    """Infer a kind, dtype, nullability, bounds and categories for every column of `df`.

    `overrides` maps a column name to schema fields that replace the inferred ones (for example
    ``{"zip": {"kind": "categorical"}}``); values the override leaves out are re-inferred for the
    new kind, so overriding a kind alone is enough. `on_infinite` ("null" or "error") is accepted
    too; it tells ingest what to do with inf / -inf and is not stored in the schema.

    With `profile` (the whole-table profile of the table `df` was sampled from), null rates,
    bounds and categories come from the whole table, so a rare category or an extreme value that
    the sample missed is still in the schema; kinds and formats are still read from `df`.
    """
    check_width(df)
    if df.columns.duplicated().any():
        dupes = sorted(set(df.columns[df.columns.duplicated()].astype(str)))
        raise DataError(f"the table has duplicate column names: {dupes}")
    overrides = dict(overrides or {})
    unknown = [name for name in overrides if name not in df.columns]
    if unknown:
        raise ConfigError(
            f"schema override names column(s) {unknown} that are not in the table; "
            f"its columns are {list(map(str, df.columns))}"
        )
    columns = []
    for name in df.columns:
        override = dict(overrides.get(name, {}))
        for key, allowed in INGEST_OVERRIDES.items():
            if key in override and override.pop(key) not in allowed:
                raise ConfigError(f"column {name!r}: {key} must be one of {list(allowed)}")
        kind = override.pop("kind", None)
        whole = profile[name] if profile is not None and name in profile else None
        column = infer_column(
            df[name], kind=ColumnKind(kind) if kind else None, whole=whole, rows=profile.rows if profile else 0
        )
        for key, value in override.items():
            if not hasattr(column, key):
                raise ConfigError(f"column {name!r}: unknown schema field {key!r} in override")
            setattr(column, key, value)
        columns.append(column)
    return TableSchema(columns)


def infer_column(
    series: pd.Series, kind: ColumnKind | None = None, whole: ColumnProfile | None = None, rows: int = 0
) -> ColumnSchema:
    """Infer one column's schema; `kind` forces the kind and infers the rest for it.

    `whole` is the column's whole-table profile (`rows` rows): see `infer_schema`.
    """
    name = str(series.name)
    n = len(series)
    nulls = int(series.isna().sum())
    if whole is not None and rows:
        n, nulls = rows, whole.nulls
    column = ColumnSchema(
        name=name,
        kind=ColumnKind.CONSTANT,
        dtype=str(series.dtype),
        nullable=nulls > 0,
        null_fraction=nulls / n if n else 0.0,
    )
    values = series.dropna()
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        column.timezone = str(series.dtype.tz)
    kind = kind or _infer_kind(series, values, whole)
    column.kind = kind
    if kind == ColumnKind.CONSTANT:
        column.constant_value = _jsonable(values.iloc[0]) if len(values) else None
    elif kind == ColumnKind.ID:
        from synthpipe.generators.ids import learn_id_format

        column.id_format = learn_id_format(values)
    elif kind == ColumnKind.BOOLEAN:
        column.categories = [False, True]
    elif kind == ColumnKind.CATEGORICAL:
        if isinstance(series.dtype, pd.CategoricalDtype):
            column.categories = [_jsonable(c) for c in series.dtype.categories]
            column.ordered = bool(series.dtype.ordered)
        else:
            # Most frequent first; ties broken by value so inference is deterministic.
            counts = values.value_counts(sort=False)
            order = sorted(range(len(counts)), key=lambda i: (-counts.iloc[i], str(counts.index[i])))
            column.categories = [_jsonable(counts.index[i]) for i in order]
            if whole is not None and whole.categories is not None:
                column.categories = _whole_categories(whole, column.categories)
    elif kind == ColumnKind.DATETIME:
        as_dt = _to_datetime(series, name)
        valid = as_dt.dropna()
        if len(valid):
            column.min, column.max = valid.min().isoformat(), valid.max().isoformat()
        if whole is not None and whole.min is not None and _is_temporal(whole.type):
            column.min, column.max = (_stamp(v, series.dtype).isoformat() for v in (whole.min, whole.max))
    else:  # numerical, integer
        numeric = pd.to_numeric(values, errors="coerce")
        bad = int(numeric.isna().sum())
        if bad:
            example = values[numeric.isna()].iloc[0]
            raise DataError(
                f"column {name!r} is declared {kind.value} but has {bad} non-numeric value(s), e.g. {example!r}"
            )
        if len(numeric):
            lo, hi = numeric.min(), numeric.max()
            if whole is not None and whole.min is not None and _is_numeric(whole.type):
                lo, hi = whole.min, whole.max
            column.min = int(lo) if kind == ColumnKind.INTEGER else float(lo)
            column.max = int(hi) if kind == ColumnKind.INTEGER else float(hi)
        if kind == ColumnKind.NUMERICAL:
            column.decimals = _decimals(numeric.to_numpy(dtype=float))
    return column


def _infer_kind(series: pd.Series, values: pd.Series, whole: ColumnProfile | None = None) -> ColumnKind:
    dtype = series.dtype
    if len(values) == 0:
        return ColumnKind.CONSTANT
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnKind.BOOLEAN
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnKind.DATETIME
    n_unique = values.nunique()
    # the whole table may hold values (or nulls) that the sample missed
    whole_unique = n_unique if whole is None else max(n_unique, whole.distinct + int(whole.distinct_capped))
    if n_unique == 1 and len(values) == len(series) and whole_unique == 1 and not (whole and whole.nulls):
        return ColumnKind.CONSTANT
    all_distinct = n_unique == len(series) and len(series) >= MIN_ROWS_FOR_ID
    if pd.api.types.is_integer_dtype(dtype):
        if all_distinct and (_ID_NAME.search(str(series.name)) or _is_sequence(values)):
            return ColumnKind.ID
        return ColumnKind.CATEGORICAL if whole_unique <= LOW_CARDINALITY_INTEGER else ColumnKind.INTEGER
    if pd.api.types.is_float_dtype(dtype):
        return ColumnKind.NUMERICAL
    # object / string: booleans stored as objects, otherwise labels or identifiers
    if set(values.unique().tolist()) <= {True, False}:
        return ColumnKind.BOOLEAN
    if all_distinct:
        return ColumnKind.ID
    return ColumnKind.CATEGORICAL


def _whole_categories(whole: ColumnProfile, sampled: list[Any]) -> list[Any]:
    """The whole table's categories by frequency; when its list was cut at max_categories, the
    sample's other values follow (in the sample's order)."""
    categories = list(whole.categories or [])
    if whole.frequencies_truncated:
        known = set(categories)
        categories += [c for c in sampled if c not in known]
    return categories


def _is_numeric(arrow_type: str) -> bool:
    return arrow_type.startswith(("int", "uint", "double", "float", "halffloat", "decimal"))


def _is_temporal(arrow_type: str) -> bool:
    return arrow_type.startswith(("timestamp", "date"))


def _stamp(value: Any, dtype: Any) -> pd.Timestamp:
    """A profile's min/max as a Timestamp in the column's own zone (naive stays naive)."""
    stamp = pd.Timestamp(value)
    tz = getattr(dtype, "tz", None)
    if tz is not None:
        return stamp.tz_localize("UTC").tz_convert(tz) if stamp.tzinfo is None else stamp.tz_convert(tz)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def _is_sequence(values: pd.Series) -> bool:
    """True for integer keys such as 1..n (possibly shuffled, possibly with gaps under 2x)."""
    lo, hi = int(values.min()), int(values.max())
    return hi - lo + 1 <= 2 * len(values)


def _decimals(values: np.ndarray, max_decimals: int = 6) -> int | None:
    """Fewest decimals that represent every value (None when they need more than max_decimals)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    sample = finite[: 10_000]
    for d in range(max_decimals + 1):
        scaled = sample * 10**d
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6 * max(1.0, 10**d)):
            return d
    return None


def _to_datetime(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series
    try:
        return pd.to_datetime(series, errors="raise", format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"column {name!r} is declared datetime but cannot be parsed: {exc}") from None


def _jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars to plain JSON types (timestamps as ISO strings)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, ColumnKind):
        return value.value
    return value
