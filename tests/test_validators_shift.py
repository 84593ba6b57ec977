"""Dataset-shift checks detect what they claim on the shipped ACS table, and stay quiet on a random split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.schema import infer_schema
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.encoding import compared_columns
from synthpipe.validators.shift import compare_column, concept_shift, covariate_shift, prior_shift

FAST = ValidationConfig(bootstrap_reps=50, cv_folds=3)


@pytest.fixture(scope="module")
def halves(acs12: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = np.random.default_rng(1).permutation(len(acs12))
    half = len(acs12) // 2
    return acs12.iloc[idx[:half]].reset_index(drop=True), acs12.iloc[idx[half:]].reset_index(drop=True)


@pytest.fixture(scope="module")
def schema(acs12: pd.DataFrame):
    return infer_schema(acs12)


def test_random_split_passes_covariate_shift(halves, schema):
    real, other = halves
    result = covariate_shift(real, other, compared_columns(schema, real, other), FAST)
    assert result.passed is True
    assert result.score < 0.6
    assert result.interval[0] <= result.score <= result.interval[1]
    assert not result.details["psi_exceeded"].any()
    assert "person_id" not in set(result.details["column"])  # IDs are minted fresh, never compared


def test_filtered_subset_fails_covariate_shift_and_names_the_column(halves, schema):
    real, other = halves
    older = other[other["age"] > 50]
    result = covariate_shift(real, older, compared_columns(schema, real, older), FAST)
    assert result.passed is False
    assert result.score > 0.75  # clearly detectable, though less so than a poor generator
    assert result.extra["p_value"] < 1e-6
    assert "age" in result.extra["columns_psi_exceeded"]  # the gate that fails it: a large one-column shift
    assert result.details.iloc[0]["column"] == "age"  # most shifted (PSI) first
    top_importance = result.details.sort_values("importance", ascending=False).iloc[0]["column"]
    assert top_importance == "age"  # and the classifier relies on it
    row = result.details.set_index("column").loc["age"]
    assert row["significant"] and row["p_adjusted"] < 0.05 and row["psi"] > FAST.psi_max
    assert result.direction == "lower" and "age" in result.summary


def test_gate_on_p_values_is_stricter(halves, schema):
    real, other = halves
    shifted = other.assign(hrs_work=other["hrs_work"] + 3)  # a small, significant shift
    columns = compared_columns(schema, real, shifted)
    lenient = covariate_shift(real, shifted, columns, FAST)
    strict = covariate_shift(real, shifted, columns, FAST.model_copy(update={"gate_on_p_values": True}))
    assert "hrs_work" in strict.extra["columns_significant"]
    assert strict.passed is False
    assert lenient.extra["columns_significant"] == strict.extra["columns_significant"]


def test_per_column_comparison_kinds(schema, halves):
    real, other = halves
    numeric = compare_column(real["income"], other["income"] * 3, schema["income"])
    assert numeric.test == "KS" and numeric.p_value < 1e-6 and numeric.psi > 0.2
    categorical = compare_column(real["race"], other["race"], schema["race"])
    assert categorical.test == "chi-squared" and categorical.p_value > 0.01 and categorical.psi < 0.05


def test_flipped_class_balance_fails_prior_shift(halves, schema):
    real, other = halves
    flipped = other.assign(married=other["married"].map({"yes": "no", "no": "yes"}))
    ok = prior_shift(real, other, schema["married"], FAST)
    bad = prior_shift(real, flipped, schema["married"], FAST)
    assert ok.passed is True and ok.score < 0.05
    assert bad.passed is False and bad.score > FAST.prior_tv_max
    assert bad.extra["p_value"] < 1e-6
    assert bad.interval[0] > FAST.prior_tv_max  # the whole interval is beyond the gate
    assert set(bad.details["value"]) == {"yes", "no"}


def test_prior_shift_bins_a_numeric_target(halves, schema):
    real, other = halves
    assert prior_shift(real, other, schema["age"], FAST).passed is True
    assert prior_shift(real, other.assign(age=other["age"] + 20), schema["age"], FAST).passed is False


def test_prior_and_concept_shift_need_a_target(halves, schema):
    real, other = halves
    columns = compared_columns(schema, real, other)
    for result in (prior_shift(real, other, None, FAST), concept_shift(real, other, None, columns, FAST)):
        assert result.passed is None and "not applicable" in result.summary


@pytest.mark.slow
def test_permuted_target_fails_concept_shift(halves, schema):
    real, other = halves
    target = schema["employment"]
    features = [c for c in compared_columns(schema, real, other) if c.name != "employment"]
    permuted = other.assign(employment=np.random.default_rng(0).permutation(other["employment"].to_numpy()))
    ok = concept_shift(real, other, target, features, FAST)
    bad = concept_shift(real, permuted, target, features, FAST)
    assert ok.passed is True and ok.score > 0.8
    assert bad.passed is False and bad.score < 0.2
    assert bad.extra["disagreement"] > ok.extra["disagreement"]
    assert bad.interval[1] < FAST.concept_ratio_min


def test_concept_shift_binary_target_with_holdout(halves, schema):
    real, other = halves
    train, holdout = real.iloc[:600], real.iloc[600:]
    target = schema["married"]
    features = [c for c in compared_columns(schema, real, other) if c.name != "married"]
    permuted = other.assign(married=np.random.default_rng(0).permutation(other["married"].to_numpy()))
    ok = concept_shift(train, other, target, features, FAST, holdout=holdout)
    bad = concept_shift(train, permuted, target, features, FAST, holdout=holdout)
    assert ok.extra["task"] == "binary" and ok.extra["evaluation"] == "holdout"
    assert ok.passed is True
    assert bad.passed is False


def test_a_table_the_classifier_separates_fails_on_auc(halves, schema):
    real, other = halves
    rng = np.random.default_rng(0)
    fake = other.assign(  # marginals roughly right, joint structure and fine shape wrong
        age=rng.integers(0, 95, len(other)), income=rng.uniform(0, 100_000, len(other)).round(),
        hrs_work=rng.uniform(1, 99, len(other)), edu=rng.permutation(other["edu"].to_numpy()))
    result = covariate_shift(real, fake, compared_columns(schema, real, fake), FAST)
    assert result.score > FAST.covariate_auc_max and result.extra["auc_passed"] is False
    assert result.passed is False


def test_covariate_shift_handles_high_cardinality_and_every_kind(mixed_table):
    rng = np.random.default_rng(0)
    real = pd.concat([mixed_table] * 3, ignore_index=True).assign(
        shop=[f"s{i}" for i in rng.integers(0, 300, 900)], id=np.arange(900))
    other = real.sample(frac=1, random_state=1).reset_index(drop=True)
    schema = infer_schema(real)
    result = covariate_shift(real, other, compared_columns(schema, real, other), FAST)
    assert "error" not in result.extra and np.isfinite(result.score)
    assert {"shop", "when", "flag", "score"} <= set(result.details["column"])
