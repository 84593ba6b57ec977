"""Seeded row splits and subsamples, the one copy that the pipeline and the generators use.

Why one: the pipeline's holdout split and a generator's validation split were the same code with
different magic seeds; here each caller names its seed stream, and rows keep their source order
on both sides (a split changes which rows, not how they are ordered).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthpipe.generators.seeding import numpy_rng


def split_rows(df: pd.DataFrame, fraction: float, seed: int, stream: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, held-out rows): round(len * fraction) rows held out, drawn on `stream` of
    `seed`; nothing is held out when that would leave fewer than 2 rows to keep or none to hold."""
    n_held = int(round(len(df) * fraction))
    if n_held < 1 or len(df) - n_held < 2:
        return df, df.iloc[:0]
    perm = numpy_rng(seed, stream).permutation(len(df))
    return df.iloc[np.sort(perm[n_held:])], df.iloc[np.sort(perm[:n_held])]


def subsample_positions(n: int, k: int, seed: int, stream: int) -> np.ndarray:
    """Sorted positions of a uniform sample of min(k, n) of n rows, without replacement."""
    if k >= n:
        return np.arange(n)
    return np.sort(numpy_rng(seed, stream).choice(n, size=k, replace=False))
