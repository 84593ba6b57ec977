"""A privacy signal for training: do generated rows copy training rows more than real rows do?

Why here and not only in the validators: the `privacy_exact_copies` gate judges the finished
table, when it is too late to choose other weights. With the guard, every validation also
generates a small sample, counts the rows identical to a training row, and compares that with
the natural rate (validation rows identical to a training row: tables of few discrete columns
repeat rows, 13% of the ACS demo's rows do). A validation over the limit is never kept as the
best weights, and two in a row end training (`history_["stop"]["reason"] == "copies"`).

The limit has the gate's form (`copy_limit`, also used by validators/privacy.py): the natural rate
plus the gate's allowed excess plus the sampling error of both rates.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synthpipe.generators.schema import ColumnKind, TableSchema

GUARD_ROWS = 1_000  # generated rows per validation: ~0.05 s for the autoregressive model on diamonds
ALPHA = 0.05  # the validators' default significance level
EXCESS = 0.001  # the validators' default exact_copy_max
STRIKES = 2  # consecutive validations over the limit that end training


def copy_limit(rate: float, n: int, natural: float, n_natural: int, alpha: float, excess: float) -> float:
    """Highest copy rate that is not above the natural rate: natural + excess + the one-sided
    sampling error of both rates at `alpha` (rates measured on n and n_natural rows)."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha))
    noise = z * math.sqrt(rate * (1 - rate) / max(1, n) + natural * (1 - natural) / max(1, n_natural))
    return natural + excess + noise


class CopyGuard:
    """Training-row keys and the natural copy rate, computed once per fit."""

    def __init__(self, train: pd.DataFrame, val: pd.DataFrame, schema: TableSchema):
        from synthpipe.validators.encoding import row_keys  # the gate's canonical row form

        self._row_keys = row_keys
        self.columns = [c for c in schema.columns if c.kind is not ColumnKind.ID]
        train_keys = pd.Index(row_keys(train, self.columns))
        self.reference = train_keys.unique()
        # natural rate: validation rows identical to a training row, pooled with training rows
        # identical to another one (the leave-one-out form of the same rate), because the
        # validation split alone is small (160 rows on the demo: +-4.5 points at alpha)
        natural = np.concatenate([self._copied(val), train_keys.duplicated(keep=False)])
        self.n_natural = len(natural)
        self.natural = float(natural.mean()) if len(natural) else 0.0

    def _copied(self, rows: pd.DataFrame) -> np.ndarray:
        return pd.Index(self._row_keys(rows, self.columns)).isin(self.reference)

    def check(self, sample: pd.DataFrame) -> tuple[float, float]:
        """(copy rate of `sample`, the limit it is held to)."""
        rate = float(self._copied(sample).mean()) if len(sample) else 0.0
        return rate, copy_limit(rate, len(sample), self.natural, self.n_natural, ALPHA, EXCESS)
