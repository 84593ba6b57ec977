"""The great-expectations suite: profiled from the source, saved, edited, and failing on bad values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import infer_schema
from synthpipe.validators.expectations import (
    build_suite,
    load_suite,
    run_expectations,
    save_suite,
    suite_dict,
)


@pytest.fixture(scope="module")
def acs_suite(acs12):
    return build_suite(acs12, infer_schema(acs12))


def _failed(result) -> set[tuple[str, str]]:
    rows = result.details[~result.details["success"]]
    return set(zip(rows["expectation"], rows["column"].fillna("")))


def test_source_meets_its_own_suite(acs12, acs_suite):
    result = run_expectations(acs12, acs_suite)
    assert result.passed is True, result.summary
    assert result.score == 1.0
    kinds = set(result.details["expectation"])
    assert {
        "expect_table_columns_to_match_ordered_list", "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set", "expect_column_values_to_be_unique", "expect_column_mean_to_be_between",
    } <= kinds


def test_out_of_range_values_and_unknown_categories_fail(acs12, acs_suite):
    bad = acs12.copy()
    bad.loc[:9, "age"] = 250
    bad.loc[:4, "race"] = "martian"
    result = run_expectations(bad, acs_suite)
    assert result.passed is False
    failed = _failed(result)
    assert ("expect_column_values_to_be_between", "age") in failed
    assert ("expect_column_values_to_be_in_set", "race") in failed
    assert {"age", "race"} <= set(result.extra["failed_columns"])
    observed = result.details.set_index(["expectation", "column"]).loc[("expect_column_values_to_be_in_set", "race"), "observed"]
    assert "martian" in observed
    assert "race" in result.summary and "age" in result.summary


def test_structure_types_and_nulls_are_checked(acs12, acs_suite):
    bad = acs12.drop(columns=["lang"]).assign(age=acs12["age"].astype(float))
    bad.loc[: len(bad) // 2, "gender"] = None
    failed = _failed(run_expectations(bad, acs_suite))
    assert ("expect_table_columns_to_match_ordered_list", "") in failed
    assert ("expect_column_values_to_be_in_type_list", "age") in failed
    assert ("expect_column_values_to_not_be_null", "gender") in failed
    dup = acs12.assign(person_id=1)
    assert ("expect_column_values_to_be_unique", "person_id") in _failed(run_expectations(dup, acs_suite))


def test_distribution_bounds(acs12, acs_suite):
    younger = acs12.assign(age=acs12["age"] // 2)  # within range, but the mean moved ~0.9 sd
    failed = _failed(run_expectations(younger, acs_suite))
    assert ("expect_column_mean_to_be_between", "age") in failed
    assert ("expect_column_values_to_be_between", "age") not in failed
    spread = acs12.assign(income=acs12["income"] * 0.2)  # within range, spread shrunk five-fold
    assert ("expect_column_stdev_to_be_between", "income") in _failed(run_expectations(spread, acs_suite))


def test_suite_round_trips_and_user_edits_take_effect(acs12, acs_suite, tmp_path):
    path = save_suite(acs_suite, tmp_path / "expectations.json")
    data = json.loads(path.read_text())
    assert all("id" not in e for e in data["expectations"])
    for e in data["expectations"]:  # a user widens the age range
        if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == "age":
            e["kwargs"]["max_value"] = 300
    path.write_text(json.dumps(data))
    older = acs12.copy()
    older.loc[:2, "age"] = 250
    assert ("expect_column_values_to_be_between", "age") not in _failed(run_expectations(older, load_suite(path)))


def test_bad_suite_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.json"):
        load_suite(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json"):
        load_suite(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"expectations": [{"type": "expect_no_such_thing", "kwargs": {}}]}))
    with pytest.raises(ConfigError, match="wrong.json"):
        load_suite(wrong)


def test_data_docs_are_written(acs12, acs_suite, tmp_path):
    result = run_expectations(acs12.head(200), acs_suite, out_dir=tmp_path)
    assert (tmp_path / "data_docs" / "index.html").exists()
    # relative to the output folder: the run writes into staging and renames it at the end
    assert result.extra["data_docs"] == "data_docs/index.html"
    assert (tmp_path / result.extra["data_docs"]).is_file()


def test_every_column_kind_profiles_and_passes(mixed_table):
    schema = infer_schema(mixed_table)
    data = suite_dict(mixed_table, schema)
    types = {e["kwargs"]["column"]: e for e in data["expectations"] if e["type"].endswith("type_list")}
    assert "datetime64[ns]" in types["when"]["kwargs"]["type_list"]
    result = run_expectations(mixed_table, build_suite(mixed_table, schema))
    assert result.passed is True, result.summary
    as_category = mixed_table.assign(city=mixed_table["city"].astype("category"))
    assert run_expectations(as_category, build_suite(mixed_table, schema)).passed is True
    later = mixed_table.assign(when=mixed_table["when"] + pd.Timedelta(days=400))
    failed = _failed(run_expectations(later, build_suite(mixed_table, schema)))
    assert ("expect_column_values_to_be_between", "when") in failed
    flipped = mixed_table.assign(flag=np.where(mixed_table["flag"], "yes", "no"))
    assert ("expect_column_values_to_be_in_set", "flag") in _failed(run_expectations(flipped, build_suite(mixed_table, schema)))
