"""CTGAN: round trip, seeding, persistence, exact conditional sampling, resume, early stopping,
the mode-collapse monitor and the vectorised pieces (sampler, grouped Gumbel-softmax, dense layout)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from synthpipe.generators.errors import ConfigError
from synthpipe.generators.gan import (
    CTGAN,
    ConditionalSampler,
    Generator,
    Layout,
    ModeCollapseWarning,
    gumbel_like,
    run_folded,
)
from synthpipe.generators.schema import infer_schema
from synthpipe.generators.transforms import TableEncoder

SMALL = {"batch_size": 100, "embedding_dim": 16, "generator_dims": (32, 32), "discriminator_dims": (32, 32)}


def small(**params) -> CTGAN:
    return CTGAN(**{**SMALL, "epochs": 2, "progress": False, **params})


@pytest.fixture
def fitted(mixed_table: pd.DataFrame) -> CTGAN:
    return small(epochs=3, eval_every=1).fit(mixed_table)


def test_fit_sample_round_trip(fitted: CTGAN, mixed_table: pd.DataFrame) -> None:
    out = fitted.sample(250)
    assert len(out) == 250
    assert list(out.columns) == list(mixed_table.columns)
    assert (out.dtypes == mixed_table.dtypes).all()
    assert set(out["city"]) <= set(mixed_table["city"])
    assert (out["constant"] == "same").all()
    assert out["id"].is_unique
    assert not out["amount"].isna().any() and out["score"].isna().any()  # nulls only where the data has them
    assert out["count"].between(mixed_table["count"].min(), mixed_table["count"].max()).all()
    assert fitted.sample(0).shape == (0, mixed_table.shape[1])


def test_history_has_losses_validation_and_coverage(fitted: CTGAN) -> None:
    history = fitted.history_
    assert history["epoch"] == [0, 1, 2]
    for key in (
        "loss_d",
        "loss_g",
        "gradient_penalty",
        "cond_ce",
        "val_loss",
        "coverage_categories",
        "coverage_modes",
    ):
        assert len(history[key]) == 3 and all(math.isfinite(v) for v in history[key]), key
    assert all(0 <= v <= 1 for v in history["coverage_categories"] + history["coverage_modes"])


def test_same_seed_same_rows(mixed_table: pd.DataFrame) -> None:
    a = small(seed=3).fit(mixed_table).sample(120)
    b = small(seed=3).fit(mixed_table)
    pd.testing.assert_frame_equal(a, b.sample(120))
    assert not b.sample(120, seed=4).equals(a)
    pd.testing.assert_frame_equal(b.sample(120, seed=4), b.sample(120, seed=4))


def test_save_load_gives_identical_samples(fitted: CTGAN, tmp_path) -> None:
    fitted.save(tmp_path / "model")
    loaded = CTGAN.load(tmp_path / "model")
    pd.testing.assert_frame_equal(fitted.sample(200, seed=9), loaded.sample(200, seed=9))
    conditions = {"city": "Kyiv"}
    pd.testing.assert_frame_equal(
        fitted.sample(50, conditions, seed=2), loaded.sample(50, conditions, seed=2)
    )
    assert loaded.history_ == fitted.history_


# ---- exact conditional sampling -----------------------------------------------------------------


@pytest.fixture
def with_rare(mixed_table: pd.DataFrame) -> pd.DataFrame:
    table = mixed_table.copy()
    # 5 rows of 300: rare for the conditional sampler, but at min_category_count, so not
    # protected (tests/test_rare_categories.py covers the protected case)
    table.loc[:4, "city"] = "Riga"
    return table


def test_conditions_are_exact_including_a_rare_category(with_rare: pd.DataFrame) -> None:
    model = small(seed=1).fit(with_rare)
    for value in ("Oslo", "Riga"):
        out = model.sample(137, conditions={"city": value})
        assert len(out) == 137 and (out["city"] == value).all()
    out = model.sample(64, conditions={"flag": False})
    assert len(out) == 64 and (~out["flag"]).all()


def test_two_conditions_and_per_row_conditions(with_rare: pd.DataFrame) -> None:
    model = small(seed=2).fit(with_rare)
    out = model.sample(90, conditions={"city": "Riga", "flag": True})
    assert len(out) == 90 and (out["city"] == "Riga").all() and out["flag"].all()

    per_row = pd.DataFrame(
        {"city": ["Lima", None, "Riga", "Pune"] * 10, "flag": [None, True, False, None] * 10}
    )
    out = model.sample(40, conditions=per_row)
    assert len(out) == 40
    for col in per_row:
        wanted = per_row[col].notna()
        assert (out.loc[wanted, col].astype(object) == per_row.loc[wanted, col]).all()


def test_unseen_condition_value_lists_known_values(fitted: CTGAN) -> None:
    with pytest.raises(ConfigError, match=r"city='Paris'.*not seen in training.*Oslo"):
        fitted.sample(10, conditions={"city": "Paris"})
    with pytest.raises(ConfigError, match="categorical or boolean"):
        fitted.sample(10, conditions={"amount": 50.0})
    with pytest.raises(ConfigError, match="unknown column"):
        fitted.sample(10, conditions={"nope": 1})


@pytest.mark.parametrize("kind", ["only continuous", "only categorical"])
def test_tables_without_one_kind_of_column(kind: str) -> None:
    rng = np.random.default_rng(0)
    n = 200
    if kind == "only continuous":
        table = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n)})
    else:
        table = pd.DataFrame(
            {
                "a": rng.choice(["x", "y", None], n),
                "b": rng.random(n) < 0.5,
                "c": rng.choice(list("pqrstu"), n),
            }
        )
    model = small(eval_every=1).fit(table)
    out = model.sample(70)
    assert len(out) == 70 and list(out.columns) == list(table.columns)
    assert all(math.isfinite(v) for v in model.history_["val_loss"])
    if kind == "only categorical":
        assert out["a"].isna().any()  # the null category is generated like any other
        assert (model.sample(30, conditions={"c": "u"})["c"] == "u").all()


# ---- training: resume, early stopping, losses ---------------------------------------------------


def test_resume_continues_from_the_checkpoint_and_matches_an_uninterrupted_run(mixed_table, tmp_path) -> None:
    params = {"val_fraction": 0.0, "checkpoint_every": 2, "seed": 5}
    whole = small(epochs=4, checkpoint_dir=str(tmp_path / "whole"), **params).fit(mixed_table)

    small(epochs=2, checkpoint_dir=str(tmp_path / "crash"), **params).fit(mixed_table)
    resumed = small(epochs=4, checkpoint_dir=str(tmp_path / "crash"), **params)  # a new process after a crash
    resumed.fit(mixed_table, resume=True)

    assert resumed.history_["epoch"] == [0, 1, 2, 3]
    assert resumed.history_ == whole.history_  # the first two epochs come from the checkpoint
    pd.testing.assert_frame_equal(resumed.sample(100), whole.sample(100))


def test_early_stopping_stops_when_validation_stagnates(mixed_table: pd.DataFrame) -> None:
    # no score can improve by min_delta=10 (scores are distances of order 0.1): it stagnates
    model = small(epochs=40, eval_every=1, patience=2, min_delta=10.0).fit(mixed_table)
    assert model.stopped_early_
    assert model.history_["epoch"] == [0, 1, 2]  # best at epoch 0, then two stale scores
    assert model.best_epoch_ == 0


def test_non_saturating_loss_trains(mixed_table: pd.DataFrame) -> None:
    model = small(epochs=3, loss="non-saturating", gradient_penalty=0.0, generator_residual="add").fit(
        mixed_table
    )
    assert all(math.isfinite(v) for v in model.history_["loss_g"] + model.history_["loss_d"])
    assert model.history_["loss_d"][0] > 0  # softplus losses are positive, unlike the critic's
    out = model.sample(80, conditions={"city": "Lima"})
    assert (out["city"] == "Lima").all()


def test_invalid_parameters_are_named(mixed_table: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="loss"):
        small(loss="hinge").fit(mixed_table)
    with pytest.raises(ConfigError, match="multiple of pac"):
        small(batch_size=105).fit(mixed_table)
    with pytest.raises(ConfigError, match="generator_residual"):
        small(generator_residual="dense").fit(mixed_table)


# ---- mode-collapse monitor ----------------------------------------------------------------------


def test_collapsed_generator_triggers_a_coverage_warning(fitted: CTGAN, mixed_table: pd.DataFrame) -> None:
    layout = fitted.layout_
    out_layer = fitted.generator_net_.seq[-1]
    with torch.no_grad():  # every block's first class wins whatever the input: a collapsed generator
        out_layer.weight.zero_()
        out_layer.bias.fill_(-20.0)
        out_layer.bias[layout.code_start] = 20.0
    fitted.val_ = fitted._to_device(fitted.encoder_.encode(mixed_table))
    with pytest.warns(ModeCollapseWarning, match="mode collapse"):
        fitted._validation_loss()
        coverage = fitted._monitor()
    assert coverage["coverage_categories"] < 0.5 and coverage["coverage_modes"] < 0.5
    assert any("categories" in w for w in fitted.warnings_)


def test_healthy_coverage_does_not_warn(mixed_table: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        model = small(epochs=1, eval_every=1, coverage_alarm=0.0).fit(mixed_table)
    assert model.warnings_ == []


# ---- the vectorised pieces ----------------------------------------------------------------------


@pytest.fixture
def encoded(mixed_table: pd.DataFrame) -> tuple[TableEncoder, torch.Tensor, torch.Tensor]:
    encoder = TableEncoder(max_modes=4).fit(mixed_table, infer_schema(mixed_table))
    table = encoder.encode(mixed_table)
    return encoder, torch.as_tensor(table.values), torch.as_tensor(table.codes)


def test_layout_dense_matches_the_encoder(encoded) -> None:
    encoder, values, codes = encoded
    layout = Layout(encoder, torch.device("cpu"))
    torch.testing.assert_close(layout.dense(values, codes), encoder.to_dense(values, codes)[:, layout.order])
    assert sorted(layout.order.tolist()) == list(range(layout.dense_dim))  # a permutation


def test_activation_is_tanh_and_a_gumbel_softmax_per_block(encoded) -> None:
    """The grouped activation equals the per-block definition, block by block, in the GAN's
    layout (so the grouping and the permutation agree)."""
    encoder, _, _ = encoded
    layout = Layout(encoder, torch.device("cpu"))
    x = torch.randn(7, layout.dense_dim) * 30  # large logits: softmax must stay finite
    tau, nv = 0.2, layout.n_values
    torch.manual_seed(3)
    out = layout.activate(x, tau)
    torch.manual_seed(3)
    noise = gumbel_like(x[:, nv:])
    position = {int(e): i for i, e in enumerate(layout.order)}  # encoder column -> GAN column
    for span in encoder.spans_:
        cols = [position[span.start + k] for k in range(span.width)]
        if span.is_discrete:
            expected = torch.softmax((x[:, cols] + noise[:, [c - nv for c in cols]]) / tau, dim=1)
        else:
            expected = torch.tanh(x[:, cols])
        torch.testing.assert_close(out[:, cols], expected)
    assert torch.isfinite(out).all()


def test_sampler_draws_rows_of_the_drawn_category_with_columns_uniform(encoded) -> None:
    encoder, _, codes = encoded
    layout = Layout(encoder, torch.device("cpu"))
    sampler = ConditionalSampler(codes, layout, log_frequency=True)
    torch.manual_seed(0)
    g, rows = sampler.draw(20_000)
    column = layout.cond_col_of[g]
    assert torch.equal(codes[rows, layout.cond_code_index[column]], layout.cond_cat_of[g])
    share = torch.bincount(column, minlength=len(layout.cond_width)).double() / len(g)
    assert torch.allclose(share, torch.full_like(share, 1 / len(layout.cond_width)), atol=0.02)
    # within a column, categories follow log(1 + count), not count
    j = layout.cond_names.index("city")
    counts = sampler.counts[layout.cond_offset[j] : layout.cond_offset[j] + layout.cond_width[j]].double()
    expected = torch.log1p(counts) / torch.log1p(counts).sum()
    observed = torch.bincount(layout.cond_cat_of[g[column == j]], minlength=len(counts)).double()
    assert torch.allclose(observed / observed.sum(), expected, atol=0.03)


@pytest.mark.parametrize("residual", ["add", "concat"])
def test_folded_generator_equals_the_eval_mode_module(residual: str) -> None:
    """Sampling folds BatchNorm into the linear layers; the rows must not change."""
    torch.manual_seed(0)
    net = Generator(24, [32, 32], 16, residual)
    net.train()
    for _ in range(3):  # move the BatchNorm running statistics away from their initial values
        net(torch.randn(64, 24) * 3 + 1)
    net.eval()
    x = torch.randn(50, 24)
    with torch.no_grad():
        torch.testing.assert_close(run_folded(net.folded(), x), net(x), rtol=1e-5, atol=1e-5)
