"""The one drift test: the registry's reuse decision and the shift checks get the same answers from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synthpipe.flows.registry import default_shift_test
from synthpipe.generators.schema import infer_schema
from synthpipe.validators import drift
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.encoding import compared_columns
from synthpipe.validators.shift import compare_column, covariate_shift


def test_ks_and_counts_tests_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.normal(0.2, 1, 400)
    ks = stats.ks_2samp(a, b)
    assert drift.ks_test(a, b) == pytest.approx((ks.statistic, ks.pvalue))
    assert all(np.isnan(drift.ks_test(a, np.array([np.nan]))))
    ca, cb = np.array([30, 50, 0, 20]), np.array([40, 40, 0, 20])
    chi = stats.chi2_contingency(np.vstack([ca[[0, 1, 3]], cb[[0, 1, 3]]]), correction=False)
    assert drift.counts_test(ca, cb) == pytest.approx((chi.statistic, chi.pvalue, 0.1))
    assert drift.counts_test(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0, 0.0)


def test_corrections_are_the_configured_ones():
    p = np.array([0.001, 0.011, 0.02, 0.04, 0.5])
    bh, holm = drift.correct(p, "bh"), drift.correct(p, "holm")
    assert bh == pytest.approx([0.005, 0.0275, 0.02 * 5 / 3, 0.05, 0.5])
    assert holm == pytest.approx([0.005, 0.044, 0.06, 0.08, 0.5])
    tests = [drift.TestResult(f"c{i}", "KS", 0.5, v, 0.5) for i, v in enumerate(p)]
    # the same p-values: BH (false discovery rate) flags more columns than Holm (family-wise error)
    assert [tests[i].column for i in drift.decide(tests, "bh", 0.05).shifted] == ["c0", "c1", "c2"]
    assert [tests[i].column for i in drift.decide(tests, "holm", 0.05).shifted] == ["c0", "c1"]
    assert drift.decide(tests, "holm", 0.05, min_effect=0.6).shifted == []  # effects too small to matter


def test_registry_and_shift_check_share_the_test(acs12):
    idx = np.random.default_rng(3).permutation(len(acs12))
    real = acs12.iloc[idx[:1000]].reset_index(drop=True)
    other = acs12.iloc[idx[1000:]].reset_index(drop=True)
    other = other.assign(income=other["income"] * 1.6)
    schema = infer_schema(acs12)
    column = schema["income"]
    comparison = compare_column(real["income"], other["income"], column)
    [registry_test] = [t for t in drift.column_tests(real, other, schema.to_dict()["columns"])
                       if t.column == "income" and t.test == "KS"]
    assert (registry_test.statistic, registry_test.p_value) == pytest.approx(
        (comparison.statistic, comparison.p_value))

    # one correction, chosen by configuration, in both places
    for method in ("bh", "holm"):
        config = ValidationConfig(p_adjust=method, bootstrap_reps=0, cv_folds=2)
        check = covariate_shift(real, other, compared_columns(schema, real, other), config)
        expected = drift.correct(check.details["p_value"].to_numpy(), method)
        assert check.details["p_adjusted"].to_numpy() == pytest.approx(expected, nan_ok=True)
        shifted, summary = default_shift_test(real, other, schema.to_dict(), correction=method)
        assert shifted and "income (KS" in summary and drift.CORRECTION_NAMES[method] in summary


def test_identical_tables_are_not_shifted():
    frame = pd.DataFrame({"x": np.arange(100), "c": ["a", "b"] * 50})
    shifted, summary = default_shift_test(frame, frame, infer_schema(frame).to_dict())
    assert not shifted and "none shifted" in summary
