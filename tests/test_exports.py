"""Fine-tuning datasets: split specs and splits, class-balanced conditions, augmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.flows.exports import (
    SOURCE_COLUMN,
    augment,
    balanced_conditions,
    parse_split_spec,
    split_labels,
    split_sizes,
    split_table,
    validate_split_spec,
)
from synthpipe.generators.errors import ConfigError, DataError
from synthpipe.generators.schema import infer_schema

# ---- split specs ---------------------------------------------------------------------------------------


def test_parse_split_spec():
    assert parse_split_spec("train=0.8,val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert list(parse_split_spec(" test = 0.25 , train=0.75 ,")) == ["test", "train"]  # order kept
    assert parse_split_spec("all=1") == {"all": 1.0}
    assert parse_split_spec("a=0.1,b=0.2,c=0.7") == {"a": 0.1, "b": 0.2, "c": 0.7}  # float sums


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty split specification"),
        ("train", "'train' is not NAME=FRACTION"),
        ("=0.5,b=0.5", "is not NAME=FRACTION"),
        ("train=abc", "fraction 'abc' for 'train' is not a number"),
        ("train=0.5,train=0.5", "'train' is given twice"),
        ("train=0.8,val=0.1", "must add up to 1, but train=0.8, val=0.1 add up to 0.9"),
        ("train=0.9,val=0.2", "add up to 1.1"),
        ("train=1.2,val=-0.2", "must be in \\(0, 1\\]"),
        ("train=0,val=1", "must be in \\(0, 1\\]"),
        ("tr/ain=0.5,val=0.5", "name 'tr/ain' must start with"),
        ("train=nan,val=1", "must be in"),
    ],
)
def test_bad_split_specs_are_usage_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_split_spec(text)


def test_config_mapping_is_validated_the_same_way():
    assert validate_split_spec({"train": 0.5, "test": "0.5"}) == {"train": 0.5, "test": 0.5}
    with pytest.raises(ConfigError, match="add up to 1"):
        validate_split_spec({"train": 0.5})
    with pytest.raises(ConfigError, match="at least one"):
        validate_split_spec({})


# ---- splitting -------------------------------------------------------------------------------------


def test_split_sizes_are_exact():
    assert split_sizes(10, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 8, "val": 1, "test": 1}
    assert split_sizes(7, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 3, "b": 2, "c": 2}
    assert split_sizes(0, {"a": 0.5, "b": 0.5}) == {"a": 0, "b": 0}
    for n in (1, 2, 99, 1001):
        assert sum(split_sizes(n, {"train": 0.7, "val": 0.2, "test": 0.1}).values()) == n


def test_split_table_is_disjoint_complete_and_seeded(acs12):
    spec = parse_split_spec("train=0.8,val=0.1,test=0.1")
    parts = split_table(acs12, spec, seed=3)
    assert {k: len(v) for k, v in parts.items()} == {"train": 1600, "val": 200, "test": 200}
    ids = np.concatenate([p["person_id"].to_numpy() for p in parts.values()])
    assert sorted(ids) == sorted(acs12["person_id"])  # every row exactly once
    assert all(p["person_id"].is_monotonic_increasing for p in parts.values())  # source order kept
    assert all((p.dtypes == acs12.dtypes).all() for p in parts.values())
    again = split_table(acs12, spec, seed=3)
    assert all(parts[k].equals(again[k]) for k in spec)
    other = split_table(acs12, spec, seed=4)
    assert not parts["test"].equals(other["test"])


def test_stratified_split_keeps_class_shares(acs12):
    parts = split_table(acs12, {"train": 0.5, "test": 0.5}, seed=0, stratify="employment")
    whole = acs12["employment"].value_counts(dropna=False)
    for part in parts.values():
        counts = part["employment"].value_counts(dropna=False)
        assert all(abs(counts[k] - whole[k] / 2) <= 1 for k in whole.index)
    with pytest.raises(ConfigError, match="stratify column 'nope'"):
        split_table(acs12, {"a": 1.0}, stratify="nope")


def test_split_labels_per_chunk():
    labels = split_labels(1000, {"train": 0.9, "test": 0.1}, seed=1)
    assert (labels == "test").sum() == 100 and (labels == "train").sum() == 900
    assert not (labels[:100] == "test").all()  # shuffled, not blocked
    assert (labels == split_labels(1000, {"train": 0.9, "test": 0.1}, seed=1)).all()


# ---- balanced conditions --------------------------------------------------------------------------------


def test_balanced_conditions_from_schema(acs12):
    schema = infer_schema(acs12)
    frame = balanced_conditions(schema, "race", 10, seed=0)
    assert list(frame.columns) == ["race"] and len(frame) == 10
    counts = frame["race"].value_counts()
    assert set(counts.index) == {"white", "black", "other", "asian"} and sorted(counts) == [2, 2, 3, 3]
    assert frame.equals(balanced_conditions(schema.to_dict(), "race", 10, seed=0))
    big = balanced_conditions(schema, "gender", 1001, seed=1)["gender"]
    assert sorted(big.value_counts()) == [500, 501]
    assert big.iloc[:100].nunique() == 2  # mixed, so each sampled chunk holds every class


def test_balanced_conditions_types_and_errors():
    df = pd.DataFrame(
        {
            "flag": [True, False, None] * 20,
            "rating": [1, 2, 3] * 20,
            "x": np.linspace(0, 1, 60),
            "c": ["a", None, "b"] * 20,
        }
    )
    schema = infer_schema(df)
    flags = balanced_conditions(schema, "flag", 6)
    assert flags["flag"].dtype == bool and flags["flag"].sum() == 3
    ratings = balanced_conditions(schema, "rating", 9)
    assert ratings["rating"].dtype == "int64" and sorted(ratings["rating"].value_counts()) == [3, 3, 3]
    assert set(balanced_conditions(schema, "c", 4)["c"]) == {"a", "b"}  # null is not a class
    assert set(balanced_conditions(["x", "y", None], "col", 4)["col"]) == {"x", "y"}
    with pytest.raises(ConfigError, match="--balance x: the column is numerical, not categorical or boolean"):
        balanced_conditions(schema, "x", 10)
    with pytest.raises(ConfigError, match="column 'nope' is not in the table"):
        balanced_conditions(schema, "nope", 10)
    with pytest.raises(ConfigError, match="no classes"):
        balanced_conditions([], "col", 10)


@pytest.mark.slow
def test_exact_conditional_sampling_emits_a_balanced_table(acs12):
    from synthpipe.generators import get_generator_class

    data = acs12.head(400)
    gan = get_generator_class("gan")(epochs=2, batch_size=100, progress=False, seed=0).fit(data)
    conditions = balanced_conditions(gan.schema_, "race", 200, seed=0)
    table = gan.sample(200, conditions=conditions, seed=1)
    assert table["race"].value_counts().to_dict() == {"white": 50, "black": 50, "other": 50, "asian": 50}


def test_per_row_conditions_reach_each_shard_as_written(acs12, tmp_path):
    """--balance's plan is stored once in the staging directory; a shard reads only its rows,
    with the plan's dtypes, wherever its slice falls on row-group boundaries."""
    from synthpipe.flows.emit import read_condition_rows, store_conditions

    frame = balanced_conditions(infer_schema(acs12), "race", 1_000, seed=2)
    path = store_conditions(frame, tmp_path, row_group_rows=128)
    for start, rows in ((0, 1_000), (0, 128), (100, 300), (999, 1), (640, 360)):
        part = read_condition_rows(path, start, rows)
        pd.testing.assert_frame_equal(part, frame.iloc[start : start + rows].reset_index(drop=True))


# ---- augmentation ------------------------------------------------------------------------------------


def test_augment_marks_provenance_and_keeps_dtypes(mixed_table):
    real = mixed_table.assign(level=pd.Categorical(["lo", "hi"] * 150, categories=["lo", "hi"], ordered=True))
    synthetic = real.sample(50, random_state=0).reset_index(drop=True)
    synthetic["level"] = synthetic["level"].astype(str)  # a generator may hand back plain strings
    synthetic["count"] = synthetic["count"].astype("float64")  # ...or whole floats
    out = augment(real, synthetic[list(reversed(real.columns))])
    assert len(out) == 350 and list(out.columns) == [*real.columns, SOURCE_COLUMN]
    assert out[SOURCE_COLUMN].tolist() == ["real"] * 300 + ["synthetic"] * 50
    assert list(out[SOURCE_COLUMN].cat.categories) == ["real", "synthetic"]
    assert (out.drop(columns=SOURCE_COLUMN).dtypes == real.dtypes).all()
    assert out["level"].cat.ordered and list(out["level"].cat.categories) == ["lo", "hi"]
    assert out.iloc[:300].drop(columns=SOURCE_COLUMN).equals(real)
    assert out["count"].iloc[300:].tolist() == synthetic["count"].astype("int64").tolist()
    mixed = augment(real, synthetic, shuffle=True, seed=2)
    assert mixed[SOURCE_COLUMN].value_counts().to_dict() == {"real": 300, "synthetic": 50}
    assert mixed[SOURCE_COLUMN].iloc[:300].eq("synthetic").any()


def test_augment_widens_only_when_needed():
    real = pd.DataFrame({"n": [1, 2, 3], "b": [True, False, True], "c": pd.Categorical(["a", "b", "a"])})
    synthetic = pd.DataFrame({"n": [4.0, np.nan], "b": [True, None], "c": ["c", "a"]})
    out = augment(real, synthetic)
    assert out["n"].dtype == "Int64" and out["n"].isna().sum() == 1 and out["n"].iloc[3] == 4
    assert out["b"].dtype == "boolean" and out["b"].isna().sum() == 1
    assert list(out["c"].cat.categories) == ["a", "b", "c"]  # an unseen class is added, not lost
    halves = augment(pd.DataFrame({"n": [1, 2]}), pd.DataFrame({"n": [2.5, 3.0]}))
    assert halves["n"].dtype == "float64" and halves["n"].tolist() == [1.0, 2.0, 2.5, 3.0]


def test_augment_errors():
    real = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(DataError, match=r"missing \['b'\], unexpected \['z'\]"):
        augment(real, pd.DataFrame({"a": [1], "z": [2]}))
    with pytest.raises(DataError, match="already has a '_synthpipe_source' column"):
        augment(real.assign(_synthpipe_source="x"), real)
