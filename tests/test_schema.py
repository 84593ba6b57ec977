"""Schema inference: kinds, nullability, bounds, categories, overrides and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.errors import ConfigError, DataError
from synthpipe.generators.ids import generate_ids, learn_id_format
from synthpipe.generators.schema import ColumnKind, TableSchema, infer_schema


def test_kinds_of_the_mixed_table(mixed_table):
    schema = infer_schema(mixed_table)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "id": ColumnKind.ID,
        "amount": ColumnKind.NUMERICAL,
        "count": ColumnKind.INTEGER,
        "city": ColumnKind.CATEGORICAL,
        "flag": ColumnKind.BOOLEAN,
        "when": ColumnKind.DATETIME,
        "score": ColumnKind.NUMERICAL,
        "constant": ColumnKind.CONSTANT,
    }
    assert schema["score"].nullable and 0.1 < schema["score"].null_fraction < 0.3
    assert not schema["amount"].nullable
    assert schema["amount"].decimals == 2
    assert schema["count"].min >= 0 and schema["count"].max < 1000
    assert schema["city"].categories[0] == "Oslo"  # most frequent first
    assert schema["when"].timezone == "Europe/Paris"
    assert schema["constant"].constant_value == "same"


def test_schema_round_trips_through_json(mixed_table):
    schema = infer_schema(mixed_table)
    again = TableSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema


def test_overrides_replace_the_kind_and_reinfer_the_rest(mixed_table):
    schema = infer_schema(mixed_table, {"count": {"kind": "categorical"}, "amount": {"decimals": 0}})
    assert schema["count"].kind == ColumnKind.CATEGORICAL
    assert len(schema["count"].categories) == mixed_table["count"].nunique()
    assert schema["amount"].decimals == 0


def test_override_of_unknown_column_names_it(mixed_table):
    with pytest.raises(ConfigError, match="'nope'"):
        infer_schema(mixed_table, {"nope": {"kind": "id"}})


def test_numeric_override_on_text_names_the_column_and_value():
    df = pd.DataFrame({"x": ["1", "2", "three"] * 10})
    with pytest.raises(DataError, match=r"'x'.*'three'"):
        infer_schema(df, {"x": {"kind": "numerical"}})


def test_special_columns():
    n = 50
    df = pd.DataFrame(
        {
            "all_null": [None] * n,
            "uuid": [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(n)],
            "code": [f"CUST-{i:05d}" for i in range(n)],
            "ordered": pd.Categorical(["lo", "hi", "mid"] * 16 + ["lo", "lo"], categories=["lo", "mid", "hi"], ordered=True),
            "flag_nulls": pd.array([True, False, None] * 16 + [True, False], dtype="boolean"),
            "big": np.array([2**62 + i % 7 for i in range(n)], dtype=np.int64),
            "ü名前": ["a", "b"] * 25,
        }
    )
    schema = infer_schema(df)
    assert schema["all_null"].kind == ColumnKind.CONSTANT and schema["all_null"].constant_value is None
    assert schema["uuid"].kind == ColumnKind.ID and schema["uuid"].id_format["type"] == "uuid"
    assert schema["code"].id_format == {"type": "pattern", "prefix": "CUST-", "width": 5, "next": 50}
    assert schema["ordered"].categories == ["lo", "mid", "hi"] and schema["ordered"].ordered
    assert schema["flag_nulls"].kind == ColumnKind.BOOLEAN and schema["flag_nulls"].nullable
    assert schema["big"].kind == ColumnKind.INTEGER and schema["big"].max == 2**62 + 6
    assert schema["ü名前"].kind == ColumnKind.CATEGORICAL


def test_duplicate_column_names_are_rejected():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match="duplicate"):
        infer_schema(df)


def test_minted_ids_never_repeat_source_ids():
    source = pd.Series([f"CUST-{i:05d}" for i in range(100)])
    fmt = learn_id_format(source)
    rng = np.random.default_rng(0)
    first = generate_ids(fmt, 50, 0, rng)
    second = generate_ids(fmt, 50, 50, rng)
    assert not set(first) & set(source) and not set(first) & set(second)
    assert all(len(x) == len("CUST-00000") and x.startswith("CUST-") for x in first)
