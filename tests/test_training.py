"""The shared training loop: parameters checked at construction, step-based epochs on large
tables, a time budget that ends an epoch at a step boundary, exact resume from there, and a
diverged loss that stops the run with a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.base import MAX_STEPS_PER_EPOCH
from synthpipe.generators.errors import ConfigError, ModelError
from synthpipe.generators.gan import CTGAN
from synthpipe.generators.vae import TVAE

SMALL_GAN = {"batch_size": 20, "pac": 10, "embedding_dim": 8, "generator_dims": (16,), "discriminator_dims": (16,)}
SMALL_VAE = {"batch_size": 20, "hidden_dims": (16,), "latent_dim": 4}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n), "k": rng.integers(0, 50, n)})


@pytest.mark.parametrize(
    "cls, params, name",
    [
        (TVAE, {"epochs": 0}, "epochs"),
        (CTGAN, {"pac": 7}, "batch_size must be a multiple of pac"),
        (TVAE, {"batch_size": 1}, "batch_size"),
        (TVAE, {"time_budget_s": -5}, "time_budget_s"),
        (TVAE, {"steps_per_epoch": 0}, "steps_per_epoch"),
        (TVAE, {"eval_share": 0}, "eval_share"),
        (TVAE, {"learning_rate": "fast"}, "learning_rate"),
        (CTGAN, {"tau": 0}, "tau"),
        (CTGAN, {"betas": (0.5, 1.5)}, "betas"),
        (TVAE, {"seed": -1}, "seed"),
    ],
)
def test_every_bad_value_fails_at_construction_naming_the_parameter(cls, params, name):
    with pytest.raises(ConfigError, match=name):
        cls(**params)  # no data read: pre-flight builds the generator exactly like this


def test_get_params_returns_every_hyperparameter():
    params = CTGAN(epochs=3, pac=5, batch_size=50).get_params()
    assert params["epochs"] == 3 and params["pac"] == 5 and "time_budget_s" in params
    assert CTGAN(**params).get_params() == params


def test_large_tables_get_step_based_epochs(table):
    big = pd.concat([table] * 15, ignore_index=True)  # 6,000 rows: 270 batches of 20 per pass
    model = TVAE(**SMALL_VAE, epochs=1, progress=False, val_fraction=0.1).fit(big)
    assert model.steps_per_epoch_ == MAX_STEPS_PER_EPOCH
    small = TVAE(**SMALL_VAE, epochs=1, progress=False, val_fraction=0.0).fit(table)
    assert small.steps_per_epoch_ == 20  # a whole pass when the table has fewer batches


@pytest.mark.parametrize("cls, params", [(CTGAN, SMALL_GAN), (TVAE, SMALL_VAE)])
def test_the_budget_stops_a_long_epoch_at_a_step_boundary(cls, params, table):
    # one epoch would take far longer than the budget (100k steps): the old per-epoch check
    # could only stop after it
    model = cls(**params, epochs=3, steps_per_epoch=100_000, time_budget_s=0.5, progress=False).fit(table)
    stop = model.history_["stop"]
    assert stop["reason"] == "time_budget" and stop["mid_epoch"] and stop["epoch"] == 0
    assert 0 < stop["step"] < 100_000
    assert model.history_["epoch"] == [0]  # the partial epoch is recorded, with its validation
    assert np.isfinite(model.history_["val_loss"][0])


@pytest.mark.parametrize("cls, params", [(CTGAN, SMALL_GAN), (TVAE, SMALL_VAE)])
def test_a_model_stopped_mid_epoch_saves_and_loads(cls, params, table, tmp_path):
    # the stop record holds true/false (mid_epoch): the model file's checks must accept it
    model = cls(**params, epochs=3, steps_per_epoch=100_000, time_budget_s=0.3, progress=False).fit(table)
    model.save(tmp_path / "model")
    loaded = cls.load(tmp_path / "model")
    assert loaded.history_["stop"] == model.history_["stop"]
    assert loaded.sample(50, seed=1).equals(model.sample(50, seed=1))


@pytest.mark.parametrize("cls, params", [(CTGAN, SMALL_GAN), (TVAE, SMALL_VAE)])
def test_resume_after_a_budget_stop_mid_epoch_matches_an_uninterrupted_run(cls, params, table, tmp_path):
    common = {**params, "epochs": 2, "steps_per_epoch": 300, "eval_every": 1, "seed": 4, "progress": False}
    whole = cls(**common, checkpoint_dir=str(tmp_path / "whole")).fit(table)
    cut = cls(**common, checkpoint_dir=str(tmp_path / "cut"), time_budget_s=0.05).fit(table)
    assert cut.history_["stop"]["mid_epoch"]  # stopped inside epoch 0 or 1, at a step boundary
    resumed = cls(**common, checkpoint_dir=str(tmp_path / "cut")).fit(table, resume=True)
    assert "stop" not in resumed.history_ and resumed.history_["epoch"] == [0, 1]
    for key in cls.loss_names:
        np.testing.assert_array_equal(resumed.history_[key], whole.history_[key])
    assert resumed.best_epoch_ == whole.best_epoch_
    pd.testing.assert_frame_equal(resumed.sample(300, seed=1), whole.sample(300, seed=1))


def test_a_diverged_loss_stops_the_run_naming_the_generator_epoch_and_last_finite_loss(table, tmp_path):
    model = TVAE(**SMALL_VAE, epochs=50, learning_rate=1e30, checkpoint_every=1, checkpoint_dir=str(tmp_path),
                 progress=False, patience=0)
    with pytest.raises(ModelError, match=r"vae generator: training diverged at epoch \d+: loss is (nan|inf)") as err:
        model.fit(table)
    assert "kept for --resume" in str(err.value)


@pytest.mark.parametrize(
    "generator, params, name",
    [("gan", {"epochs": 0}, "epochs"), ("gan", {"pac": 7}, "pac"), ("vae", {"batch_size": 1}, "batch_size")],
)
def test_preflight_rejects_bad_values_before_reading_the_source(generator, params, name, tmp_path):
    from synthpipe.flows.config import RunConfig
    from synthpipe.flows.preflight import check_generator

    cfg = RunConfig(source=str(tmp_path / "never-read.csv"), generator=generator, params=params, device="cpu")
    with pytest.raises(ConfigError, match=name):
        check_generator(cfg)


def _validated_epochs(model) -> list[int]:
    return [e for e, v in zip(model.history_["epoch"], model.history_["val_loss"], strict=True) if np.isfinite(v)]


def test_a_timed_fit_skips_validations_past_their_share_and_still_scores_the_last_epoch(table):
    # any validation takes more than a billionth of the elapsed time: after the first one, every
    # scheduled validation is over the share until the last epoch, which is always scored
    common = {**SMALL_VAE, "epochs": 6, "eval_every": 1, "patience": 0, "progress": False, "seed": 2}
    timed = TVAE(**common, time_budget_s=600, eval_share=1e-9).fit(table)
    assert _validated_epochs(timed) == [0, 5]
    assert timed.training_summary()["validations_skipped"] == 4


@pytest.mark.parametrize("params", [{"eval_share": 1e-9}, {"time_budget_s": 600, "eval_share": None}])
def test_untimed_fits_and_an_unset_share_validate_on_the_eval_every_grid(table, params):
    common = {**SMALL_VAE, "epochs": 6, "eval_every": 2, "patience": 0, "progress": False, "seed": 2}
    model = TVAE(**common, **params).fit(table)
    assert _validated_epochs(model) == [1, 3, 5]
    assert model.training_summary()["validations_skipped"] == 0
