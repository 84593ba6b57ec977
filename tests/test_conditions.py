"""Conditions are parsed once against the schema: typed values, CLI strings, ranges and per-row
frames, with every condition error raised here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.conditions import Conditions
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import infer_schema


@pytest.fixture(scope="module")
def schema():
    n = 60
    return infer_schema(
        pd.DataFrame(
            {
                "id": np.arange(n),
                "city": (["Oslo", "Riga", "Lima"] * 20),
                "code": ([1, 2, 3, 4, 5] * 12),
                "flag": ([True, False] * 30),
                "age": np.tile(np.arange(18, 78, 2), 2),
                "amount": np.linspace(0.5, 99.5, n),
                "when": pd.date_range("2020-01-01", periods=n, freq="D", tz="Europe/Oslo"),
            }
        )
    )


def test_strings_become_typed_values_and_ranges(schema):
    c = Conditions.parse({"city": "Riga", "flag": "false", "age": ("30.5", "40"), "amount": 10}, schema, 4)
    assert c.n == 4 and set(c.columns) == {"city", "flag", "age", "amount"}
    assert list(c.values["city"]) == ["Riga"] * 4 and list(c.values["flag"]) == [False] * 4
    assert c.values["flag"][0] is False
    low, high = c.ranges["age"]
    assert low.dtype == np.float64 and low[0] == 30.5 and high[0] == 40.0  # integer ends stay real
    assert c.ranges["amount"][0][0] == c.ranges["amount"][1][0] == 10.0
    assert c.is_point("amount").all() and not c.is_point("age").any()


def test_integer_categories_match_by_text(schema):
    assert schema["code"].kind.value == "categorical"
    c = Conditions.parse({"code": "4"}, schema, 2)
    assert list(c.values["code"]) == [4, 4] and type(c.values["code"][0]) is int


def test_open_ends_and_per_row_frames(schema):
    c = Conditions.parse({"age": (None, "30")}, schema, 1)
    assert math.isnan(c.ranges["age"][0][0]) and c.ranges["age"][1][0] == 30.0
    frame = pd.DataFrame({"city": ["Oslo", None, np.nan], "amount": [(1, 2), None, 5.0]})
    c = Conditions.parse(frame, schema, 3)
    assert list(c.values["city"]) == ["Oslo", None, None]
    assert c.constrained("city").tolist() == [True, False, False]
    assert c.constrained("amount").tolist() == [True, False, True]
    part = c.rows(1, 3)
    assert part.n == 2 and part.constrained("amount").tolist() == [False, True]
    uniques, index = Conditions.parse(pd.DataFrame({"city": ["Oslo", "Riga", "Oslo"]}), schema, 3).unique_rows()
    assert len(uniques) == 2 and index.tolist() == [0, 1, 0] and list(uniques["city"]) == ["Oslo", "Riga"]


def test_datetimes_are_wall_clock_seconds_in_the_columns_zone(schema):
    c = Conditions.parse({"when": ("2020-01-05", "2020-01-05T06:00:00+00:00")}, schema, 1)
    low, high = c.ranges["when"]
    assert low[0] == pd.Timestamp("2020-01-05").value / 1e9  # naive: already Oslo wall clock
    assert high[0] == pd.Timestamp("2020-01-05T07:00:00").value / 1e9  # 06:00 UTC = 07:00 in Oslo


@pytest.mark.parametrize(
    "conditions, message",
    [
        ({"nope": 1}, "unknown column 'nope'"),
        ({"city": "Paris"}, r"city='Paris'.*not seen in training.*Oslo"),
        ({"flag": "maybe"}, "expected true or false"),
        ({"city": ("a", "b")}, "needs a numeric or datetime column"),
        ({"age": (1, 2, 3)}, "exactly two ends"),
        ({"age": ("40", "30")}, "low 40 is above high 30"),
        ({"age": (30.2, 30.8)}, "no integer"),
        ({"age": (500, None)}, "outside the training range 18..76"),
        ({"when": ("1999-01-01", "1999-12-31")}, "when.*outside the training range"),
        ({"amount": "lots"}, "not a number"),
        ({"when": "someday"}, "not a date/time"),
        ({"id": 3}, "cannot condition on 'id'"),
    ],
)
def test_every_condition_error_names_the_column(schema, conditions, message):
    with pytest.raises(ConfigError, match=message):
        Conditions.parse(conditions, schema, 3)


def test_a_frame_of_the_wrong_length_and_nothing_asked(schema):
    with pytest.raises(ConfigError, match="2 rows but 3"):
        Conditions.parse(pd.DataFrame({"city": ["Oslo", "Riga"]}), schema, 3)
    assert Conditions.parse(None, schema, 3) is None and Conditions.parse({}, schema, 3) is None
