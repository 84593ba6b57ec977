"""Seeded row splits and subsamples, the one copy that the pipeline and the generators use.

Why one: the pipeline's holdout split and a generator's validation split were the same code with
different magic seeds; here each caller names its seed stream, and rows keep their source order
on both sides (a split changes which rows, not how they are ordered).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthpipe.generators.seeding import numpy_rng


def split_positions(n: int, fraction: float, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept positions, held-out positions), both sorted: round(n * fraction) rows held out, drawn
    by one permutation of `stream` of `seed`; nothing is held out when that would leave fewer than
    2 rows to keep or none to hold."""
    n_held = int(round(n * fraction))
    if n_held < 1 or n - n_held < 2:
        return np.arange(n), np.arange(0)
    perm = numpy_rng(seed, stream).permutation(n)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def split_rows(df: pd.DataFrame, fraction: float, seed: int, stream: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, held-out rows) of `df` by `split_positions`; rows keep their source order."""
    kept, held = split_positions(len(df), fraction, seed, stream)
    if len(held) == 0:
        return df, df.iloc[:0]
    return df.iloc[kept], df.iloc[held]


def subsample_positions(n: int, k: int, seed: int, stream: int) -> np.ndarray:
    """Sorted positions of a uniform sample of min(k, n) of n rows, without replacement."""
    if k >= n:
        return np.arange(n)
    return np.sort(numpy_rng(seed, stream).choice(n, size=k, replace=False))
