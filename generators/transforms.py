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
# What a cell becomes when every value of its column is protected (seen in fewer than
# min_category_count rows) and the column has no null to stand in
PROTECTED_VALUE = "(rare value)"

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
DISCRETE_MAX_VALUES = 64  # a column whose rows sit on at most this many values is discrete ...
DISCRETE_MIN_COUNT = 5  # ... counting values held by at least this many fitted rows ...
DISCRETE_MIN_SHARE = 0.99  # ... when those values hold at least this share of its rows


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


def _discrete_support(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A column's support as (values, shares) when its rows sit on a few values, else None.

    Why: a loans interest rate takes 57 values and a flight's minute 60. A mixture turns them
    into a continuous density and the generator emits 12.37% between 12.34% and 12.62%, so the
    column alone told synthetic rows from real ones at a two-sample AUC of 0.95. Here every kept
    value is an atom, the column is a category over them, and a row decodes to exactly one of
    them. Values held by fewer than DISCRETE_MIN_COUNT rows are not kept (they would be replayed
    verbatim, as a rare category would; see CategoricalEncoder) and snap to the nearest kept one."""
    if len(x) == 0:
        return None
    values, counts = np.unique(x, return_counts=True)
    kept = counts >= DISCRETE_MIN_COUNT
    if not 2 <= kept.sum() <= DISCRETE_MAX_VALUES or counts[kept].sum() < DISCRETE_MIN_SHARE * len(x):
        return None
    return values[kept], counts[kept] / counts[kept].sum()


def _atom_stds(atoms: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-width modes in effect: ATOM_WIDTH of the atom's magnitude (or the column's spread)."""
    spread = float(np.std(x)) or 1.0
    return np.maximum(ATOM_WIDTH * np.maximum(np.abs(atoms), spread), 1e-300)


def _nearest(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest of `sorted_values` (ascending) for each x."""
    right = np.clip(np.searchsorted(sorted_values, x), 1, len(sorted_values) - 1)
    left = right - 1
    return np.where(np.abs(x - sorted_values[left]) <= np.abs(sorted_values[right] - x), left, right)


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
    discrete: bool = False  # every mode is an atom: see `_discrete_support`

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
        support = None if self.column.kind == ColumnKind.DATETIME else _discrete_support(x)
        if support is not None:
            values, shares = support
            self.weights, self.means, self.discrete = shares, values, True
            self.stds = _atom_stds(values, x)
            return
        atoms, shares = (np.zeros(0), np.zeros(0)) if self.column.kind == ColumnKind.DATETIME else _atoms(x, max_modes)
        rest = x[~np.isin(x, atoms)]
        if len(atoms) == 0 or len(rest) < MIN_REST_ROWS:
            self.weights, self.means, self.stds = fit_gmm_1d(x, max_modes=max_modes)
            return
        weights, means, stds = fit_gmm_1d(rest, max_modes=max_modes - len(atoms))
        # an atom is a mode of (almost) zero width: a row holding the value is encoded into it
        # (its density there dwarfs every other mode's) and any within-mode value decodes to it
        self.weights = np.concatenate([weights * (1.0 - shares.sum()), shares])
        self.means = np.concatenate([means, atoms])
        self.stds = np.concatenate([stds, _atom_stds(atoms, x)])

    def encode(self, series: pd.Series) -> tuple[np.ndarray, list[np.ndarray]]:
        x, null = self._to_float(series)
        filled = np.where(null, self.means[np.argmax(self.weights)], x)
        if self.discrete:  # the nearest support value; a value off the support (rare) snaps to it
            mode = _nearest(self.means, filled)
            alpha = np.zeros(len(filled))
        else:
            mode = np.argmax(_component_log_prob(filled, self.weights, self.means, self.stds), axis=1)
            alpha = (filled - self.means[mode]) / (4 * self.stds[mode])
        codes = [mode]
        if self.has_null:
            codes.append(null.astype(np.int64))
        return alpha[:, None].astype(np.float32), codes

    def decode(self, values: np.ndarray, codes: list[np.ndarray]) -> pd.Series:
        mode = np.clip(codes[0], 0, self.n_modes - 1)
        x = self.means[mode] if self.discrete else values[:, 0].astype(np.float64) * 4 * self.stds[mode] + self.means[mode]
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
    """Categorical or boolean column -> one category code (null is a category of its own).

    Rare-category protection: a categorical value seen in fewer than `min_count` training rows
    (a free-text job title, a tail number) is folded into the OTHER class and never emitted by a
    free draw, only when a condition names it. Why: a value that few rows share identifies them,
    and a model that replays it verbatim leaks it, which neither the exact-copy nor the distance
    checks see; it is the categorical half of the codecs' value protection (numeric columns
    never draw past their PROTECTED_ROWS-th extreme values). Protected values stay in `tail`,
    last, with their training shares, so likelihoods are those of the trained model (as a held-out
    value past a numeric column's protected range keeps its likelihood); `tail_protected` counts
    them. When OTHER holds nothing but protected values, the autoregressive sampler never draws
    it (`other_is_protected`); the GAN and VAE, which draw it from their softmax, decode it as a
    kept category drawn by training share (`fallback_probs`). Booleans are never protected.
    """

    column: ColumnSchema
    categories: list[Any] = field(default_factory=list)  # the classes, OTHER and null included
    tail: list[Any] = field(default_factory=list)  # values folded into OTHER, protected ones last
    tail_probs: list[float] = field(default_factory=list)
    tail_protected: int = 0  # the last this many tail values are never drawn freely
    fallback_probs: list[float] = field(default_factory=list)  # kept classes' shares (see above)
    n_values = 0

    @property
    def has_null(self) -> bool:
        return self.column.nullable

    @property
    def other_is_protected(self) -> bool:
        """OTHER folds protected values only: a free draw of it has no value to become."""
        return bool(self.tail) and self.tail_protected == len(self.tail)

    def fit(self, series: pd.Series, max_categories: int, min_count: int = 1) -> None:
        counts = series.dropna().value_counts()
        known = self.column.categories or list(counts.index)
        # most frequent first, unseen-but-declared categories after
        ranked = sorted(known, key=lambda c: -int(counts.get(c, 0)))
        protect = self.column.kind == ColumnKind.CATEGORICAL and min_count > 1
        rare = [c for c in ranked if 0 < int(counts.get(c, 0)) < min_count] if protect else []
        if rare:
            rare_set = set(rare)
            ranked = [c for c in ranked if c not in rare_set]
        head, tail = ranked[:max_categories], ranked[max_categories:] + rare
        self.categories = list(head)
        self.tail_protected = len(rare)
        if tail:
            tail_counts = np.array([counts.get(c, 0) for c in tail], dtype=np.float64) + 1e-9
            self.tail, self.tail_probs = list(tail), (tail_counts / tail_counts.sum()).tolist()
            self.categories.append(OTHER)
            if self.other_is_protected and head:
                head_counts = np.array([counts.get(c, 0) for c in head], dtype=np.float64) + 1e-9
                self.fallback_probs = (head_counts / head_counts.sum()).tolist()
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
                members, probs = self._other_draws()
                if members:
                    pool = np.empty(len(members), dtype=object)
                    pool[:] = members
                    out[other] = pool[rng.choice(len(members), size=int(other.sum()), p=probs)]
                else:  # every value is protected: nothing may be emitted in its place
                    out[other] = None if self.has_null else PROTECTED_VALUE
        return restore_categorical(out, self.column)

    def _other_draws(self) -> tuple[list[Any], np.ndarray]:
        """What a drawn OTHER becomes: a kept tail value by share, else a kept class by share."""
        kept = len(self.tail) - self.tail_protected
        if not self.tail_protected:
            return self.tail, np.asarray(self.tail_probs, dtype=np.float64)
        if kept:
            probs = np.asarray(self.tail_probs[:kept], dtype=np.float64)
            return self.tail[:kept], probs / probs.sum()
        head = [c for c in self.categories if c is not None and c != OTHER]
        if not head or len(self.fallback_probs) != len(head):
            return [], np.zeros(0)
        return head, np.asarray(self.fallback_probs, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        """The fitted vocabulary as plain values (the protection fields only when used, so a
        model without protected values saves exactly what it did before)."""
        out = {"categories": self.categories, "tail": self.tail, "tail_probs": self.tail_probs}
        if self.tail_protected:
            out["tail_protected"] = self.tail_protected
        if self.fallback_probs:
            out["fallback_probs"] = self.fallback_probs
        return out

    @classmethod
    def from_state(cls, column: ColumnSchema, state: dict[str, Any]) -> CategoricalEncoder:
        return cls(
            column,
            list(state["categories"]),
            list(state["tail"]),
            list(state["tail_probs"]),
            int(state.get("tail_protected", 0)),
            list(state.get("fallback_probs", [])),
        )

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
