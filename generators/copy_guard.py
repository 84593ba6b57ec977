"""A privacy signal for training: do generated rows copy training rows more than real rows do?

Why here and not only in the validators: the `privacy_exact_copies` gate judges the finished
table, when it is too late to choose other weights. With the guard, every validation also
generates a small sample, counts the rows identical to a training row that occurs once in
training (memorised rows, not common patterns), and compares that with the natural rate of the
same thing for real rows the model never saw. A validation over the limit is never kept as the
best weights, and two in a row end training (`history_["stop"]["reason"] == "copies"`).

The limit has the gate's form (`copy_limit`, also used by validators/privacy.py): the natural rate
plus the gate's allowed excess plus the sampling error of both rates.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synthpipe.generators.row_keys import row_keys
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
        self.columns = [c for c in schema.columns if c.kind is not ColumnKind.ID]
        counts = pd.Index(row_keys(train, self.columns)).value_counts()
        # only rows that occur once in training: reproducing a row that hundreds of training
        # rows share reveals nobody, and on null-heavy tables such rows make up a third of all
        # rows, so counting them turned fidelity errors in their frequency into false alarms
        self.reference = counts.index[counts.to_numpy() == 1]
        # natural rate: validation rows identical to such a row, pooled with training rows that
        # would be one after leaving themselves out (keys seen twice), because the validation
        # split alone is small (160 rows on the demo: +-4.5 points at alpha)
        loo = np.repeat(counts.to_numpy() == 2, counts.to_numpy())
        natural = np.concatenate([self._copied(val), loo])
        self.n_natural = len(natural)
        self.natural = float(natural.mean()) if len(natural) else 0.0

    def _copied(self, rows: pd.DataFrame) -> np.ndarray:
        return pd.Index(row_keys(rows, self.columns)).isin(self.reference)

    def check(self, sample: pd.DataFrame) -> tuple[float, float]:
        """(share of `sample` that copies a once-seen training row, the limit it is held to)."""
        rate = float(self._copied(sample).mean()) if len(sample) else 0.0
        return rate, copy_limit(rate, len(sample), self.natural, self.n_natural, ALPHA, EXCESS)
