"""The row codec: how one generator family turns table rows into what its network consumes,
and back.

Why a protocol: each family wants its own representation (the GAN and VAE mode-specific
normalisation and one-hot blocks, the autoregressive model tokens and bins), but the base class
must fit, persist and restore any of them the same way. A family names its codec
(`BaseGenerator._make_codec`); the base class calls only what is declared here.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from synthpipe.generators.conditions import Conditions
from synthpipe.generators.schema import TableSchema


@runtime_checkable
class RowCodec(Protocol):
    """fit / encode / decode / compile_conditions / state as JSON.

    - `fit(table, schema, seed)` learns the codec from training rows; the seed drives its
      subsamples (SeedStream.ENCODER_FIT of it).
    - `encode(table)` -> the family's encoded rows (arrays), one per row.
    - `decode(encoded, rng, start_index)` -> a DataFrame in the schema's column order and dtypes;
      `rng` drives decode-time draws (folded categories, minted IDs) and `start_index` is the
      first row's absolute position in the emitted table (minted IDs never repeat).
    - `compile_conditions(conditions)` -> the family's own form of already validated conditions;
      raises ConfigError for what the family cannot condition on.
    - `state_dict()` -> plain JSON data; `from_state_dict(state)` rebuilds the fitted codec.
    """

    schema_: TableSchema

    def fit(self, table: pd.DataFrame, schema: TableSchema, seed: int) -> RowCodec: ...

    def encode(self, table: pd.DataFrame) -> Any: ...

    def decode(self, encoded: Any, rng: np.random.Generator | int | None, start_index: int = 0) -> pd.DataFrame: ...

    def compile_conditions(self, conditions: Conditions) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> RowCodec: ...
