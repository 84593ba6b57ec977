"""Privacy checks: copied training rows are caught; fresh rows from the same population are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.row_keys import row_keys
from synthpipe.generators.schema import infer_schema
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.encoding import compared_columns
from synthpipe.validators.privacy import distance_checks, exact_copies

FAST = ValidationConfig(bootstrap_reps=50)


@pytest.fixture(scope="module")
def tables(acs12: pd.DataFrame):
    """Training rows, holdout rows and fresh rows of the same population (a stand-in for good synthetic data)."""
    idx = np.random.default_rng(2).permutation(len(acs12))
    train = acs12.iloc[idx[:800]].reset_index(drop=True)
    holdout = acs12.iloc[idx[800:1200]].reset_index(drop=True)
    fresh = acs12.iloc[idx[1200:]].reset_index(drop=True)
    return train, holdout, fresh


@pytest.fixture(scope="module")
def columns(acs12, tables):
    train, _, fresh = tables
    return compared_columns(infer_schema(acs12), train, fresh)


def _with_copies(train: pd.DataFrame, fresh: pd.DataFrame, share: float) -> pd.DataFrame:
    n_copy = int(share * len(fresh))
    copied = train.sample(n_copy, random_state=0).assign(person_id=np.arange(10**6, 10**6 + n_copy))
    return pd.concat([fresh.iloc[n_copy:], copied], ignore_index=True)


def test_fresh_rows_pass_exact_copies_despite_natural_duplicates(tables, columns):
    train, holdout, fresh = tables
    result = exact_copies(train, fresh, columns, FAST, holdout)
    # ACS has few, discrete columns: some fresh rows equal a training row by chance, and that is allowed
    assert result.extra["natural_rate"] > 0.02
    assert result.score > 0
    assert result.passed is True
    assert "person_id" not in result.extra["columns"]


@pytest.mark.parametrize("use_holdout", [True, False])
def test_copied_training_rows_fail_exact_copies(tables, columns, use_holdout):
    train, holdout, fresh = tables
    leaky = _with_copies(train, fresh, 0.25)  # fresh IDs: copies are found on the other columns
    result = exact_copies(train, leaky, columns, FAST, holdout if use_holdout else None)
    assert result.passed is False
    assert result.score > result.threshold
    assert result.extra["copied_rows"] >= int(0.25 * len(fresh))
    assert result.details is not None and len(result.details) > 0


def test_exact_copies_on_continuous_data_allow_almost_none():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    fresh = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    cols = compared_columns(infer_schema(train), train, fresh)
    assert exact_copies(train, fresh, cols, FAST).passed is True
    leaky = pd.concat([fresh.iloc[:495], train.iloc[:5]], ignore_index=True)  # 1% copies
    result = exact_copies(train, leaky, cols, FAST)
    assert result.extra["natural_rate"] == 0 and result.score == pytest.approx(0.01)
    assert result.passed is False


def test_row_keys_ignore_dtype_drift():
    schema = infer_schema(pd.DataFrame({"n": [1, 2, 3] * 10, "c": ["a", "b", "c"] * 10, "f": [1.5, None, 2.0] * 10}))
    cols = compared_columns(schema, pd.DataFrame({"n": [], "c": [], "f": []}))
    a = pd.DataFrame({"n": [1, 2], "c": ["a", "b"], "f": [1.5, None]})
    b = pd.DataFrame({"n": pd.array([1, 2], dtype="Int64"), "c": pd.Categorical(["a", "b"]), "f": [1.5, np.nan]})
    assert (row_keys(a, cols) == row_keys(b, cols)).all()


def test_distance_checks_need_a_holdout(tables, columns):
    train, _, fresh = tables
    results = distance_checks(train, fresh, columns, FAST, None)
    assert [r.name for r in results] == ["privacy_dcr", "privacy_membership"]
    assert all(r.passed is None and "holdout" in r.summary for r in results)


def test_fresh_rows_pass_dcr_and_membership(tables, columns):
    train, holdout, fresh = tables
    dcr, membership = distance_checks(train, fresh, columns, FAST, holdout)
    assert dcr.passed is True and 0.8 < dcr.score < 1.3
    assert membership.passed is True and membership.score < 0.6
    assert dcr.figures and dcr.figures[0]["kind"] == "dcr_histogram"


def test_memorised_training_rows_fail_dcr_and_membership(tables, columns):
    train, holdout, fresh = tables
    leaky = _with_copies(train, fresh, 0.6)
    dcr, membership = distance_checks(train, leaky, columns, FAST, holdout)
    assert dcr.passed is False and dcr.score < FAST.dcr_ratio_min
    assert membership.passed is False and membership.score > FAST.membership_auc_max
