"""Per-column reversible encoders of the mode-specific codec (generators/mode_codec.py).

Numerical, integer and datetime columns get mode-specific normalisation (as in CTGAN): a 1-D
Gaussian mixture is fitted by vectorised EM on a bounded subsample, and each value becomes
(which mode, position within the mode). Categoricals and booleans become categories; nulls get
their own category or indicator. Identifier and constant columns are not encoded: they are
restored at decode time (fresh IDs, the constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.restore import (
    datetime_unit,
    restore_categorical,
    restore_constant,
    restore_ids,
    restore_number,
)
from synthpipe.generators.schema import ColumnKind, ColumnSchema, check_magnitude

OTHER = "__synthpipe_other__"  # bucket for categories beyond max_categories

# The restore helpers under their former private names, for autoregressive.py until it imports
# them from generators/restore.py.
_restore_categorical, _restore_constant, _restore_ids = restore_categorical, restore_constant, restore_ids


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


ATOM_SHARE = 0.02  # a value held by at least this share of a column's rows becomes an atom
ATOM_PROMINENCE = 3.0  # ... and at least this many times the share of either neighbouring value
ATOM_WIDTH = 1e-9  # an atom's std, relative to its magnitude (or the column's spread)
MIN_REST_ROWS = 10  # rows off the atoms needed to fit the mixture on them alone


def _atoms(x: np.ndarray, max_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Values that carry a large share of the rows, as (values, shares), at most half the modes.

    Why: a mixture of Gaussians turns a spike (a 40-hour week, a 0.30-carat stone) into a bump
    that the generator's continuous output smears over its neighbours, so spikes at round values
    came out one or two units off; an atom decodes to exactly its value."""
    values, counts = np.unique(x, return_counts=True)
    shares = counts / max(len(x), 1)
    # a spike stands above the values next to it; a dense run of values (carats on a 0.01 grid,
    # each about as common as its neighbours) is a smooth density and stays with the mixture
    padded = np.concatenate([[0.0], shares, [0.0]])
    neighbours = np.maximum(padded[:-2], padded[2:])
    spike = (shares >= ATOM_SHARE) & (shares >= ATOM_PROMINENCE * neighbours)
    order = np.argsort(-np.where(spike, shares, 0.0), kind="stable")[: max_modes // 2]
    order = order[spike[order]]
    return values[order], shares[order]


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
        check_magnitude(self.column.name, x)
        if self.column.kind == ColumnKind.DATETIME:
            self.datetime_unit = datetime_unit(series.dropna())
        if len(x) > max_rows:
            x = rng.choice(x, size=max_rows, replace=False)
        atoms, shares = (np.zeros(0), np.zeros(0)) if self.column.kind == ColumnKind.DATETIME else _atoms(x, max_modes)
        rest = x[~np.isin(x, atoms)]
        if len(atoms) == 0 or len(rest) < MIN_REST_ROWS:
            self.weights, self.means, self.stds = fit_gmm_1d(x, max_modes=max_modes)
            return
        weights, means, stds = fit_gmm_1d(rest, max_modes=max_modes - len(atoms))
        # an atom is a mode of (almost) zero width: a row holding the value is encoded into it
        # (its density there dwarfs every other mode's) and any within-mode value decodes to it
        spread = float(np.std(x)) or 1.0
        self.weights = np.concatenate([weights * (1.0 - shares.sum()), shares])
        self.means = np.concatenate([means, atoms])
        self.stds = np.concatenate([stds, np.maximum(ATOM_WIDTH * np.maximum(np.abs(atoms), spread), 1e-300)])

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
        return restore_number(x, null, col)


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




def __getattr__(name: str) -> Any:
    """The table codec moved to generators/mode_codec.py; its old import path keeps working."""
    if name in ("TableEncoder", "EncodedTable", "Span"):
        from synthpipe.generators import mode_codec

        return getattr(mode_codec, name)
    raise AttributeError(name)
