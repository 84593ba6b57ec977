"""TVAE behind the Generator contract: types, reproducibility, persistence without pickle,
held-out ELBO, early stopping, resume and device selection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from synthpipe.generators import get_generator_class
from synthpipe.generators.base import BaseGenerator, select_device
from synthpipe.generators.errors import ConfigError, ModelError
from synthpipe.generators.vae import TVAE

FAST = {"epochs": 4, "batch_size": 100, "progress": False, "hidden_dims": (32, 32), "latent_dim": 16}


@pytest.fixture(scope="module")
def fitted(acs12):
    return TVAE(**FAST).fit(acs12)


def test_sample_has_the_source_columns_and_dtypes(fitted, acs12):
    synthetic = fitted.sample(500, seed=3)
    assert len(synthetic) == 500
    assert list(synthetic.columns) == list(acs12.columns)
    assert synthetic.dtypes.to_dict() == acs12.dtypes.to_dict()
    for name in ["race", "employment", "edu"]:
        assert set(synthetic[name].dropna()) <= set(acs12[name].dropna())
    assert synthetic["age"].between(acs12["age"].min(), acs12["age"].max()).all()
    assert not set(synthetic["person_id"]) & set(acs12["person_id"])  # IDs are minted, never copied
    assert synthetic["person_id"].is_unique


def test_same_seed_same_rows_and_different_seed_different_rows(fitted):
    a, b, c = fitted.sample(300, seed=1), fitted.sample(300, seed=1), fitted.sample(300, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.drop(columns="person_id").equals(c.drop(columns="person_id"))


def test_training_is_reproducible(acs12):
    small = acs12.iloc[:400]
    a = TVAE(**FAST, seed=5).fit(small).sample(100, seed=0)
    b = TVAE(**FAST, seed=5).fit(small).sample(100, seed=0)
    pd.testing.assert_frame_equal(a, b)


def test_save_and_load_without_pickle(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["generator"] == "vae" and meta["params"]["epochs"] == 4
    loaded = BaseGenerator.load(tmp_path / "m")
    assert isinstance(loaded, TVAE)
    pd.testing.assert_frame_equal(loaded.sample(200, seed=9), fitted.sample(200, seed=9))


def test_loading_a_corrupt_model_is_a_clear_error(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="model.safetensors"):
        BaseGenerator.load(tmp_path / "m")
    with pytest.raises(ModelError, match="not a saved synthpipe model"):
        BaseGenerator.load(tmp_path / "nothing-here")


def test_held_out_elbo_is_finite_and_improves_with_training(acs12):
    train, holdout = acs12.iloc[:1600], acs12.iloc[1600:]
    short = TVAE(**{**FAST, "epochs": 1, "patience": 0}).fit(train)
    longer = TVAE(**{**FAST, "epochs": 30, "patience": 0}).fit(train)
    assert short.likelihood_kind == "bound"
    ll_short, ll_long = short.log_likelihood(holdout), longer.log_likelihood(holdout)
    assert ll_short.shape == (len(holdout),) and np.isfinite(ll_long).all()
    assert ll_long.mean() > ll_short.mean()


def test_early_stopping_stops_when_validation_stalls(acs12):
    model = TVAE(**{**FAST, "epochs": 200, "learning_rate": 1e-12, "eval_every": 1, "patience": 3}).fit(acs12)
    assert model.stopped_early_
    assert len(model.history_["epoch"]) < 20
    assert "val_loss" in model.history_


def test_resume_continues_from_the_last_checkpoint(acs12, tmp_path):
    params = {**FAST, "epochs": 6, "checkpoint_every": 3, "checkpoint_dir": str(tmp_path / "ck"), "patience": 0}
    full = TVAE(**params).fit(acs12)
    interrupted = TVAE(**{**params, "epochs": 3}).fit(acs12)  # stands for a crash after epoch 3
    assert (tmp_path / "ck" / "checkpoint.pt").is_file() and len(interrupted.history_["epoch"]) == 3
    resumed = TVAE(**params).fit(acs12, resume=True)
    assert resumed.history_["epoch"] == list(range(6))
    np.testing.assert_allclose(resumed.history_["loss"], full.history_["loss"], rtol=1e-4)
    pd.testing.assert_frame_equal(resumed.sample(100, seed=0), full.sample(100, seed=0))


def test_resume_without_checkpoint_is_an_error(acs12, tmp_path):
    with pytest.raises(ModelError, match="no checkpoint"):
        TVAE(**FAST, checkpoint_dir=str(tmp_path / "none")).fit(acs12, resume=True)


def test_time_budget_stops_training(acs12):
    model = TVAE(**{**FAST, "epochs": 10_000, "time_budget_s": 0.5, "patience": 0}).fit(acs12.iloc[:300])
    assert len(model.history_["epoch"]) < 10_000


def test_parameters_are_validated_with_their_names():
    with pytest.raises(ConfigError, match="unknown parameter.*'epochz'"):
        TVAE(epochz=3)
    with pytest.raises(ConfigError, match="batch_size"):
        TVAE(batch_size=1).fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            select_device("cuda")


def test_registry_resolves_names():
    assert get_generator_class("vae") is TVAE
    with pytest.raises(ConfigError, match="unknown generator"):
        get_generator_class("diffusion")


def test_vae_refuses_conditions_with_a_pointer_to_models_that_can(fitted):
    with pytest.raises(ConfigError, match="cannot sample conditionally"):
        fitted.sample(10, conditions={"race": "white"})


def test_a_format_1_model_file_with_an_encoder_key_still_loads(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"], meta["encoder"] = 1, meta.pop("codec")  # as synthpipe wrote it before
    meta_path.write_text(json.dumps(meta))
    pd.testing.assert_frame_equal(BaseGenerator.load(tmp_path / "m").sample(64, seed=2), fitted.sample(64, seed=2))
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="newer"):
        BaseGenerator.load(tmp_path / "m")
