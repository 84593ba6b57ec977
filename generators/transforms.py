"""Reversible, vectorised encoding of a table into what neural generators consume.

Numerical, integer and datetime columns get mode-specific normalisation (as in CTGAN): a 1-D
Gaussian mixture is fitted by vectorised EM on a bounded subsample, and each value becomes
(which mode, position within the mode). Categoricals and booleans become categories; nulls get
their own category or indicator. Identifier and constant columns are not encoded: they are
restored at decode time (fresh IDs, the constant).

The encoded table is kept compact: a float matrix of continuous values and an integer matrix of
discrete codes. One-hot vectors are built per batch on the device (`to_dense`), so memory does
not grow with the number of categories times the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from synthpipe.generators.restore import (
    assemble,
    datetime_unit,
    restore_categorical,
    restore_constant,
    restore_ids,
    restore_integer,
)
from synthpipe.generators.schema import ColumnKind, ColumnSchema, TableSchema

OTHER = "__synthpipe_other__"  # bucket for categories beyond max_categories

# The restore helpers under their former private names, for autoregressive.py until it imports
# them from generators/restore.py.
_restore_categorical, _restore_constant, _restore_ids = restore_categorical, restore_constant, restore_ids


@dataclass
class Span:
    """One block of the dense layout: a continuous value or a group of mutually exclusive classes."""

    column: str
    role: Literal["value", "mode", "null", "category"]
    start: int
    width: int
    index: int  # column of `values` (role "value") or of `codes` (other roles)

    @property
    def is_discrete(self) -> bool:
        return self.role != "value"


@dataclass
class EncodedTable:
    values: np.ndarray  # float32 [n, n_values]
    codes: np.ndarray  # int64 [n, n_codes]

    def __len__(self) -> int:
        return len(self.values) if self.values.size or not self.codes.size else len(self.codes)


# ----------------------------------------------------------------------------------------------
# 1-D Gaussian mixture by vectorised EM
# ----------------------------------------------------------------------------------------------


def fit_gmm_1d(
    x: np.ndarray, max_modes: int = 10, iters: int = 100, min_weight: float = 0.005, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a 1-D Gaussian mixture; returns (weights, means, stds), small modes pruned.

    Plain EM with quantile initialisation and a variance floor: deterministic, a few ms per
    10k values, and robust to point masses (a spike at 0 gets its own narrow mode).
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.ones(1), np.zeros(1), np.ones(1)
    center, scale = float(np.mean(x)), float(np.std(x))
    if not np.isfinite(scale) or scale == 0:
        return np.ones(1), np.array([center]), np.array([max(abs(center) * 1e-6, 1e-6)])
    z = (x - center) / scale
    distinct = np.unique(z)
    k = min(max_modes, len(distinct))
    means = np.quantile(z, (np.arange(k) + 0.5) / k)
    means = np.unique(means)
    k = len(means)
    floor = 1e-3
    stds = np.full(k, max(1.0 / k, floor))
    weights = np.full(k, 1.0 / k)
    prev = -np.inf
    zc = z[:, None]
    for _ in range(iters):
        # E-step with the max trick (np.logaddexp.reduce is several times slower)
        log_p = np.log(weights) - np.log(stds) - 0.5 * ((zc - means) / stds) ** 2
        top = log_p.max(axis=1, keepdims=True)
        resp = np.exp(log_p - top)
        total = resp.sum(axis=1, keepdims=True)
        resp /= total
        # M-step
        nk = resp.sum(axis=0) + 1e-12
        weights = nk / nk.sum()
        means = (resp * zc).sum(axis=0) / nk
        var = (resp * (zc - means) ** 2).sum(axis=0) / nk
        stds = np.sqrt(np.maximum(var, floor**2))
        ll = float(np.mean(top[:, 0] + np.log(total[:, 0])))
        if ll - prev < tol:
            break
        prev = ll
    keep = weights >= min_weight
    if not keep.any():
        keep[np.argmax(weights)] = True
    weights = weights[keep] / weights[keep].sum()
    return weights, means[keep] * scale + center, stds[keep] * scale


def _component_log_prob(x: np.ndarray, weights: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    return (
        np.log(weights)[None, :]
        - np.log(stds)[None, :]
        - 0.5 * np.log(2 * np.pi)
        - 0.5 * ((x[:, None] - means[None, :]) / stds[None, :]) ** 2
    )


# ----------------------------------------------------------------------------------------------
# Per-column encoders
# ----------------------------------------------------------------------------------------------


@dataclass
class ContinuousEncoder:
    """Numerical, integer or datetime column -> (value within mode, mode, [null])."""

    column: ColumnSchema
    weights: np.ndarray = field(default_factory=lambda: np.ones(1))
    means: np.ndarray = field(default_factory=lambda: np.zeros(1))
    stds: np.ndarray = field(default_factory=lambda: np.ones(1))
    datetime_unit: str | None = None  # rounding unit that the source's datetimes all respect

    n_values = 1

    @property
    def n_modes(self) -> int:
        return len(self.weights)

    @property
    def has_null(self) -> bool:
        return self.column.nullable

    def fit(self, series: pd.Series, max_rows: int, max_modes: int, rng: np.random.Generator) -> None:
        x, _ = self._to_float(series)
        x = x[~np.isnan(x)]
        if self.column.kind == ColumnKind.DATETIME:
            self.datetime_unit = datetime_unit(series.dropna())
        if len(x) > max_rows:
            x = rng.choice(x, size=max_rows, replace=False)
        self.weights, self.means, self.stds = fit_gmm_1d(x, max_modes=max_modes)

    def encode(self, series: pd.Series) -> tuple[np.ndarray, list[np.ndarray]]:
        x, null = self._to_float(series)
        filled = np.where(null, self.means[np.argmax(self.weights)], x)
        mode = np.argmax(_component_log_prob(filled, self.weights, self.means, self.stds), axis=1)
        alpha = (filled - self.means[mode]) / (4 * self.stds[mode])
        codes = [mode]
        if self.has_null:
            codes.append(null.astype(np.int64))
        return alpha[:, None].astype(np.float32), codes

    def decode(self, values: np.ndarray, codes: list[np.ndarray]) -> pd.Series:
        mode = np.clip(codes[0], 0, self.n_modes - 1)
        x = values[:, 0].astype(np.float64) * 4 * self.stds[mode] + self.means[mode]
        null = codes[1].astype(bool) if self.has_null else np.zeros(len(x), dtype=bool)
        return self._from_float(x, null)

    def spans(self) -> list[tuple[str, int]]:
        out = [("mode", self.n_modes)]
        if self.has_null:
            out.append(("null", 2))
        return out

    def _to_float(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        null = series.isna().to_numpy()
        if self.column.kind == ColumnKind.DATETIME:
            dt = pd.to_datetime(series, errors="coerce", utc=self.column.timezone is not None, format="mixed")
            if self.column.timezone is not None:
                dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
            x = dt.to_numpy(dtype="datetime64[ns]").astype("int64").astype(np.float64) / 1e9
            null = null | np.isnat(dt.to_numpy(dtype="datetime64[ns]"))
        else:
            x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            null = null | np.isnan(x)
        x = np.where(null, np.nan, x)
        return x, null

    def _from_float(self, x: np.ndarray, null: np.ndarray) -> pd.Series:
        col = self.column
        name = col.name
        if col.kind == ColumnKind.DATETIME:
            lo = pd.Timestamp(col.min).value / 1e9 if col.min is not None else -np.inf
            hi = pd.Timestamp(col.max).value / 1e9 if col.max is not None else np.inf
            x = np.clip(x, lo, hi)
            ns = np.round(np.nan_to_num(x) * 1e9).astype("int64")
            dt = pd.Series(pd.to_datetime(ns, unit="ns"), name=name)
            if col.timezone is not None:
                dt = dt.dt.tz_localize("UTC").dt.tz_convert(col.timezone)
            if self.datetime_unit:  # rounds the local wall clock, as the source was recorded
                dt = dt.dt.round(self.datetime_unit, ambiguous="NaT", nonexistent="shift_forward")
            dt = dt.mask(pd.Series(null, index=dt.index))
            return dt.astype(col.dtype) if col.dtype.startswith("datetime64") else dt
        if col.min is not None:
            x = np.clip(x, col.min, col.max)
        if col.kind == ColumnKind.INTEGER:
            return restore_integer(np.round(x), null, col)
        if col.decimals is not None:
            x = np.round(x, col.decimals)
        x = np.where(null, np.nan, x)
        return pd.Series(x, name=name).astype(col.dtype if col.dtype.lower().startswith("float") else "float64")


@dataclass
class CategoricalEncoder:
    """Categorical or boolean column -> one category code (null is a category of its own)."""

    column: ColumnSchema
    categories: list[Any] = field(default_factory=list)  # the classes, OTHER and null included
    tail: list[Any] = field(default_factory=list)  # values folded into OTHER
    tail_probs: list[float] = field(default_factory=list)
    n_values = 0

    @property
    def has_null(self) -> bool:
        return self.column.nullable

    def fit(self, series: pd.Series, max_categories: int) -> None:
        counts = series.dropna().value_counts()
        known = self.column.categories or list(counts.index)
        # most frequent first, unseen-but-declared categories after
        ranked = sorted(known, key=lambda c: -int(counts.get(c, 0)))
        head, tail = ranked[:max_categories], ranked[max_categories:]
        self.categories = list(head)
        if tail:
            tail_counts = np.array([counts.get(c, 0) for c in tail], dtype=np.float64) + 1e-9
            self.tail, self.tail_probs = list(tail), (tail_counts / tail_counts.sum()).tolist()
            self.categories.append(OTHER)
        if self.has_null:
            self.categories.append(None)

    def encode(self, series: pd.Series) -> tuple[np.ndarray, list[np.ndarray]]:
        head = [c for c in self.categories if c is not None and c != OTHER]
        values = series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series
        codes = pd.Categorical(values, categories=pd.Index(head, dtype=object)).codes.astype(np.int64)
        missing = codes < 0
        if missing.any():
            null = series.isna().to_numpy()
            fallback = self._index(OTHER) if OTHER in self.categories else 0
            codes[missing & ~null] = fallback
            if null.any():
                codes[null] = self._index(None) if self.has_null else 0
        return np.zeros((len(series), 0), dtype=np.float32), [codes]

    def decode(self, values: np.ndarray, codes: list[np.ndarray], rng: np.random.Generator) -> pd.Series:
        lookup = np.empty(len(self.categories), dtype=object)
        lookup[:] = self.categories
        out = lookup[np.clip(codes[0], 0, len(self.categories) - 1)]
        if self.tail:
            other = out == OTHER
            if other.any():
                tail = np.empty(len(self.tail), dtype=object)
                tail[:] = self.tail
                out[other] = tail[rng.choice(len(self.tail), size=int(other.sum()), p=self.tail_probs)]
        return restore_categorical(out, self.column)

    def spans(self) -> list[tuple[str, int]]:
        return [("category", len(self.categories))]

    def _index(self, value: Any) -> int:
        return next(i for i, c in enumerate(self.categories) if c is value or c == value)


# ----------------------------------------------------------------------------------------------
# The table encoder
# ----------------------------------------------------------------------------------------------


class TableEncoder:
    """Fit on a table and its schema; encode to (values, codes); decode back to a DataFrame."""

    def __init__(self, max_modes: int = 10, max_categories: int = 500, max_fit_rows: int = 20_000, seed: int = 0):
        self.max_modes = max_modes
        self.max_categories = max_categories
        self.max_fit_rows = max_fit_rows
        self.seed = seed

    def fit(self, df: pd.DataFrame, schema: TableSchema) -> TableEncoder:
        schema.check_compatible(df, "training table")
        rng = np.random.default_rng(self.seed)
        self.schema_ = schema
        self.encoders_: dict[str, ContinuousEncoder | CategoricalEncoder] = {}
        for column in schema.columns:
            if column.kind in (ColumnKind.ID, ColumnKind.CONSTANT):
                continue
            series = df[column.name]
            if column.kind in (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME):
                enc = ContinuousEncoder(column)
                enc.fit(series, self.max_fit_rows, self.max_modes, rng)
            else:
                enc = CategoricalEncoder(column)
                enc.fit(series, self.max_categories)
            self.encoders_[column.name] = enc
        self._build_layout()
        return self

    def _build_layout(self) -> None:
        self.spans_: list[Span] = []
        start = n_values = n_codes = 0
        for name, enc in self.encoders_.items():
            if enc.n_values:
                self.spans_.append(Span(name, "value", start, 1, n_values))
                start, n_values = start + 1, n_values + 1
            for role, width in enc.spans():
                self.spans_.append(Span(name, role, start, width, n_codes))
                start, n_codes = start + width, n_codes + 1
        self.dense_dim_ = start
        self.n_values_, self.n_codes_ = n_values, n_codes

    @property
    def discrete_spans(self) -> list[Span]:
        return [s for s in self.spans_ if s.is_discrete]

    @property
    def value_spans(self) -> list[Span]:
        return [s for s in self.spans_ if not s.is_discrete]

    def encode(self, df: pd.DataFrame) -> EncodedTable:
        self.schema_.check_compatible(df)
        values, codes = [], []
        for name, enc in self.encoders_.items():
            v, c = enc.encode(df[name])
            values.append(v)
            codes.extend(c)
        n = len(df)
        return EncodedTable(
            values=np.concatenate(values, axis=1) if values else np.zeros((n, 0), np.float32),
            codes=np.stack(codes, axis=1) if codes else np.zeros((n, 0), np.int64),
        )

    def decode(
        self, values: np.ndarray, codes: np.ndarray, seed: int | None = None, start_index: int = 0
    ) -> pd.DataFrame:
        """Rebuild the table in the schema's column order and dtypes.

        `seed` drives the only random parts (IDs, folded tail categories); `start_index` is the
        first row's position in the emitted table, so that sharded sampling mints distinct IDs.
        """
        rng = np.random.default_rng(seed)
        n = len(values) if values.size else len(codes)
        v = c = 0
        decoded: dict[str, pd.Series] = {}
        for name, enc in self.encoders_.items():
            n_codes = len(enc.spans())
            vals, cods = values[:, v : v + enc.n_values], [codes[:, c + i] for i in range(n_codes)]
            v, c = v + enc.n_values, c + n_codes
            if isinstance(enc, CategoricalEncoder):
                decoded[name] = enc.decode(vals, cods, rng)
            else:
                decoded[name] = enc.decode(vals, cods)
        return assemble(self.schema_, decoded, n, rng, start_index)

    def to_dense(self, values: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Batch of (values, codes) -> dense [batch, dense_dim] with one-hot blocks, on their device."""
        dense = torch.zeros(len(values) if values.numel() else len(codes), self.dense_dim_, device=codes.device)
        for span in self.spans_:
            if span.is_discrete:
                dense[:, span.start : span.start + span.width] = torch.nn.functional.one_hot(
                    codes[:, span.index], span.width
                ).to(dense.dtype)
            else:
                dense[:, span.start] = values[:, span.index]
        return dense

    # ---- persistence: plain JSON, no pickle -------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        columns = {}
        for name, enc in self.encoders_.items():
            if isinstance(enc, ContinuousEncoder):
                columns[name] = {
                    "type": "continuous",
                    "weights": enc.weights.tolist(),
                    "means": enc.means.tolist(),
                    "stds": enc.stds.tolist(),
                    "datetime_unit": enc.datetime_unit,
                }
            else:
                columns[name] = {
                    "type": "categorical",
                    "categories": _json_list(enc.categories),
                    "tail": _json_list(enc.tail),
                    "tail_probs": enc.tail_probs,
                }
        return {
            "params": {
                "max_modes": self.max_modes,
                "max_categories": self.max_categories,
                "max_fit_rows": self.max_fit_rows,
                "seed": self.seed,
            },
            "schema": self.schema_.to_dict(),
            "columns": columns,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TableEncoder:
        self = cls(**state["params"])
        self.schema_ = TableSchema.from_dict(state["schema"])
        self.encoders_ = {}
        for name, s in state["columns"].items():
            column = self.schema_[name]
            if s["type"] == "continuous":
                self.encoders_[name] = ContinuousEncoder(
                    column,
                    np.array(s["weights"]),
                    np.array(s["means"]),
                    np.array(s["stds"]),
                    s["datetime_unit"],
                )
            else:
                enc = CategoricalEncoder(column)
                enc.categories = list(s["categories"])
                enc.tail = list(s["tail"])
                enc.tail_probs = s["tail_probs"]
                self.encoders_[name] = enc
        self._build_layout()
        return self


def _json_list(values: list[Any]) -> list[Any]:
    out = []
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, pd.Timestamp):
            v = v.isoformat()
        out.append(v)
    return out
