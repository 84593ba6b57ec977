"""The autoregressive family's row codec: every modelled column becomes a small vocabulary.

Why its own codec: the transformer predicts one token per column, so it needs token ids, the
position of a value within its bin and the exact log density/mass within the bin (for exact
likelihoods), not the GAN's mode-specific normalisation. What is shared stays shared: the
categorical vocabulary (most frequent `max_categories`, an OTHER bucket, null) is the
`CategoricalEncoder` of the mode-specific codec, numeric bins are `tokenize.BinnedColumn`, and
IDs, constants and dtypes are restored by `restore`.

Tokens
- categorical and boolean: the encoder's categories. A value folded into OTHER has probability
  p(OTHER) * (its share of the bucket in training), so probabilities stay normalised; a sampled
  OTHER becomes a member drawn by those shares at decode time, unless a condition named it.
- numerical, integer and datetime: a quantile-bin token and the position within the bin.
- ID and constant columns are not modelled (minted and filled at decode time, 0 nats).

Conditions arrive as a validated `Conditions` object and compile to a `ConditionPlan`: per row
and column, revealed (a token, its position and value) or ranged (the share of each bin's mass
inside the range, from `BinnedColumn.overlap`, computed once per distinct range).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from synthpipe.generators.conditions import Conditions
from synthpipe.generators.restore import assemble, datetime_unit, restore_categorical
from synthpipe.generators.schema import CONTINUOUS_KINDS, ColumnKind, TableSchema
from synthpipe.generators.seeding import SeedStream, numpy_rng
from synthpipe.generators.serialize import to_jsonable
from synthpipe.generators.tokenize import BinnedColumn, ValueRange
from synthpipe.generators.transforms import OTHER, CategoricalEncoder

FREE, REVEALED, RANGED = 0, 1, 2  # ConditionPlan.mode


@dataclass
class TokenRows:
    """Encoded rows, [n, C] in the codec's column order."""

    tokens: np.ndarray  # int64 token id within each column's vocabulary
    frac: np.ndarray  # float32 position within the bin in [0, 1] (0.5 where meaningless)
    log_within: np.ndarray  # float64 log density/mass within the token (-inf: impossible value)


@dataclass
class SampledRows:
    """What the sampler draws, [n, C]: tokens, and per column its value in model units (binned
    columns; NaN for null) or the index of a named OTHER member (categoricals; -1 = draw one)."""

    tokens: np.ndarray
    values: np.ndarray


class BinTable(NamedTuple):
    """One binned column's tokens for the sampler: bounds, and on a grid the support (values
    [V, K], NaN padding) with its shares of the bin, beside each bin's uniform share."""

    lo: np.ndarray
    hi: np.ndarray
    grid: bool
    decimals: int | None
    rest: np.ndarray
    support: np.ndarray | None
    support_weight: np.ndarray | None
    beyond: np.ndarray  # bool per token: past the protected range (never the null token)


@dataclass
class ConditionPlan:
    """Compiled conditions for n rows: mode [n, C] (FREE/REVEALED/RANGED); for revealed cells
    token, frac and value; for ranged cells the range in model units (low, high, snap_low,
    snap_high) and `share[c] = (row -> distinct range index (-1 free), [k, V_c] share of each
    token's mass inside each distinct range)`."""

    mode: np.ndarray
    token: np.ndarray
    frac: np.ndarray
    value: np.ndarray
    bounds: np.ndarray  # float64 [4, n, C]: low, high, snap_low, snap_high (+-inf when free)
    share: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def free(cls, n: int, n_columns: int) -> ConditionPlan:
        bounds = np.empty((4, n, n_columns))
        bounds[0::2], bounds[1::2] = -np.inf, np.inf
        return cls(
            np.zeros((n, n_columns), np.int8),
            np.zeros((n, n_columns), np.int64),
            np.full((n, n_columns), 0.5, np.float32),
            np.full((n, n_columns), -1.0),
            bounds,
        )


class TokenCodec:
    """fit / encode / decode / compile_conditions / state as JSON (the RowCodec protocol)."""

    def __init__(
        self, n_bins: int = 48, max_categories: int = 500, max_fit_rows: int = 20_000, min_category_count: int = 1
    ):
        self.n_bins, self.max_categories, self.max_fit_rows = n_bins, max_categories, max_fit_rows
        self.min_category_count = min_category_count  # fitting only: the vocabularies record its effect

    # ---- fitting and layout ---------------------------------------------------------------------

    def fit(self, table: pd.DataFrame, schema: TableSchema, seed: int) -> TokenCodec:
        schema.check_compatible(table, "training table")
        rng = numpy_rng(seed, SeedStream.ENCODER_FIT)
        self.schema_ = schema
        self.binned: dict[str, BinnedColumn] = {}
        self.categories: dict[str, CategoricalEncoder] = {}
        for column in schema.columns:
            series = table[column.name]
            if column.kind in CONTINUOUS_KINDS:
                unit = datetime_unit(series) if column.kind == ColumnKind.DATETIME else None
                self.binned[column.name] = BinnedColumn.fit(
                    column, series, self.n_bins, self.max_fit_rows, rng, unit
                )
            elif column.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
                self.categories[column.name] = CategoricalEncoder(column)
                self.categories[column.name].fit(series, self.max_categories, self.min_category_count)
        return self

    @property
    def columns(self) -> list[str]:
        """The modelled columns, in the schema's (canonical) order."""
        return [c.name for c in self.schema_.columns if c.name in self.binned or c.name in self.categories]

    @property
    def vocab_sizes(self) -> list[int]:
        return [
            self.binned[n].n_tokens if n in self.binned else len(self.categories[n].categories)
            for n in self.columns
        ]

    # ---- rows <-> tokens ------------------------------------------------------------------------

    def encode(self, table: pd.DataFrame, censor: bool = False) -> TokenRows:
        """Rows -> tokens; `censor` for training rows (BinnedColumn.censor: no mass past the
        protected range), not for rows whose likelihood is asked."""
        self.schema_.check_compatible(table)
        n, columns = len(table), self.columns
        out = TokenRows(
            np.zeros((n, len(columns)), np.int64),
            np.full((n, len(columns)), 0.5, np.float32),
            np.zeros((n, len(columns))),
        )
        for i, name in enumerate(columns):
            if name in self.binned:
                out.tokens[:, i], out.frac[:, i], out.log_within[:, i] = self.binned[name].tokenize(table[name], censor)
            else:
                out.tokens[:, i], out.log_within[:, i] = self._category_tokens(name, table[name])
        return out

    def _category_tokens(self, name: str, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(token, log share within the token): 0 for a category of its own, log(share of the
        OTHER bucket) for a folded value, -inf for what the model cannot produce."""
        enc = self.categories[name]
        _, (token,) = enc.encode(series)
        known = pd.Index([c for c in enc.categories if c is not None and c != OTHER] + enc.tail, dtype=object)
        values = series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series
        position = pd.Categorical(values, categories=known).codes
        null = series.isna().to_numpy()
        n_head = len(known) - len(enc.tail)
        log_within = np.zeros(len(series))
        folded = position >= n_head
        log_within[folded] = np.log(np.asarray(enc.tail_probs))[position[folded] - n_head]
        log_within[(position < 0) & ~null] = -np.inf  # unseen value
        if not enc.has_null:
            log_within[null] = -np.inf
        return token, log_within

    def empty(self) -> SampledRows:
        return SampledRows(np.zeros((0, len(self.columns)), np.int64), np.zeros((0, len(self.columns))))

    def decode(
        self, encoded: SampledRows, rng: np.random.Generator | int | None, start_index: int = 0
    ) -> pd.DataFrame:
        rng = np.random.default_rng(rng)
        n = len(encoded.tokens)
        decoded = {}
        for i, name in enumerate(self.columns):
            token, value = encoded.tokens[:, i], encoded.values[:, i]
            if name in self.binned:
                binned = self.binned[name]
                null = token == binned.null_token if binned.has_null else np.zeros(n, dtype=bool)
                decoded[name] = binned.from_units(value, null)
                continue
            enc = self.categories[name]
            series = enc.decode(np.zeros((n, 0)), [token], rng)  # draws members of OTHER by share
            named = value >= 0  # ... unless a condition named the member
            if named.any():
                cells = series.astype(object).to_numpy()
                tail = np.empty(len(enc.tail), dtype=object)
                tail[:] = enc.tail
                cells[named] = tail[value[named].astype(np.int64)]
                series = restore_categorical(cells, enc.column)
            decoded[name] = series
        return assemble(self.schema_, decoded, n, rng, start_index)

    # ---- conditions -----------------------------------------------------------------------------

    def compile_conditions(self, conditions: Conditions) -> ConditionPlan:
        """Validated conditions -> a ConditionPlan; ConfigError for a value the model cannot emit."""
        columns, n = self.columns, conditions.n
        plan = ConditionPlan.free(n, len(columns))
        for name, cells in conditions.values.items():
            i, enc = columns.index(name), self.categories[name]
            given = np.fromiter((v is not None for v in cells), dtype=bool, count=n)
            token, member = self._category_ids(enc, cells[given])
            plan.mode[given, i], plan.token[given, i], plan.value[given, i] = REVEALED, token, member
        for name, (low, high) in conditions.ranges.items():
            self._compile_range(plan, columns.index(name), self.binned[name], low, high)
        return plan

    @staticmethod
    def _category_ids(enc: CategoricalEncoder, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Typed condition values -> (token, index within the OTHER bucket or -1)."""
        _, (token,) = enc.encode(pd.Series(values, dtype=object))
        member = pd.Categorical(values, categories=pd.Index(enc.tail, dtype=object)).codes.astype(np.float64)
        return token, member

    @staticmethod
    def _compile_range(plan: ConditionPlan, i: int, binned: BinnedColumn, low: np.ndarray, high: np.ndarray) -> None:
        """One continuous column's per-row (low, high) -> revealed points and ranged rows."""
        column = binned.column
        pairs = pd.DataFrame({"low": low, "high": high})
        given = ~(pairs["low"].isna() & pairs["high"].isna()).to_numpy()
        if not given.any():
            return
        distinct, index = np.unique(pairs[given].to_numpy(), axis=0, return_inverse=True)
        rows = np.flatnonzero(given)
        shares, ranged_of = [], np.full(len(distinct), -1)
        for k, (lo, hi) in enumerate(distinct):
            lo_v, hi_v = _model_end(lo, column), _model_end(hi, column)
            if lo == hi:
                u = binned.point_units(lo_v)
                token, frac, _ = binned.tokenize_units(np.array([u]), np.zeros(1, dtype=bool))
                sel = rows[index.ravel() == k]
                plan.mode[sel, i], plan.token[sel, i], plan.frac[sel, i], plan.value[sel, i] = (
                    REVEALED, token[0], frac[0], u
                )
                continue
            rng: ValueRange = binned.range_units(lo_v, hi_v)
            sel = rows[index.ravel() == k]
            plan.mode[sel, i] = RANGED
            plan.bounds[:, sel, i] = np.array([rng.low, rng.high, rng.snap_low, rng.snap_high])[:, None]
            ranged_of[k] = len(shares)
            shares.append(np.append(binned.overlap(rng), [0.0] * binned.has_null))
        if shares:
            row_index = np.full(len(low), -1, np.int64)
            row_index[rows] = ranged_of[index.ravel()]
            plan.share[i] = (row_index, np.stack(shares))

    # ---- sampler tables -------------------------------------------------------------------------

    def protected_tokens(self, i: int) -> np.ndarray | None:
        """Column i's tokens a free draw must never give (bool per token), or None: the OTHER
        class of a categorical column whose folded values are all protected (CategoricalEncoder),
        as long as another token remains to draw."""
        enc = self.categories.get(self.columns[i])
        if enc is None or not enc.other_is_protected or len(enc.categories) < 2:
            return None
        return np.array([c is not None and c == OTHER for c in enc.categories])

    def bins(self, i: int) -> BinTable | None:
        """Column i's bins in model units, one row per token (NaN for the null token); None for
        categorical columns."""
        name = self.columns[i]
        if name not in self.binned:
            return None
        b = self.binned[name]
        pad = int(b.has_null)
        support, weight = b.support_table() if b.rest is not None else (None, None)
        if support is not None:
            support = np.pad(support, ((0, pad), (0, 0)), constant_values=np.nan)
            weight = np.pad(weight, ((0, pad), (0, 0)))
        return BinTable(
            np.append(b.lo, [np.nan] * pad),
            np.append(b.hi, [np.nan] * pad),
            b.grid,
            b.decimals,
            np.append(b.rest_share(), [1.0] * pad),
            support,
            weight,
            np.concatenate([b.beyond_protected(), np.zeros(pad, bool)]),
        )

    # ---- persistence ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "params": {"n_bins": self.n_bins, "max_categories": self.max_categories, "max_fit_rows": self.max_fit_rows},
                "schema": self.schema_.to_dict(),
                "binned": {k: b.state_dict() for k, b in self.binned.items()},
                "categories": {k: e.state() for k, e in self.categories.items()},
            }
        )

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TokenCodec:
        self = cls(**state["params"])
        self.schema_ = TableSchema.from_dict(state["schema"])
        self.binned = {k: BinnedColumn.from_state_dict(self.schema_[k], s) for k, s in state["binned"].items()}
        self.categories = {}
        for name, s in state["categories"].items():
            self.categories[name] = CategoricalEncoder.from_state(self.schema_[name], s)
        return self


def _model_end(value: float, column: Any) -> Any:
    """A Conditions range end (float; datetimes in wall-clock seconds) -> what BinnedColumn takes."""
    if np.isnan(value):
        return None
    if column.kind == ColumnKind.DATETIME:
        return pd.Timestamp(round(value * 1e9), unit="ns")
    return float(value)

