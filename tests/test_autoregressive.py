"""Autoregressive transformer: normalised exact likelihoods, exact conditional sampling (categories,
numeric and datetime ranges, per-row conditions), KV-cache equivalence, persistence and resume."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from synthpipe.generators import get_generator_class
from synthpipe.generators.autoregressive import ARTransformer, AutoregressiveTransformer, causal_attention
from synthpipe.generators.base import BaseGenerator
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import infer_schema

SMALL = {"d_model": 16, "n_layers": 2, "n_heads": 2, "progress": False, "batch_size": 64, "dropout": 0.0}


def _discrete_table(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    a = rng.choice(["x", "y", "z", "w"], n, p=[0.4, 0.3, 0.2, 0.1])
    b = np.where(a == "x", rng.choice(["p", "q"], n, p=[0.8, 0.2]), rng.choice(["p", "q"], n, p=[0.3, 0.7]))
    c = rng.choice(["u", "v", None], n, p=[0.5, 0.3, 0.2])
    k = rng.integers(0, 8, n)
    return pd.DataFrame({"a": a, "b": b, "c": c, "k": k})


def test_exact_likelihood_sums_to_one_over_every_possible_row():
    data = _discrete_table()
    # max_categories=2 folds "z" and "w" into the OTHER bucket: their shares of it must count
    model = AutoregressiveTransformer(**SMALL, epochs=3, n_bins=4, max_categories=2).fit(data)
    assert model.likelihood_kind == "exact"
    assert model.schema_["k"].kind.value == "integer"  # a pmf over the integers of each bin
    assert model.codec_.binned["k"].n_bins < 8  # bins hold several integers, so within-bin mass matters
    every_row = pd.DataFrame(
        list(itertools.product(["x", "y", "z", "w"], ["p", "q"], ["u", "v", None], range(0, 8))),
        columns=["a", "b", "c", "k"],
    )
    for order in (None, ["k", "c", "b", "a"], ["b", "k", "a", "c"]):
        total = np.exp(model.log_likelihood(every_row, order=order)).sum()
        assert total == pytest.approx(1.0, abs=1e-4), order
    by_column = model.log_likelihood_by_column(every_row)
    assert list(by_column.columns) == ["a", "b", "c", "k"]
    np.testing.assert_allclose(by_column.sum(axis=1).to_numpy(), model.log_likelihood(every_row))
    # values the model cannot produce have probability zero
    impossible = pd.DataFrame({"a": ["nope", "x"], "b": ["p", "p"], "c": ["u", "u"], "k": [1, 99]})
    assert np.isneginf(model.log_likelihood(impossible)).all()


def test_real_valued_density_with_an_atom_integrates_to_one():
    rng = np.random.default_rng(2)
    n = 300
    g = rng.choice(["lo", "hi"], n)
    y = np.where(rng.random(n) < 0.3, 0.0, np.where(g == "lo", rng.gamma(2, 1, n), 5 + rng.gamma(2, 1, n)))
    data = pd.DataFrame({"g": g, "y": y})
    schema = infer_schema(data, {"y": {"decimals": None}})  # genuinely continuous: a density
    model = AutoregressiveTransformer(**SMALL, epochs=3, n_bins=6).fit(data, schema)
    binned = model.codec_.binned["y"]
    assert not binned.grid and 0.0 in binned.lo[binned.n_intervals :]  # the spike at 0 is an atom
    # y comes last, so its density is constant on each interval: midpoints integrate exactly
    points = np.concatenate(
        [(binned.lo + binned.hi)[: binned.n_intervals] / 2, binned.lo[binned.n_intervals :]]
    )
    weights = np.concatenate([binned.size[: binned.n_intervals], np.ones(binned.n_bins - binned.n_intervals)])
    grid = pd.DataFrame({"g": np.repeat(["lo", "hi"], len(points)), "y": np.tile(points, 2)})
    density = np.exp(model.log_likelihood(grid, order=["g", "y"]))
    assert float((density * np.tile(weights, 2)).sum()) == pytest.approx(1.0, abs=1e-4)


@pytest.fixture(scope="module")
def mixed_model():
    rng = np.random.default_rng(0)
    n = 300
    data = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "amount": np.round(
                np.concatenate([rng.normal(50, 10, n // 2), rng.normal(200, 20, n - n // 2)]), 2
            ),
            "count": rng.integers(0, 1000, n),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2024-01-01", tz="Europe/Paris")
            + pd.to_timedelta(rng.integers(0, 365, n), "D"),
            "score": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "constant": "same",
        }
    )
    # max_categories=3 folds Kyiv into OTHER, so conditioning on it must still emit Kyiv itself
    return AutoregressiveTransformer(**SMALL, epochs=4, max_categories=3).fit(data), data


def test_conditions_are_exact_for_categories_numeric_and_datetime_ranges(mixed_model):
    model, data = mixed_model
    assert "Kyiv" in model.codec_.categories["city"].tail
    conditions = {
        "city": "Kyiv",
        "amount": (40, 60.5),
        "when": ("2024-03-01", "2024-03-31 23:59:59"),
        "flag": True,
    }
    out = model.sample(150, conditions=conditions, seed=4)
    assert len(out) == 150
    assert out.dtypes.to_dict() == data.dtypes.to_dict()
    assert (out["city"] == "Kyiv").all() and out["flag"].all()
    assert out["amount"].between(40, 60.5).all()
    local = out["when"].dt.tz_localize(None)
    assert local.between(pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-31 23:59:59")).all()
    # two ranges at once (the exact acceptance path), one of them open-ended, on an integer column
    both = model.sample(100, conditions={"count": (500, None), "amount": (None, 100.0)}, seed=5)
    assert len(both) == 100 and (both["count"] >= 500).all() and (both["amount"] <= 100).all()
    assert both["count"].dtype == data["count"].dtype
    # a single value on a numeric column is revealed exactly
    point = model.sample(20, conditions={"score": 0.25}, seed=6)
    assert (point["score"] == 0.25).all()


def test_per_row_conditions_with_nan_meaning_unconditioned(mixed_model):
    model, data = mixed_model
    conditions = pd.DataFrame(
        {
            "city": ["Kyiv", np.nan, "Oslo", np.nan],
            "count": [(10, 20), np.nan, None, (900, 999)],
            "score": [np.nan, 0.5, (0.1, 0.2), np.nan],
        }
    )
    out = model.sample(4, conditions=conditions, seed=1)
    assert out.dtypes.to_dict() == data.dtypes.to_dict()
    assert out.loc[0, "city"] == "Kyiv" and 10 <= out.loc[0, "count"] <= 20
    assert out.loc[1, "score"] == 0.5
    assert out.loc[2, "city"] == "Oslo" and 0.1 <= out.loc[2, "score"] <= 0.2
    assert 900 <= out.loc[3, "count"] <= 999


def test_impossible_conditions_are_config_errors_naming_the_column(mixed_model):
    model, _ = mixed_model
    with pytest.raises(ConfigError, match="amount"):
        model.sample(5, conditions={"amount": (1000, 2000)})
    with pytest.raises(ConfigError, match="when"):
        model.sample(5, conditions={"when": ("1999-01-01", "1999-12-31")})
    with pytest.raises(ConfigError, match="city"):
        model.sample(5, conditions={"city": "Paris"})
    with pytest.raises(ConfigError, match="count"):
        model.sample(5, conditions={"count": 12.5})
    with pytest.raises(ConfigError, match="id"):
        model.sample(5, conditions={"id": 3})


def test_conditioning_shifts_the_other_column_as_in_the_data():
    rng = np.random.default_rng(3)
    n = 800
    x = rng.choice(["a", "b"], n)
    y = np.round(np.where(x == "a", rng.normal(0, 1, n), rng.normal(6, 1, n)), 2)
    data = pd.DataFrame({"x": x, "y": y})
    model = AutoregressiveTransformer(**SMALL, epochs=25, n_bins=16, learning_rate=5e-3, patience=0).fit(data)
    given_a = model.sample(300, conditions={"x": "a"}, seed=1)["y"]
    given_b = model.sample(300, conditions={"x": "b"}, seed=1)["y"]
    assert abs(given_a.mean() - 0) < 1.0 and abs(given_b.mean() - 6) < 1.0
    # the other direction: a range on y (sampled first, truncated) decides x
    high_y = model.sample(300, conditions={"y": (4.0, 8.0)}, seed=2)
    assert high_y["y"].between(4, 8).all() and (high_y["x"] == "b").mean() > 0.9


def test_temperature_and_top_p_sharpen_sampling():
    data = _discrete_table()
    model = AutoregressiveTransformer(**SMALL, epochs=15, learning_rate=1e-2, patience=0).fit(data)
    plain = model.sample(400, seed=0)
    model.config.top_p, model.config.temperature = 0.5, 0.5
    sharp = model.sample(400, seed=0)
    assert (sharp["a"] == "x").mean() > (plain["a"] == "x").mean()
    model.config.temperature = 0.0
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(5)


def test_seeded_sampling_and_save_load_give_identical_rows(mixed_model, tmp_path):
    model, data = mixed_model
    conditions = {"amount": (100, 250), "city": "Lima"}
    a, b = model.sample(80, conditions=conditions, seed=7), model.sample(80, conditions=conditions, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.drop(columns="id").equals(model.sample(80, conditions=conditions, seed=8).drop(columns="id"))
    model.save(tmp_path / "m")
    loaded = BaseGenerator.load(tmp_path / "m")
    assert isinstance(loaded, get_generator_class("autoregressive"))
    pd.testing.assert_frame_equal(loaded.sample(80, conditions=conditions, seed=7), a)
    np.testing.assert_array_equal(loaded.log_likelihood(data), model.log_likelihood(data))


def test_kv_cached_steps_equal_the_full_causal_forward():
    torch.manual_seed(0)
    net = ARTransformer([3, 5, 2, 7], d_model=16, n_layers=2, n_heads=4, dropout=0.0).eval()
    tokens = torch.stack([torch.randint(0, v, (6,)) for v in [3, 5, 2, 7]], dim=1)
    frac = torch.rand(6, 4)
    order = torch.rand(6, 4).argsort(dim=1)  # a different order per row
    with torch.no_grad():
        full, cached = net(tokens, frac, order), net.hidden_cached(tokens, frac, order)
        torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.column_logits(cached[:, 2], 1), net.column_logits(full[:, 2], 1))


def test_resume_continues_exactly_where_training_stopped(tmp_path):
    data = _discrete_table(160)
    params = {**SMALL, "val_fraction": 0.0, "checkpoint_every": 2, "seed": 3}
    straight = AutoregressiveTransformer(**params, epochs=4).fit(data)
    AutoregressiveTransformer(**params, epochs=2, checkpoint_dir=str(tmp_path)).fit(data)
    resumed = AutoregressiveTransformer(**params, epochs=4, checkpoint_dir=str(tmp_path)).fit(
        data, resume=True
    )
    assert resumed.history_["epoch"] == [0, 1, 2, 3]
    np.testing.assert_allclose(resumed.log_likelihood(data), straight.log_likelihood(data), rtol=1e-5)
    pd.testing.assert_frame_equal(resumed.sample(50, seed=1), straight.sample(50, seed=1))


def test_grouped_heads_give_each_columns_own_softmax():
    """Heads are batched per group of similar vocabularies (3 and 5 share width 8, 9 and 20 do
    not): every column's log-probabilities must equal a softmax over that column's logits only."""
    torch.manual_seed(0)
    sizes = [3, 5, 9, 20, 2]
    net = ARTransformer(sizes, d_model=16, n_layers=1, n_heads=2, dropout=0.0).eval()
    assert sorted(len(columns) for columns, _, _ in net.head_groups) == [1, 1, 3]
    tokens = torch.stack([torch.randint(0, v, (7,)) for v in sizes], dim=1)
    frac, order = torch.rand(7, 5), torch.rand(7, 5).argsort(dim=1)
    with torch.no_grad():
        got = net.token_log_probs(tokens, frac, order)
        hidden = net(tokens, frac, order)
        at = order.argsort(dim=1)  # the position that predicts each column
        for c in range(len(sizes)):
            h = hidden[torch.arange(7), at[:, c]]
            want = torch.log_softmax(net.column_logits(h, c), dim=-1).gather(1, tokens[:, c : c + 1]).squeeze(1)
            torch.testing.assert_close(got[:, c], want, atol=1e-5, rtol=1e-5)


def test_written_out_bf16_attention_matches_the_fused_kernel():
    """The CPU bf16 path of causal_attention (three products) computes what SDPA computes."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 8) for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = causal_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    torch.testing.assert_close(got, want, atol=3e-2, rtol=3e-2)


def test_unset_learning_rate_follows_the_time_budget_and_a_set_one_is_kept():
    """A timed fit steps at TIMED_LEARNING_RATE and an untimed one at UNTIMED_LEARNING_RATE, both
    scaled by the rows a step uses; a rate the user sets is used in either case."""
    from synthpipe.generators.autoregressive import TIMED_LEARNING_RATE, UNTIMED_LEARNING_RATE

    data = pd.DataFrame({"a": np.arange(400) % 7, "b": np.linspace(0.0, 1.0, 400)})
    cases = [({}, UNTIMED_LEARNING_RATE), ({"time_budget_s": 30.0}, TIMED_LEARNING_RATE),
             ({"learning_rate": 1e-3, "time_budget_s": 30.0}, 1e-3), ({"learning_rate": 2e-3}, 2e-3)]
    assert TIMED_LEARNING_RATE != UNTIMED_LEARNING_RATE
    # the README's defaults: 03ba0f8 dropped ARConfig's batch_size line and fell back to 500
    assert AutoregressiveTransformer.Config().batch_size == 512
    for params, rate in cases:
        model = AutoregressiveTransformer(**SMALL, epochs=1, patience=0, **params).fit(data)
        assert model.learning_rate() == rate
        step_lr = model.optimizer_.param_groups[0]["lr"]
        assert step_lr == pytest.approx(rate * model.step_rows() / model.config.batch_size)


@pytest.mark.parametrize("value", [0, -1e-3, float("nan"), "fast"])
def test_a_bad_learning_rate_is_a_config_error_naming_it(value):
    with pytest.raises(ConfigError, match="learning_rate"):
        AutoregressiveTransformer(**SMALL, learning_rate=value).fit(pd.DataFrame({"a": [1, 2, 3] * 20}))
