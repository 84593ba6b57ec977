"""Rare-category protection: a categorical value seen in fewer than `min_category_count` training
rows is never emitted by a free draw, in every generator, and survives save/load; a condition
naming one still gets it from the autoregressive model, and the GAN refuses it by name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.autoregressive import AutoregressiveTransformer
from synthpipe.generators.base import BaseGenerator
from synthpipe.generators.errors import ConfigError, ModelError
from synthpipe.generators.gan import CTGAN
from synthpipe.generators.schema import infer_schema
from synthpipe.generators.transforms import OTHER, PROTECTED_VALUE, CategoricalEncoder
from synthpipe.generators.vae import TVAE

COMMON = ["manager", "teacher", "nurse"]


def _table(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, set[str]]:
    """Half the rows carry one of three common titles, half a title of their own (seen once);
    the titles shift the number, so a model that learned the table has reason to emit them."""
    rng = np.random.default_rng(seed)
    title = np.array([f"person-{i}" for i in range(n)], dtype=object)
    title[: n // 2] = rng.choice(COMMON, n // 2)
    x = rng.normal(size=n) + np.where(title == "manager", 3.0, 0.0)
    return pd.DataFrame({"x": x, "group": rng.choice(["a", "b"], n), "title": title}), set(title[n // 2 :])


def _encoder(values: list, min_count: int, max_categories: int = 500) -> CategoricalEncoder:
    series = pd.Series(values, name="c", dtype=object)
    schema = infer_schema(series.to_frame())
    enc = CategoricalEncoder(schema["c"])
    enc.fit(series, max_categories, min_count)
    return enc


def test_rare_values_fold_into_other_last_and_are_counted() -> None:
    enc = _encoder(["a"] * 6 + ["b"] * 5 + ["c"] * 4 + ["d"], min_count=5)
    assert enc.categories == ["a", "b", OTHER]
    assert enc.tail == ["c", "d"] and enc.tail_protected == 2 and enc.other_is_protected
    assert enc.tail_probs == pytest.approx([0.8, 0.2])  # the trained model's shares, for likelihoods
    assert enc.fallback_probs == pytest.approx([6 / 11, 5 / 11])


def test_protection_off_is_the_unprotected_vocabulary() -> None:
    values = ["a"] * 6 + ["b"] * 5 + ["c"] * 4 + ["d"]
    off = _encoder(values, min_count=1)
    plain = CategoricalEncoder(off.column)
    plain.fit(pd.Series(values, dtype=object), 500)  # the former two-argument call
    assert off.categories == plain.categories == ["a", "b", "c", "d"]
    assert off.tail == [] and off.tail_protected == 0 and off.state() == plain.state()
    assert set(off.state()) == {"categories", "tail", "tail_probs"}  # the saved format is unchanged


def test_kept_overflow_members_are_drawn_but_never_protected_ones() -> None:
    enc = _encoder(["a"] * 9 + ["b"] * 8 + ["c"] * 6 + ["d"] * 2 + ["e"], min_count=5, max_categories=1)
    assert enc.categories == ["a", OTHER] and enc.tail == ["b", "c", "d", "e"] and enc.tail_protected == 2
    other = enc.categories.index(OTHER)
    out = enc.decode(np.zeros((4000, 0)), [np.full(4000, other)], np.random.default_rng(0))
    counts = out.value_counts()
    assert set(counts.index) == {"b", "c"}
    assert counts["b"] / 4000 == pytest.approx(8 / 14, abs=0.03)


def test_a_drawn_other_of_protected_values_becomes_a_kept_class_by_share() -> None:
    enc = _encoder(["a"] * 30 + ["b"] * 10 + ["r1", "r2", "r3"], min_count=5)
    out = enc.decode(np.zeros((4000, 0)), [np.full(4000, enc.categories.index(OTHER))], np.random.default_rng(1))
    assert set(out.unique()) == {"a", "b"}
    assert (out == "a").mean() == pytest.approx(0.75, abs=0.03)


def test_a_column_of_rare_values_only_emits_null_or_the_placeholder() -> None:
    enc = _encoder(["x1", "x1", "x2", "x2", "x3", "x3"], min_count=5)
    assert enc.categories == [OTHER] and enc.other_is_protected
    out = enc.decode(np.zeros((3, 0)), [np.zeros(3, dtype=np.int64)], np.random.default_rng(0))
    assert out.tolist() == [PROTECTED_VALUE] * 3
    nullable = _encoder(["x1", "x1", None, "x2", "x2"], min_count=5)
    assert nullable.categories == [OTHER, None]
    out = nullable.decode(np.zeros((2, 0)), [np.zeros(2, dtype=np.int64)], np.random.default_rng(0))
    assert out.isna().all()


def test_booleans_are_never_protected() -> None:
    series = pd.Series([False] * 50 + [True] * 2, name="flag")
    enc = CategoricalEncoder(infer_schema(series.to_frame())["flag"])
    enc.fit(series, 500, 5)
    assert enc.tail == [] and OTHER not in enc.categories and True in enc.categories


@pytest.mark.parametrize(
    "cls, params",
    [(AutoregressiveTransformer, {"epochs": 4}), (CTGAN, {"epochs": 4}), (TVAE, {"epochs": 4})],
    ids=["autoregressive", "gan", "vae"],
)
def test_no_generator_emits_a_protected_value(cls: type, params: dict, tmp_path) -> None:
    table, rare = _table()
    model = cls(progress=False, **params).fit(table)
    sample = model.sample(4000, seed=3)
    assert not sample["title"].isin(rare).any()
    assert set(sample["title"]) <= set(COMMON) and set(sample["title"]) == set(COMMON)
    model.save(tmp_path / "m")
    loaded = BaseGenerator.load(tmp_path / "m")
    assert loaded.sample(4000, seed=3).equals(sample)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["params"]["min_category_count"] == 5


def test_protection_off_replays_rare_values() -> None:
    """The check above can fail: without protection the same model does emit seen-once titles."""
    table, rare = _table()
    model = AutoregressiveTransformer(progress=False, epochs=4, min_category_count=1).fit(table)
    assert model.sample(4000, seed=3)["title"].isin(rare).mean() > 0.2


def test_autoregressive_conditions_and_likelihoods_reach_protected_values() -> None:
    table, rare = _table()
    model = AutoregressiveTransformer(progress=False, epochs=4).fit(table)
    named = sorted(rare)[0]
    assert model.sample(6, conditions={"title": named}, seed=1)["title"].tolist() == [named] * 6
    assert np.isfinite(model.log_likelihood(table[table["title"].isin(rare)].head(50))).all()


def test_gan_refuses_a_condition_on_a_protected_value_by_name() -> None:
    table, rare = _table()
    model = CTGAN(progress=False, epochs=2).fit(table)
    with pytest.raises(ConfigError, match=r"title=.*min_category_count"):
        model.sample(5, conditions={"title": sorted(rare)[0]})
    assert set(model.sample(50, conditions={"title": "nurse"}, seed=1)["title"]) == {"nurse"}


def test_min_category_count_is_checked_and_old_model_files_load(tmp_path) -> None:
    with pytest.raises(ConfigError, match="min_category_count"):
        AutoregressiveTransformer(min_category_count=0)
    table, _ = _table(300)
    AutoregressiveTransformer(progress=False, epochs=1).fit(table).save(tmp_path / "m")
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    del meta["params"]["min_category_count"]  # a model saved before the field existed
    meta_path.write_text(json.dumps(meta))
    assert len(BaseGenerator.load(tmp_path / "m").sample(10)) == 10
    meta["codec"]["categories"]["title"]["tail_protected"] = 10**6  # a tampered count
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"categories\['title'\]\.tail_protected"):
        BaseGenerator.load(tmp_path / "m")
