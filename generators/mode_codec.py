"""The GAN and VAE family's row codec: mode-specific normalisation, as in CTGAN.

Continuous columns become (position within a Gaussian-mixture mode, which mode[, null flag]),
categoricals and booleans one category code (folding the tail beyond `max_categories` into one
"other" class). Rows are kept compact, a float matrix of values and an integer matrix of codes;
one-hot rows are built per batch on the device (`to_dense`), so memory does not grow with the
number of categories times the number of rows. The codec conditions on categories only: a
generator that emits mixture codes cannot honour a numeric range exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from synthpipe.generators.conditions import Conditions
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.restore import assemble
from synthpipe.generators.schema import CONTINUOUS_KINDS, TableSchema
from synthpipe.generators.seeding import SeedStream, numpy_rng
from synthpipe.generators.serialize import to_jsonable
from synthpipe.generators.transforms import OTHER, CategoricalEncoder, ContinuousEncoder


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


class ModeSpecificCodec:
    """Fit on a table and its schema; encode to (values, codes); decode back to a DataFrame."""

    def __init__(
        self,
        max_modes: int = 10,
        max_categories: int = 500,
        max_fit_rows: int = 20_000,
        seed: int = 0,
        min_category_count: int = 1,
    ):
        self.max_modes = max_modes
        self.max_categories = max_categories
        self.max_fit_rows = max_fit_rows
        self.seed = seed
        self.min_category_count = min_category_count  # fitting only: the vocabularies record its effect

    def fit(self, df: pd.DataFrame, schema: TableSchema, seed: int | None = None) -> ModeSpecificCodec:
        """`seed` (default: the constructor's) drives the mixtures' row subsamples."""
        schema.check_compatible(df, "training table")
        self.seed = self.seed if seed is None else int(seed)
        rng = numpy_rng(self.seed, SeedStream.ENCODER_FIT)
        self.schema_ = schema
        self.encoders_: dict[str, ContinuousEncoder | CategoricalEncoder] = {}
        for column in schema.columns:
            if column.kind in CONTINUOUS_KINDS:
                enc = ContinuousEncoder(column)
                enc.fit(df[column.name], self.max_fit_rows, self.max_modes, rng)
            elif column.kind.value in ("categorical", "boolean"):
                enc = CategoricalEncoder(column)
                enc.fit(df[column.name], self.max_categories, self.min_category_count)
            else:  # identifiers and constants are restored at decode time
                continue
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

    def empty(self) -> EncodedTable:
        return EncodedTable(np.zeros((0, self.n_values_), np.float32), np.zeros((0, self.n_codes_), np.int64))

    def decode(
        self, encoded: EncodedTable, rng: np.random.Generator | int | None = None, start_index: int = 0
    ) -> pd.DataFrame:
        """Rebuild the table in the schema's column order and dtypes.

        `rng` drives the only random parts (folded tail categories, minted IDs); `start_index`
        is the first row's position in the emitted table, so that sharded sampling mints
        distinct IDs.
        """
        rng = np.random.default_rng(rng)
        values, codes = encoded.values, encoded.codes
        n = len(encoded)
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

    def compile_conditions(self, conditions: Conditions) -> dict[str, np.ndarray]:
        """Category code per row (-1: free) of each conditioned categorical/boolean column."""
        for name in conditions.ranges:
            kind = self.schema_[name].kind.value
            raise ConfigError(
                f"the gan and vae generators condition only on categorical or boolean columns; {name!r} is "
                f"{kind} (the autoregressive generator conditions on any column, numeric ranges included)"
            )
        out = {}
        for name, cells in conditions.values.items():
            enc = self.encoders_[name]
            assert isinstance(enc, CategoricalEncoder)
            head = pd.Index([c for c in enc.categories if c is not None and c != OTHER], dtype=object)
            if len(cells) and cells.strides == (0,):  # one value for every row
                first = pd.Categorical(cells[:1], categories=head).codes.astype(np.int64)
                self._check_folded(name, cells[:1], first, enc)
                out[name] = np.broadcast_to(first, (len(cells),))
                continue
            codes = pd.Categorical(cells, categories=head).codes.astype(np.int64)
            self._check_folded(name, cells, codes, enc)
            out[name] = codes
        return out

    def _check_folded(self, name: str, cells: np.ndarray, codes: np.ndarray, enc: CategoricalEncoder) -> None:
        folded = (codes < 0) & np.fromiter((c is not None for c in cells), dtype=bool, count=len(cells))
        if folded.any():
            value = cells[np.flatnonzero(folded)[0]]
            protected = enc.tail[len(enc.tail) - enc.tail_protected :]
            if any(value is c or value == c for c in protected):
                why = "it is seen in fewer training rows than min_category_count, so it is protected"
                fix = "lower min_category_count (1 turns protection off)"
            else:
                why = f"it is beyond max_categories={self.max_categories}"
                fix = "raise max_categories"
            raise ConfigError(
                f"condition {name}={value!r}: this rare category was folded into an 'other' class ({why}), "
                f"so the gan/vae codec cannot condition on it; {fix} or use the autoregressive generator"
            )

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
                    **({"discrete": True} if enc.discrete else {}),  # written only when used
                }
            else:
                columns[name] = {"type": "categorical", **to_jsonable(enc.state())}
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
    def from_state_dict(cls, state: dict[str, Any]) -> ModeSpecificCodec:
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
                    bool(s.get("discrete", False)),
                )
            else:
                self.encoders_[name] = CategoricalEncoder.from_state(column, s)
        self._build_layout()
        return self


TableEncoder = ModeSpecificCodec  # its former name
