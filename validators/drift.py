"""The one two-sample drift test: has a column's distribution moved between two tables?

Both the shift checks (is the synthetic table shifted from the real one?) and the model
registry (has tonight's source shifted from the table the stored model was trained on?) ask
this, so they share one answer: Kolmogorov-Smirnov for continuous values, chi-squared with the
total variation distance for discrete counts, and one multiple-testing correction chosen by the
caller's configuration (Benjamini-Hochberg or Holm, see `stats.adjust_pvalues`). Two copies
with different corrections used to disagree on the same pair of tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from synthpipe.validators.stats import adjust_pvalues, total_variation

Correction = Literal["bh", "holm"]
CORRECTION_NAMES = {"bh": "BH", "holm": "Holm"}
CONTINUOUS = ("numerical", "integer", "datetime")
SKIPPED = ("id", "constant")  # minted fresh / fixed: a change in them says nothing about drift


@dataclass(frozen=True)
class TestResult:
    """One two-sample test. `effect` is the KS statistic or the total variation distance (both in [0, 1])."""

    column: str
    test: str
    statistic: float
    p_value: float
    effect: float


def ks_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(KS statistic, p-value) on the finite values; NaN for both when a side has none."""
    from scipy import stats

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def counts_test(counts_a: np.ndarray, counts_b: np.ndarray) -> tuple[float, float, float]:
    """(chi-squared statistic, p-value, total variation) that two histograms share one distribution.

    Bins empty on both sides are dropped; with fewer than two bins left (or an empty side) the
    samples cannot differ: (0, 1, 0).
    """
    from scipy import stats

    a, b = np.asarray(counts_a, dtype=float), np.asarray(counts_b, dtype=float)
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    if keep.sum() < 2 or a.sum() == 0 or b.sum() == 0:
        return 0.0, 1.0, 0.0
    chi = stats.chi2_contingency(np.vstack([a, b]), correction=False)
    return float(chi.statistic), float(chi.pvalue), total_variation(a, b)


def label_counts(a: Iterable, b: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of two label arrays over the union of their labels."""
    a, b = np.asarray(a), np.asarray(b)
    _, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    n = int(codes.max()) + 1 if len(codes) else 0
    return np.bincount(codes[: len(a)], minlength=n), np.bincount(codes[len(a):], minlength=n)


def correct(p_values: Sequence[float], method: Correction) -> np.ndarray:
    """Adjusted p-values (NaN stays NaN): the single correction every drift decision uses."""
    return adjust_pvalues(np.asarray(p_values, dtype=float), method)


@dataclass(frozen=True)
class DriftReport:
    """Every test with its adjusted p-value, and which count as shifted."""

    tests: list[TestResult]
    adjusted: np.ndarray
    shifted: list[int]  # indices into tests, most significant first
    method: Correction
    alpha: float

    @property
    def any_shifted(self) -> bool:
        return bool(self.shifted)

    def summary(self, shown: int = 5) -> str:
        name = CORRECTION_NAMES[self.method]
        if not self.tests:
            return "no comparable columns"
        if self.shifted:
            listed = ", ".join(
                f"{t.column} ({t.test} p={t.p_value:.2g}, adjusted {self.adjusted[i]:.2g}, effect={t.effect:.3f})"
                for i in self.shifted[:shown] for t in [self.tests[i]]
            )
            more = f" and {len(self.shifted) - shown} more" if len(self.shifted) > shown else ""
            return f"{len(self.shifted)} of {len(self.tests)} tests shifted at {name}-corrected alpha={self.alpha:g}: {listed}{more}"
        worst = int(np.nanargmin(np.where(np.isfinite(self.adjusted), self.adjusted, np.inf)))
        return (
            f"{len(self.tests)} column tests, none shifted at {name}-corrected alpha={self.alpha:g} "
            f"(smallest p={self.tests[worst].p_value:.2g} for {self.tests[worst].column})"
        )


def decide(tests: list[TestResult], method: Correction, alpha: float, min_effect: float = 0.0) -> DriftReport:
    """A test counts as shifted when its adjusted p-value is below `alpha` *and* its effect is at
    least `min_effect` (so that a large table does not count differences too small to matter)."""
    adjusted = correct([t.p_value for t in tests], method)
    flagged = [i for i, t in enumerate(tests) if adjusted[i] < alpha and t.effect >= min_effect]
    flagged.sort(key=lambda i: (adjusted[i], -tests[i].effect))
    return DriftReport(tests=tests, adjusted=adjusted, shifted=flagged, method=method, alpha=alpha)


def column_tests(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[Mapping]) -> list[TestResult]:
    """The tests of every comparable column, from schema dicts (``{"name", "kind"}``).

    Continuous kinds: KS on the non-null values, plus chi-squared on the null rate when either
    side has nulls. Discrete kinds: chi-squared on the category counts, null as a category.
    """
    out: list[TestResult] = []
    for column in columns:
        name, kind = column["name"], column["kind"]
        if kind in SKIPPED or name not in reference.columns or name not in current.columns:
            continue
        ref, cur = reference[name], current[name]
        if kind in CONTINUOUS:
            a, b = numeric(ref), numeric(cur)
            if len(a) >= 2 and len(b) >= 2:
                statistic, p_value = ks_test(a, b)
                out.append(TestResult(name, "KS", statistic, p_value, statistic))
            if ref.isna().any() or cur.isna().any():
                statistic, p_value, tv = counts_test(*label_counts(ref.isna().to_numpy(), cur.isna().to_numpy()))
                out.append(TestResult(name, "null rate", statistic, p_value, tv))
        else:
            statistic, p_value, tv = counts_test(*label_counts(labels(ref), labels(cur)))
            out.append(TestResult(name, "chi-squared", statistic, p_value, tv))
    return out


def numeric(series: pd.Series) -> np.ndarray:
    """Non-null values as floats (datetimes, also ones stored as text, as epoch nanoseconds)."""
    values = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("int64").to_numpy(dtype=float)
    if values.dtype == object:
        converted = pd.to_datetime(values, errors="coerce", utc=True)
        if converted.notna().all():
            return converted.astype("int64").to_numpy(dtype=float)
    return pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)


def labels(series: pd.Series) -> np.ndarray:
    return series.astype(object).where(series.notna(), "<null>").astype(str).to_numpy()
