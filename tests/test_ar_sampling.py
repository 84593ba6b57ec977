"""Autoregressive sampling draws exactly from the model: Gumbel-max against softmax, temperature
and nucleus, and range truncation, each checked with a chi-squared test on real draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chisquare

from synthpipe.generators.ar_codec import TokenCodec
from synthpipe.generators.ar_sampling import gumbel_argmax, nucleus
from synthpipe.generators.autoregressive import AutoregressiveTransformer
from synthpipe.generators.schema import infer_schema

SMALL = {"d_model": 16, "n_layers": 2, "n_heads": 2, "progress": False, "batch_size": 64, "dropout": 0.0}


def _chi2_p(observed: np.ndarray, probs: np.ndarray) -> float:
    keep = probs > 0
    assert observed[~keep].sum() == 0, "a token of probability zero was drawn"
    expected = probs[keep] / probs[keep].sum() * observed.sum()
    return float(chisquare(observed[keep], expected).pvalue)


def test_gumbel_max_draws_a_wide_vocabulary_with_softmax_frequencies():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 500, generator=g)
    draws = torch.cat([gumbel_argmax(logits.expand(10_000, -1), g) for _ in range(10)])
    counts = np.bincount(draws.numpy(), minlength=500)
    probs = torch.softmax(logits[0].double(), dim=0).numpy()
    assert _chi2_p(counts, probs) > 1e-3
    # the test has power: draws from slightly different probabilities are rejected
    assert _chi2_p(counts, probs * np.linspace(0.8, 1.2, 500)) < 1e-6


def test_nucleus_then_gumbel_max_draws_the_renormalised_nucleus():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 50, generator=g) * 2
    kept = nucleus(logits, 0.8)
    draws = gumbel_argmax(kept.expand(100_000, -1), g)
    probs = torch.softmax(kept[0].double(), dim=0).numpy()
    assert (probs > 0).sum() < 50 and probs[probs > 0].min() > 0
    assert _chi2_p(np.bincount(draws.numpy(), minlength=50), probs) > 1e-3


def _table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    a = rng.choice(["x", "y", "z", "w", "v"], n, p=[0.35, 0.25, 0.2, 0.15, 0.05])
    k = np.where(a == "x", rng.integers(0, 20, n), rng.integers(10, 40, n))
    return pd.DataFrame({"a": a, "k": k})


@pytest.fixture(scope="module")
def model() -> AutoregressiveTransformer:
    return AutoregressiveTransformer(**SMALL, epochs=6, n_bins=6, learning_rate=5e-3, patience=0).fit(_table())


def _first_logits(model: AutoregressiveTransformer, column: int) -> torch.Tensor:
    net, dev = model.model_, model.device_
    zero = torch.zeros(1, dtype=torch.long, device=dev)
    with torch.no_grad():
        hidden = net.step(torch.tensor([net.bos]), zero, torch.full((1,), 0.5), zero + column, net.new_cache(1, 1, dev), 0)
        return net.column_logits(hidden, column)[0].double()


def test_sampled_rows_follow_the_model_with_temperature_and_top_p(model):
    enc = model.codec_.categories["a"]
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9)):
        model.config.temperature, model.config.top_p = temperature, top_p
        out = model.sample(30_000, seed=3)["a"]
        logits = _first_logits(model, 0).float() / temperature
        if top_p < 1:
            logits = nucleus(logits[None], top_p)[0]
        probs = torch.softmax(logits.double(), dim=0).numpy()
        counts = np.array([(out == c).sum() for c in enc.categories])
        assert _chi2_p(counts, probs) > 1e-3, (temperature, top_p)
    model.config.temperature, model.config.top_p = 1.0, 1.0


@pytest.mark.parametrize("support", [True, False], ids=["support", "uniform-bins"])
def test_a_range_condition_draws_the_truncated_distribution_exactly(model, support):
    binned = model.codec_.binned["k"]
    kept = binned.support, binned.support_weight, binned.rest
    assert binned.rest is not None and len(binned.support) > 10  # every k in 0..39 is seen ~10 times
    if not support:  # the same model with every bin uniform over its points
        binned.support, binned.support_weight, binned.rest = np.zeros(0), np.zeros(0), None
    try:
        out = model.sample(30_000, conditions={"k": (12.5, 31)}, seed=4)["k"].to_numpy()
        values = np.arange(13, 32)
        token, _, log_within = binned.tokenize_units(values.astype(float), np.zeros(len(values), bool))
    finally:
        binned.support, binned.support_weight, binned.rest = kept
    assert out.min() >= 13 and out.max() <= 31
    token_probs = torch.softmax(_first_logits(model, 1), dim=0).numpy()  # k first: it is the only ranged column
    if not support:
        assert np.allclose(np.exp(log_within), 1 / binned.size[token])
    probs = token_probs[token] * np.exp(log_within)  # p(bin) x the value's share of its bin
    counts = np.array([(out == v).sum() for v in values])
    assert _chi2_p(counts, probs) > 1e-3


def test_codec_state_is_json_and_round_trips():
    import json

    data = _table(100)
    codec = TokenCodec(n_bins=5, max_categories=3).fit(data, infer_schema(data), seed=0)
    state = json.loads(json.dumps(codec.state_dict()))
    again = TokenCodec.from_state_dict(state)
    assert again.columns == codec.columns and again.vocab_sizes == codec.vocab_sizes
    a, b = codec.encode(data), again.encode(data)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.log_within, b.log_within)
    assert codec.categories["a"].tail  # max_categories=3 folds the rarest values into OTHER


def test_free_draws_stay_inside_the_protected_range_and_conditions_still_reach_past_it():
    """Training censors rows to each column's 5th most extreme values, which leaves the bins past
    them with little mass but not none; at temperature 3 (a flattened softmax) the sampler would
    land there often, yet free cells never do. A range condition past the end is still met, and
    the outliers keep a finite likelihood."""
    rng = np.random.default_rng(11)
    body = rng.normal(57.0, 2.0, 600).round(1)
    data = pd.DataFrame({"x": np.concatenate([body, [83.0, 90.0, 95.0, 30.0]])})
    data["g"] = np.where(data["x"] > 57, "hi", "lo")
    fitted = AutoregressiveTransformer(**SMALL, epochs=2, n_bins=12, patience=0, temperature=3.0).fit(data)
    binned = fitted.codec_.binned["x"]
    beyond = binned.beyond_protected()
    assert beyond.sum() == 2  # [30, 5th smallest] and [5th largest, 95]
    low, high = binned.protect_lo / binned.scale, binned.protect_hi / binned.scale
    logits = _first_logits(fitted, fitted.codec_.columns.index("x")).float() / 3.0
    p_beyond = float(torch.softmax(logits, dim=0)[torch.as_tensor(np.append(beyond, False)[: len(logits)])].sum())
    assert p_beyond * 20_000 > 50  # unmasked, the first draw alone would land past the range ~50+ times

    free = fitted.sample(20_000, seed=2)["x"]
    assert free.between(low, high).all(), (free.min(), free.max(), low, high)
    past = fitted.sample(200, conditions={"x": (80.0, 100.0)}, seed=3)["x"]
    assert past.between(max(80.0, high), 95.0).all()
    assert np.isfinite(fitted.log_likelihood(data.tail(4))).all()
