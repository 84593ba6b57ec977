"""The table encoder is reversible: decode(encode(df)) gives the table back.

Exactly for categoricals, booleans and nulls; within float32 tolerance for numbers and datetimes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthpipe.generators.schema import ColumnKind, infer_schema
from synthpipe.generators.transforms import OTHER, TableEncoder, fit_gmm_1d


def assert_round_trip(df: pd.DataFrame, back: pd.DataFrame, schema) -> None:
    assert list(back.columns) == list(df.columns)
    for column in schema.columns:
        a, b = df[column.name], back[column.name]
        if column.kind == ColumnKind.ID:
            continue  # minted fresh by design
        assert a.isna().tolist() == b.isna().tolist(), column.name
        assert str(b.dtype) == str(a.dtype), (column.name, a.dtype, b.dtype)
        present = a.notna().to_numpy()
        if column.kind in (ColumnKind.NUMERICAL, ColumnKind.INTEGER):
            x, y = a[present].astype(float).to_numpy(), b[present].astype(float).to_numpy()
            scale = max(1.0, float(np.abs(x).max(initial=0)))
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-5 * scale + 1e-9, err_msg=column.name)
        elif column.kind == ColumnKind.DATETIME:
            delta = (a[present] - b[present]).abs().max()
            assert pd.isna(delta) or delta <= pd.Timedelta(seconds=120), (column.name, delta)
        else:
            assert a[present].tolist() == b[present].tolist(), column.name


def _encode(df: pd.DataFrame, overrides: dict | None = None) -> tuple:
    """The schema inferred for `df`, a default TableEncoder fitted on it, and `df` encoded."""
    schema = infer_schema(df, overrides)
    enc = TableEncoder().fit(df, schema)
    return schema, enc, enc.encode(df)


def test_round_trip_of_every_kind(mixed_table):
    schema, enc, encoded = _encode(mixed_table)
    back = enc.decode(encoded, 0)
    assert_round_trip(mixed_table, back, schema)
    assert (back["constant"] == "same").all()
    assert not set(back["id"]) & set(mixed_table["id"])


def test_round_trip_of_the_shipped_table(acs12):
    schema, enc, encoded = _encode(acs12)
    assert_round_trip(acs12, enc.decode(encoded), schema)


def test_state_dict_is_json_and_restores_the_same_decoder(mixed_table):
    _, enc, encoded = _encode(mixed_table)
    again = TableEncoder.from_state_dict(json.loads(json.dumps(enc.state_dict())))
    pd.testing.assert_frame_equal(
        enc.decode(encoded, 1), again.decode(encoded, 1)
    )


def test_to_dense_builds_one_hot_blocks(mixed_table):
    _, enc, encoded = _encode(mixed_table)
    dense = enc.to_dense(torch.as_tensor(encoded.values), torch.as_tensor(encoded.codes))
    assert dense.shape == (len(mixed_table), enc.dense_dim_)
    for span in enc.discrete_spans:
        block = dense[:, span.start : span.start + span.width]
        assert torch.all(block.sum(dim=1) == 1)
        assert torch.equal(block.argmax(dim=1), torch.as_tensor(encoded.codes[:, span.index]))


def test_gmm_finds_separated_modes_and_point_masses():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(3000), rng.normal(100, 5, 3000), rng.normal(1000, 50, 4000)])
    weights, means, stds = fit_gmm_1d(x)
    for target, share in ((0, 0.3), (100, 0.3), (1000, 0.4)):
        near = np.abs(means - target) < 0.1 * max(target, 10)
        assert near.any(), (target, means)
        assert abs(weights[near].sum() - share) < 0.05


def test_spikes_become_exact_atoms_and_dense_runs_stay_with_the_mixture():
    """Round-number spikes (a 40-hour week) decode to exactly their value whatever the model's
    within-mode output is; a smooth column on a fine grid gets no atoms."""
    rng = np.random.default_rng(0)
    n = 5_000
    hours = rng.integers(1, 100, n).astype(float)
    spike = rng.random(n)
    hours[spike < 0.40], hours[(spike >= 0.40) & (spike < 0.48)], hours[(spike >= 0.48) & (spike < 0.53)] = 40, 50, 30
    df = pd.DataFrame({"hours": hours.astype(int), "carat": np.round(rng.lognormal(-0.3, 0.4, n), 2)})
    _, enc, encoded = _encode(df)
    h, c = enc.encoders_["hours"], enc.encoders_["carat"]
    atoms = {float(m) for m, s in zip(h.means, h.stds, strict=True) if s < 1e-6}
    assert {40.0, 50.0, 30.0} <= atoms and h.n_modes <= 10
    assert not any(s < 1e-6 for s in c.stds)  # each carat value is about as common as its neighbours
    mode = int(np.argmax(h.means == 40.0))
    span = next(s for s in enc.discrete_spans if s.column == "hours" and s.role == "mode")
    rows_at_40 = df["hours"].to_numpy() == 40
    assert (encoded.codes[rows_at_40, span.index] == mode).all()
    assert (encoded.codes[~rows_at_40, span.index] != mode).all()
    # any within-mode output of a model decodes an atom to exactly its value
    out = h.decode(rng.uniform(-1, 1, (100, 1)).astype(np.float32), [np.full(100, mode)])
    assert (out == 40).all()


def test_high_cardinality_is_bounded_and_folds_the_tail():
    rng = np.random.default_rng(0)
    n = 40_000
    df = pd.DataFrame({"user": [f"u{i}" for i in rng.integers(0, 30_000, n)], "x": rng.normal(size=n)})
    schema = infer_schema(df)
    assert schema["user"].kind == ColumnKind.CATEGORICAL
    enc = TableEncoder(max_categories=100).fit(df, schema)
    assert enc.dense_dim_ < 130  # 100 head categories + OTHER + the numeric column's blocks
    encoded = enc.encode(df)
    assert encoded.codes.dtype == np.int64 and encoded.values.dtype == np.float32
    back = enc.decode(encoded, 0)
    assert OTHER not in set(back["user"])
    assert set(back["user"]) <= set(df["user"])


def test_large_table_fits_quickly_on_a_bounded_subsample():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"v": rng.lognormal(3, 1, 300_000)})
    enc = TableEncoder(max_fit_rows=20_000).fit(df, infer_schema(df))
    assert enc.encoders_["v"].n_modes >= 1  # fitted from 20k rows, encoded over all rows:
    assert enc.encode(df).values.shape == (300_000, 1)


@st.composite
def tables(draw):
    n = draw(st.integers(min_value=2, max_value=40))
    columns = {}
    n_cols = draw(st.integers(min_value=1, max_value=5))
    for i in range(n_cols):
        kind = draw(st.sampled_from(["float", "int", "cat", "bool", "datetime", "nullable_int"]))
        nulls = draw(st.booleans())

        def with_nulls(values, dtype=None, nulls=nulls):
            mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) if nulls else np.zeros(n, bool)
            s = pd.Series(values, dtype=dtype)
            return s.mask(mask) if mask.any() else s

        if kind == "float":
            vals = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=n, max_size=n))
            columns[f"f{i}"] = with_nulls(np.array(vals, dtype=np.float64))
        elif kind == "int":
            columns[f"i{i}"] = pd.Series(draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n)), dtype="int64")
        elif kind == "nullable_int":
            columns[f"n{i}"] = with_nulls(draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)), dtype="Int64")
        elif kind == "cat":
            vals = draw(st.lists(st.sampled_from(["a", "b", "ç", "dé", "e f"]), min_size=n, max_size=n))
            columns[f"c{i}"] = with_nulls(np.array(vals, dtype=object))
        elif kind == "bool":
            columns[f"b{i}"] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        else:
            days = draw(st.lists(st.integers(0, 3650), min_size=n, max_size=n))
            columns[f"d{i}"] = pd.Series(pd.Timestamp("2015-01-01", tz="UTC") + pd.to_timedelta(days, "D"))
    return pd.DataFrame(columns)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_decode_inverts_encode_on_random_tables(df):
    schema, enc, encoded = _encode(df)
    assert encoded.values.shape[0] == encoded.codes.shape[0] == len(df) or enc.n_values_ + enc.n_codes_ == 0
    assert_round_trip(df, enc.decode(encoded, 0), schema)


@pytest.mark.parametrize("dtype", ["int64", "Int64"])
def test_very_large_integers_stay_integers_in_range(dtype):
    base = 2**62
    df = pd.DataFrame({"big": pd.array([base + i * 1_000_003 for i in range(200)], dtype=dtype)})
    _, enc, encoded = _encode(df, {"big": {"kind": "integer"}})
    back = enc.decode(encoded)
    assert str(back["big"].dtype) == dtype
    assert back["big"].min() >= df["big"].min() and back["big"].max() <= df["big"].max()
    np.testing.assert_allclose(back["big"].astype(float), df["big"].astype(float), rtol=1e-6)


def _rates_table(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """A loans-like interest rate: 40 values on a 0.01 grid, plus three rates held by one row."""
    rng = np.random.default_rng(seed)
    grid = np.round(np.sort(rng.choice(np.arange(500, 3100), 40, replace=False)) / 100, 2)
    rate = rng.choice(grid, n, p=rng.dirichlet(np.ones(40) * 3))
    rate[:3] = [5.01, 17.77, 30.99]  # not on the grid: each identifies its row
    return pd.DataFrame({"rate": rate, "amount": np.round(rng.lognormal(9, 0.6, n), 2)})


def test_a_column_on_a_few_values_is_discrete_and_decodes_only_its_kept_values():
    """Why: a mixture smears 40 rates into a density, and the generator then emits rates that
    exist nowhere; a discrete column decodes to exactly a kept value, never a rare one."""
    df = _rates_table()
    _, enc, encoded = _encode(df)
    rate, amount = enc.encoders_["rate"], enc.encoders_["amount"]
    assert rate.discrete and not amount.discrete
    counts = df["rate"].value_counts()
    kept = set(counts.index[counts >= 5])
    assert set(rate.means.tolist()) == kept and rate.n_modes == len(kept)
    np.testing.assert_allclose(rate.weights, counts[sorted(kept)].to_numpy() / counts[sorted(kept)].sum())
    back = enc.decode(encoded, 0)
    on_grid = df["rate"].isin(kept).to_numpy()
    assert (back["rate"][on_grid] == df["rate"][on_grid]).all()  # kept values round-trip exactly
    assert back["rate"].isin(kept).all()  # the three rare rates snapped to a kept neighbour
    rng = np.random.default_rng(1)
    modes = rng.integers(0, rate.n_modes, 500)
    out = rate.decode(rng.normal(0, 3, (500, 1)).astype(np.float32), [modes])
    assert out.isin(kept).all() and (out.to_numpy() == rate.means[modes]).all()


def test_a_wide_or_unrepeated_column_is_not_discrete():
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({"minute": rng.integers(0, 200, 5_000)})  # 200 values: beyond 64
    sparse = pd.DataFrame({"x": np.concatenate([rng.integers(0, 10, 900), rng.normal(size=100)])})  # 10% unrepeated
    assert not _encode(wide)[1].encoders_["minute"].discrete
    assert not _encode(sparse)[1].encoders_["x"].discrete


def test_discrete_state_round_trips_through_json():
    df = _rates_table()
    _, enc, encoded = _encode(df)
    state = json.loads(json.dumps(enc.state_dict()))
    assert state["columns"]["rate"]["discrete"] is True and "discrete" not in state["columns"]["amount"]
    again = TableEncoder.from_state_dict(state)
    assert again.encoders_["rate"].discrete
    pd.testing.assert_frame_equal(again.decode(encoded, 0), enc.decode(encoded, 0))
