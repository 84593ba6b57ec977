"""Datasets for fine-tuning a downstream model: train/val/test splits, class-balanced tables and
real-plus-synthetic augmentation with a provenance column.

These are plain pandas functions; the pipeline decides what to write where. Splits are exact (the
sizes add up to the table's rows, by largest remainder) and seeded, and `split_labels` assigns one
chunk at a time so that a table sampled and written in chunks can be split without holding it all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.errors import ConfigError, DataError

SOURCE_COLUMN = "_synthpipe_source"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # becomes a directory name
_TOLERANCE = 1e-6


# ---- splits ----------------------------------------------------------------------------------------


def parse_split_spec(text: str) -> dict[str, float]:
    """`"train=0.8,val=0.1,test=0.1"` -> {"train": 0.8, "val": 0.1, "test": 0.1} (order kept).

    Fractions must be positive and add up to 1; names must be usable as directory names.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("--split: empty split specification; expected e.g. train=0.8,val=0.1,test=0.1")
    spec: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ConfigError(f"--split: {part!r} is not NAME=FRACTION (e.g. train=0.8,val=0.1,test=0.1)")
        try:
            fraction = float(value)
        except ValueError:
            raise ConfigError(f"--split: fraction {value!r} for {name!r} is not a number") from None
        if name in spec:
            raise ConfigError(f"--split: split {name!r} is given twice")
        spec[name] = fraction
    return validate_split_spec(spec)


def validate_split_spec(spec: Mapping[str, Any]) -> dict[str, float]:
    """Check a split mapping (from the CLI or a config file's `split:`); returns it as floats."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError("split: give at least one NAME=FRACTION, e.g. train=0.8,val=0.1,test=0.1")
    out: dict[str, float] = {}
    for name, value in spec.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            raise ConfigError(
                f"split: name {name!r} must start with a letter or digit and hold only letters, digits, . _ -"
            )
        try:
            fraction = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"split: fraction {value!r} for {name!r} is not a number") from None
        if not math.isfinite(fraction) or fraction <= 0 or fraction > 1:
            raise ConfigError(f"split: fraction for {name!r} must be in (0, 1], got {value!r}")
        out[name] = fraction
    total = sum(out.values())
    if abs(total - 1.0) > _TOLERANCE:
        listing = ", ".join(f"{k}={v:g}" for k, v in out.items())
        raise ConfigError(f"split: fractions must add up to 1, but {listing} add up to {total:g}")
    return out


def split_sizes(n: int, spec: Mapping[str, float]) -> dict[str, int]:
    """Rows per split for `n` rows: floor of each share, the remainder to the largest fractions."""
    spec = validate_split_spec(spec)
    exact = {k: n * v for k, v in spec.items()}
    sizes = {k: int(math.floor(x)) for k, x in exact.items()}
    leftover = n - sum(sizes.values())
    by_remainder = sorted(spec, key=lambda k: (-(exact[k] - sizes[k]), list(spec).index(k)))
    for name in by_remainder[:leftover]:
        sizes[name] += 1
    return sizes


def split_labels(n: int, spec: Mapping[str, float], seed: int) -> np.ndarray:
    """A split name per row for `n` rows, exact sizes, in a seeded random order.

    For chunked output call it once per chunk with a per-chunk seed (e.g. derive_seed(seed, i)).
    """
    sizes = split_sizes(n, spec)
    labels = np.repeat(np.array(list(sizes), dtype=object), list(sizes.values()))
    return np.random.default_rng(seed).permutation(labels)


def split_table(
    df: pd.DataFrame, spec: Mapping[str, float], seed: int = 0, *, stratify: str | None = None
) -> dict[str, pd.DataFrame]:
    """Split `df` into disjoint tables with the given shares (exact sizes, seeded).

    With `stratify`, each class of that column is split separately, so every split keeps the
    class proportions. Rows keep their original order within each split; indexes are reset.
    """
    spec = validate_split_spec(spec)
    if stratify is None:
        labels = split_labels(len(df), spec, seed)
    else:
        if stratify not in df.columns:
            raise ConfigError(f"split: stratify column {stratify!r} is not in the table")
        labels = np.empty(len(df), dtype=object)
        keys = df[stratify].astype(object).where(df[stratify].notna(), "\0null").to_numpy()
        for i, key in enumerate(pd.unique(keys)):
            where = np.flatnonzero(keys == key)
            labels[where] = split_labels(len(where), spec, seed + 7919 * (i + 1))
    return {name: df[labels == name].reset_index(drop=True) for name in spec}


# ---- class balance -----------------------------------------------------------------------------------


def balanced_conditions(schema_or_categories: Any, column: str, n: int, seed: int = 0) -> pd.DataFrame:
    """One condition row per sampled row so that exact conditional sampling emits a table in
    which every class of `column` appears n // k or n // k + 1 times (k classes).

    `schema_or_categories` is a TableSchema, its `to_dict()` form, or the list of classes itself.
    Pass the result to `generator.sample(n, conditions=frame)`. Rows are shuffled (seeded) so each
    sampled chunk holds a mix of classes.
    """
    categories, kind = _categories_of(schema_or_categories, column)
    if n < 0:
        raise ConfigError(f"--balance: rows must be >= 0, got {n}")
    if not categories:
        raise ConfigError(f"--balance {column}: the column has no classes to balance")
    k = len(categories)
    counts = [n // k + (1 if i < n % k else 0) for i in range(k)]
    values = np.repeat(np.array(categories, dtype=object), counts)
    values = np.random.default_rng(seed).permutation(values)
    series = pd.Series(values, name=column)
    if kind == "boolean":
        series = series.astype(bool)
    elif all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in categories):
        series = series.astype("int64")
    return series.to_frame()


def _categories_of(source: Any, column: str) -> tuple[list[Any], str]:
    """(classes without the null class, kind) for `column` from a schema, schema dict or list."""
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return [c for c in source if not _is_null(c)], "categorical"
    if hasattr(source, "to_dict") and hasattr(source, "columns"):
        source = source.to_dict()
    if isinstance(source, Mapping) and "columns" in source:
        for col in source["columns"]:
            if col["name"] == column:
                kind = str(col["kind"])
                if kind == "boolean":
                    return [False, True], kind
                if kind != "categorical":
                    raise ConfigError(
                        f"--balance {column}: the column is {kind}, not categorical or boolean; "
                        "balance a column of classes"
                    )
                return [c for c in (col.get("categories") or []) if not _is_null(c)], kind
        names = [c["name"] for c in source["columns"]]
        raise ConfigError(f"--balance: column {column!r} is not in the table; columns are {names}")
    raise TypeError(
        f"expected a TableSchema, its dict form or a list of classes, got {type(source).__name__}"
    )


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---- augmentation ------------------------------------------------------------------------------------


def augment(
    real: pd.DataFrame, synthetic: pd.DataFrame, *, shuffle: bool = False, seed: int = 0
) -> pd.DataFrame:
    """Real rows then synthetic rows, in the real table's column order and dtypes, with a
    `_synthpipe_source` column ("real" / "synthetic", a categorical) saying where each came from.

    A synthetic column whose values do not fit the real dtype (e.g. NULLs in an int64 column)
    gets the common dtype of both (Int64 there). With `shuffle`, rows are mixed (seeded).
    """
    if SOURCE_COLUMN in real.columns or SOURCE_COLUMN in synthetic.columns:
        raise DataError(f"the table already has a {SOURCE_COLUMN!r} column; --augment cannot add it")
    missing = [c for c in real.columns if c not in synthetic.columns]
    extra = [c for c in synthetic.columns if c not in real.columns]
    if missing or extra:
        raise DataError(
            f"--augment: the synthetic table's columns differ from the real table's "
            f"(missing {missing}, unexpected {extra})"
        )
    synthetic = synthetic[list(real.columns)]
    left, right = {}, {}
    for name in real.columns:
        left[name], right[name] = _align(real[name], synthetic[name])
    frames = [pd.DataFrame(left, index=range(len(real))), pd.DataFrame(right, index=range(len(synthetic)))]
    out = pd.concat(frames, ignore_index=True)
    out[SOURCE_COLUMN] = pd.Categorical(
        ["real"] * len(real) + ["synthetic"] * len(synthetic), categories=["real", "synthetic"]
    )
    if shuffle:
        out = out.iloc[np.random.default_rng(seed).permutation(len(out))].reset_index(drop=True)
    return out


def _align(real: pd.Series, synth: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Give both columns one dtype, the real one wherever the synthetic values fit it."""
    real, synth = real.reset_index(drop=True), synth.reset_index(drop=True)
    if real.dtype == synth.dtype and not isinstance(real.dtype, pd.CategoricalDtype):
        return real, synth
    if isinstance(real.dtype, pd.CategoricalDtype):
        known = list(real.dtype.categories)
        values = synth.astype(object) if isinstance(synth.dtype, pd.CategoricalDtype) else synth
        new = [v for v in pd.unique(values.dropna()) if v not in set(known)]
        dtype = pd.CategoricalDtype(known + new, ordered=real.dtype.ordered)
        return real.astype(dtype), values.astype(dtype)
    try:
        cast = synth.astype(real.dtype)
        if cast.isna().equals(synth.isna()):
            if not pd.api.types.is_numeric_dtype(real.dtype) or _same_numbers(synth, cast):
                return real, cast
    except (TypeError, ValueError, OverflowError):
        pass
    common = _common_dtype(real, synth)
    return real.astype(common), synth.astype(common)


def _same_numbers(before: pd.Series, after: pd.Series) -> bool:
    """True when a numeric cast lost nothing (no 2.5 -> 2)."""
    try:
        a = pd.to_numeric(before, errors="coerce").astype("float64")
        b = pd.to_numeric(after, errors="coerce").astype("float64")
    except (TypeError, ValueError):
        return False
    return bool(np.allclose(a.fillna(0).to_numpy(), b.fillna(0).to_numpy(), rtol=0, atol=0))


def _common_dtype(real: pd.Series, synth: pd.Series) -> Any:
    if pd.api.types.is_integer_dtype(real.dtype) and pd.api.types.is_float_dtype(synth.dtype):
        if _same_numbers(synth, synth.round()):
            return "Int64"  # whole numbers with NULLs
    if pd.api.types.is_bool_dtype(real.dtype) and synth.dropna().isin([True, False]).all():
        return "boolean"
    return pd.concat([real.iloc[:0], synth.iloc[:0]]).dtype
