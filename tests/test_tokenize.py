"""Quantile tokens of the autoregressive codec: a heavy tail must not become one wide uniform bin.

The check uses the ideal model of the tokens (each bin drawn with its share of the fitted rows,
the value uniform within the bin, as the codec samples it), so it tests the binning alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.schema import infer_schema
from synthpipe.generators.tokenize import BinnedColumn


def _binned_moments(values: pd.Series, decimals: int | None) -> tuple[float, float]:
    """Mean and the share above the real 99.5th percentile under the ideal binned density."""
    frame = pd.DataFrame({"x": values})
    schema = infer_schema(frame)
    column = next(c for c in schema.columns if c.name == "x")
    binned = BinnedColumn.fit(column, values, n_bins=48, max_rows=20_000, rng=np.random.default_rng(0))
    token, _, _ = binned.tokenize(values)
    share = np.bincount(token, minlength=binned.n_bins)[: binned.n_bins] / len(values)
    lo, hi = binned.lo / binned.scale, binned.hi / binned.scale
    mid = (lo + hi) / 2
    q = float(np.quantile(values, 0.995))
    above = np.clip((hi - np.maximum(lo, q)) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    above = np.where(hi > lo, above, (lo > q).astype(float))
    return float(share @ mid), float(share @ above)


@pytest.mark.parametrize("decimals", [None, 2])
def test_a_heavy_tail_keeps_its_mean_and_its_extremes_rare(decimals):
    rng = np.random.default_rng(1)
    values = pd.Series(np.exp(rng.normal(6.0, 1.4, 20_000)))  # wage-like: skew far above 5
    if decimals is not None:
        values = values.round(decimals)
    mean, above = _binned_moments(values, decimals)
    # one uniform top bin put the binned mean 78% above the real one
    assert mean == pytest.approx(values.mean(), rel=0.05)
    assert above == pytest.approx(0.005, abs=0.004)


def test_small_tables_and_few_bins_get_no_tail_bins():
    values = pd.Series(np.exp(np.random.default_rng(2).normal(size=30)))
    schema = infer_schema(pd.DataFrame({"x": values}))
    column = next(c for c in schema.columns if c.name == "x")
    binned = BinnedColumn.fit(column, values, n_bins=2, max_rows=20_000, rng=np.random.default_rng(0))
    assert binned.n_bins <= 2 * 2 + 2  # the model file's limit for n_bins = 2
