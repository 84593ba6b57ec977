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


def test_a_grid_keeps_repeated_values_with_their_share_and_every_point_a_finite_likelihood():
    rng = np.random.default_rng(3)
    round_incomes = rng.choice([30_000, 40_000, 45_000, 50_000, 60_000, 75_000, 100_000], 1_800)
    once = rng.choice(np.arange(20_001, 199_999, 2), 200, replace=False)  # odd: never a round income
    values = pd.Series(np.concatenate([round_incomes, once]))
    column = next(c for c in infer_schema(pd.DataFrame({"x": values})).columns)
    binned = BinnedColumn.fit(column, values, n_bins=8, max_rows=20_000, rng=np.random.default_rng(0))
    assert binned.grid and binned.rest is not None
    repeated = set(values.value_counts().loc[lambda c: c >= 2].index)
    assert set(binned.support) <= repeated and not set(binned.support) & set(once)  # no value of one row kept

    # within every bin the support's shares plus the uniform rest over its points sum to one
    points = np.arange(binned.lo[0], binned.hi[-1] + 1)
    token, _, log_within = binned.tokenize_units(points, np.zeros(len(points), bool))
    assert np.isfinite(log_within).all()
    assert np.allclose(np.bincount(token, weights=np.exp(log_within), minlength=binned.n_bins), 1.0)

    # the ideal model (bin by its share of rows, value by its share of the bin) keeps the round
    # values' share of all rows, where uniform bins gave them almost none
    share = np.bincount(binned.tokenize(values)[0], minlength=binned.n_bins) / len(values)
    probability = share[token] * np.exp(log_within)
    on_round = np.isin(points, round_incomes)
    assert probability[on_round].sum() == pytest.approx(0.9, abs=0.02)

    again = BinnedColumn.from_state_dict(column, binned.state_dict())
    assert np.array_equal(again.tokenize_units(points, np.zeros(len(points), bool))[2], log_within)
    # a range condition's share of each bin is the mass of the points inside it
    inside = (points >= 44_000) & (points <= 60_000)
    expected = np.bincount(token[inside], weights=np.exp(log_within[inside]), minlength=binned.n_bins)
    assert np.allclose(binned.overlap(binned.range_units(44_000, 60_000)), expected)


@pytest.mark.parametrize("decimals", [None, 1])
def test_extremes_held_by_a_few_rows_are_censored_for_training_and_keep_a_likelihood(decimals):
    """Three outliers (diamonds' table = 95 among values near 57): training rows are censored to
    the 5th most extreme value, so the bins beyond it get no mass; the outliers' own likelihood
    (held-out rows) stays finite, and the range survives a save and load."""
    rng = np.random.default_rng(3)
    values = pd.Series(np.concatenate([rng.normal(57.0, 2.0, 2_000), [83.0, 90.0, 95.0, 30.0]]))
    if decimals is not None:
        values = values.round(decimals)
    column = next(c for c in infer_schema(pd.DataFrame({"x": values})).columns if c.name == "x")
    binned = BinnedColumn.fit(column, values, n_bins=48, max_rows=20_000, rng=np.random.default_rng(0))
    ordered = np.sort(values.to_numpy()) * binned.scale
    assert (binned.protect_lo, binned.protect_hi) == pytest.approx((ordered[4], ordered[-5]))
    assert binned.protect_hi < 70 * binned.scale and binned.protect_lo > 40 * binned.scale

    censored, _, censored_within = binned.tokenize(values, censor=True)
    plain, _, plain_within = binned.tokenize(values)
    tops = {int(t) for t in plain[-4:-1]}  # the three high outliers' own bins
    assert not tops & set(censored.tolist())  # no training row lands in a bin beyond the range
    # ... but in the bins at the range's ends
    assert (binned.lo[censored[-4:-1]] < binned.protect_hi).all() and binned.lo[censored[-1]] == binned.protect_lo
    assert plain[-1] != censored[-1] and binned.hi[plain[-1]] < binned.protect_lo
    assert np.isfinite(plain_within).all() and np.isfinite(censored_within).all()
    assert (censored[:-4] == plain[:-4]).sum() >= 1_990  # the body is untouched
    beyond = binned.beyond_protected()  # the bins free draws skip: the outliers', no training row's
    assert beyond[sorted(tops)].all() and beyond[plain[-1]] and not beyond[censored].any()

    again = BinnedColumn.from_state_dict(column, binned.state_dict())
    assert (again.protect_lo, again.protect_hi) == (binned.protect_lo, binned.protect_hi)
    assert (again.tokenize(values, censor=True)[0] == censored).all()
