"""Fidelity checks (sdmetrics quality and diagnostic, held-out likelihood) and the statistics under every check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.schema import infer_schema
from synthpipe.validators.base import CheckResult
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.fidelity import diagnostic_check, likelihood_check, quality_check, sdmetrics_inputs
from synthpipe.validators.stats import (
    adjust_pvalues,
    auc_from_scores,
    auc_null_pvalue,
    bootstrap_auc,
    psi,
    total_variation,
)

FAST = ValidationConfig(bootstrap_reps=50)


@pytest.fixture(scope="module")
def halves(acs12):
    idx = np.random.default_rng(3).permutation(len(acs12))
    return acs12.iloc[idx[:1000]].reset_index(drop=True), acs12.iloc[idx[1000:]].reset_index(drop=True)


def test_quality_high_on_a_random_split_low_on_scrambled_columns(acs12, halves):
    real, other = halves
    schema = infer_schema(acs12)
    good = quality_check(real, other, schema, FAST)
    rng = np.random.default_rng(0)
    scrambled = other.assign(
        income=other["income"] * 5, age=rng.integers(0, 95, len(other)),
        race=rng.choice(["white", "black", "other", "asian"], len(other)),
        employment=other["employment"].sample(frac=1, random_state=0).to_numpy(),
    )
    bad = quality_check(real, scrambled, schema, FAST)
    assert good.passed is True and good.score > 0.9
    assert good.interval[0] <= good.score <= good.interval[1]
    assert bad.score < good.score - 0.05
    shapes = good.details[good.details["property"] == "column shape"]
    assert set(shapes["column"]) == set(acs12.columns) - {"person_id"}
    assert (good.details["property"] == "pair trend").any()
    worst = bad.details[bad.details["property"] == "column shape"].iloc[0]["column"]
    assert worst in {"income", "race", "age"}


def test_quality_leaves_high_cardinality_columns_out_of_pair_trends():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "code": [f"c{i}" for i in rng.integers(0, 150, n)],
                       "group": rng.choice(["a", "b"], n)})
    schema = infer_schema(df)
    result = quality_check(df, df.sample(frac=1, random_state=1), schema, FAST.model_copy(update={"high_cardinality": 100}))
    assert result.extra["pair_trends_skipped_columns"] == ["code"]
    pairs = result.details[result.details["property"] == "pair trend"]
    assert "code" not in set(pairs["column"]) | set(pairs["column_2"])
    assert "code" in set(result.details["column"])  # its shape is still scored
    assert "left out of pair trends" in result.summary


def test_diagnostic_catches_invalid_values(acs12, halves):
    real, other = halves
    schema = infer_schema(acs12)
    assert diagnostic_check(real, other, schema, FAST).score > 0.99
    invalid = other.assign(age=other["age"] + 500, hrs_work=other["hrs_work"] * 100,
                           race="martian", edu="none", lang="klingon", gender="?")
    result = diagnostic_check(real, invalid, schema, FAST)
    assert result.passed is False and result.score < FAST.diagnostic_min
    assert "age" in result.summary or "race" in result.summary


def test_sdmetrics_inputs_cover_every_kind(mixed_table):
    schema = infer_schema(mixed_table)
    real, syn, metadata = sdmetrics_inputs(mixed_table, mixed_table, schema)
    kinds = {name: meta["sdtype"] for name, meta in metadata["columns"].items()}
    assert kinds["id"] == "id" and metadata["primary_key"] == "id"
    assert kinds["when"] == "datetime" and real["when"].dt.tz is None  # aware datetimes compared in UTC
    assert kinds["flag"] == "categorical" and kinds["amount"] == "numerical"
    result = quality_check(mixed_table, mixed_table.sample(frac=1, random_state=0), schema, FAST)
    assert result.score > 0.95


def test_likelihood_is_reported_not_gated():
    per_row = np.random.default_rng(0).normal(-12, 2, 500)
    per_row[0] = np.nan
    result = likelihood_check({"kind": "bound", "per_row": per_row, "n_columns": 6,
                               "per_column": {"a": -1.0, "b": -5.0}}, FAST)
    assert "likelihood" in result.name and result.passed is None and result.threshold is None
    assert result.score == pytest.approx(np.nanmean(per_row))
    assert result.interval[0] < result.score < result.interval[1]
    assert "lower bound" in result.summary and "1 non-finite" in result.summary
    assert list(result.details["column"]) == ["b", "a"]


def test_benjamini_hochberg_and_holm_match_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan])
    bh = adjust_pvalues(p, "bh")
    # sorted 0.01, 0.03, 0.04, 0.20 (m=4): 0.04, 0.06 -> min with later 0.0533, 0.0533, 0.20
    assert np.allclose(bh[:4], [0.04, 0.05333333, 0.05333333, 0.20])
    assert np.isnan(bh[4])
    holm = adjust_pvalues(p, "holm")
    assert np.allclose(holm[:4], [0.04, 0.09, 0.09, 0.20])


def test_distances_between_histograms():
    a = np.array([60.0, 40.0])
    assert psi(a, a) == pytest.approx(0.0)
    assert total_variation(a, a[::-1]) == pytest.approx(0.2)
    assert psi(a, a[::-1]) == pytest.approx(2 * 0.2 * np.log(1.5), rel=1e-6)  # two bins, each 0.2 * ln(1.5)


def test_auc_interval_and_null_pvalue():
    rng = np.random.default_rng(0)
    labels = rng.random(4000) < 0.5
    null_scores = rng.normal(size=4000)
    shifted = null_scores + 0.5 * labels
    auc = auc_from_scores(labels, shifted)
    lo, hi = bootstrap_auc(labels, shifted, 200, rng)
    assert lo < auc < hi and hi - lo < 0.06
    assert auc_null_pvalue(auc, int(labels.sum()), int((~labels).sum())) < 1e-10
    assert auc_null_pvalue(auc_from_scores(labels, null_scores), int(labels.sum()), int((~labels).sum())) > 0.01


def test_check_result_to_dict_is_strict_json():
    import json

    result = CheckResult("x", float("nan"), 0.5, None, "s", details=pd.DataFrame({"a": [np.inf, 1], "b": ["u", None]}),
                         interval=(np.float64(0.1), np.float64(0.2)), extra={"n": np.int64(3), "t": pd.Timestamp("2024-01-01")})
    text = json.dumps(result.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["score"] is None and data["details"][0]["a"] is None and data["extra"]["n"] == 3
