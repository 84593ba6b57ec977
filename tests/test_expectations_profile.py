"""The expectations suite takes its ranges, category sets and null rates from the whole-table
profile (through the schema), not from the bounded sample the run holds in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.flows.io.scan import scan_source
from synthpipe.generators.schema import infer_schema
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.expectations import expectations_check


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A 5,000-row source with one rare category, one extreme value and a few nulls that the
    400-row training sample (and 100-row holdout) do not hold."""
    rng = np.random.default_rng(0)
    n = 5_000
    table = pd.DataFrame({
        "x": rng.normal(0, 1, n).round(4),
        "c": rng.choice(["a", "b", "c"], n),
        "y": rng.normal(5, 1, n).round(4),
    })
    path = tmp_path_factory.mktemp("src") / "source.csv"
    for seed in range(50):  # the rows the reservoir leaves out depend on the seed: find one that misses them
        special = rng.choice(n, 8, replace=False)
        candidate = table.copy()
        candidate.loc[special[0], "c"] = "rare"
        candidate.loc[special[1], "x"] = 40.0
        candidate.loc[special[2:], "y"] = np.nan
        candidate.to_csv(path, index=False)
        result = scan_source(path, max_train_rows=400, holdout_fraction=0.2, seed=seed)
        sample = pd.concat([result.train, result.holdout])
        if "rare" not in set(sample["c"]) and sample["x"].max() < 40 and sample["y"].notna().all():
            return result
    pytest.fail("no seed gave a sample without the rare rows")


def _check(scanned, synthetic, schema):
    config = ValidationConfig()
    return expectations_check(scanned.train, synthetic, schema, config, scanned.holdout)


def _failed(result) -> set[tuple[str, str]]:
    rows = result.details[~result.details["success"]]
    return set(zip(rows["expectation"], rows["column"].fillna("")))


def test_values_of_the_whole_table_pass_and_values_beyond_it_fail(scanned):
    sample = pd.concat([scanned.train, scanned.holdout]).sort_index()
    schema = infer_schema(sample, None, scanned.profile)
    synthetic = pd.concat([sample] * 10, ignore_index=True)  # 5,000 rows: one extreme value barely moves the spread
    synthetic.loc[0, "c"] = "rare"  # in the source, not in the sample
    synthetic.loc[1, "x"] = 39.5  # within the source's range, beyond the sample's
    synthetic.loc[2:3, "y"] = np.nan  # the source has nulls; the sample has none
    result = _check(scanned, synthetic, schema)
    assert result.passed is True, result.summary

    # The same synthetic table against the sample's own schema fails: the profile made the difference.
    assert {("expect_column_values_to_be_in_set", "c"), ("expect_column_values_to_be_between", "x"),
            ("expect_column_values_to_not_be_null", "y")} <= _failed(_check(scanned, synthetic, infer_schema(sample)))

    beyond = synthetic.copy()
    beyond.loc[4, "x"] = 40.5  # beyond the whole table's maximum
    beyond.loc[5, "c"] = "unknown"  # a category the whole table lacks
    failed = _failed(_check(scanned, beyond, schema))
    assert {("expect_column_values_to_be_between", "x"), ("expect_column_values_to_be_in_set", "c")} <= failed
