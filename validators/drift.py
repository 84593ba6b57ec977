"""The one two-sample drift test: has a column's distribution moved between two tables?

Both the shift checks (is the synthetic table shifted from the real one?) and the model
registry (has tonight's source shifted from the table the stored model was trained on?) ask
this, so they share one answer: Kolmogorov-Smirnov for continuous values, chi-squared with the
total variation distance for discrete counts, and one multiple-testing correction chosen by the
caller's configuration (Benjamini-Hochberg or Holm, see `stats.adjust_pvalues`). Two copies
with different corrections used to disagree on the same pair of tables.

With the whole-table profiles of both tables (`generators/profile.py`), the discrete tests count
every row: category frequencies and null rates come from the profiles, so a shift that a bounded
sample would miss (or invent) is decided on the whole tables. A profile has no histogram of a
continuous column, so KS still runs on the samples. `range_changes` says where the new table no
longer holds what the old one held (bounds, categories): values a model fitted on the old table
would emit, and the new table's expectations would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from synthpipe.generators.profile import ColumnProfile, TableProfile
from synthpipe.validators.base import naive_utc
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


def column_tests(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[Mapping],
    profiles: tuple[TableProfile, TableProfile] | None = None,
) -> list[TestResult]:
    """The tests of every comparable column, from schema dicts (``{"name", "kind"}``).

    Continuous kinds: KS on the non-null values, plus chi-squared on the null rate when either
    side has nulls. Discrete kinds: chi-squared on the category counts, null as a category.
    With `profiles` (the whole-table profiles of the tables `reference` and `current` were
    sampled from), null rates and category counts come from them (test names end in "(whole
    table)"); a column whose counting stopped at the distinct cap falls back to the samples.
    """
    out: list[TestResult] = []
    for column in columns:
        name, kind = column["name"], column["kind"]
        if kind in SKIPPED:
            continue
        whole = _column_pair(profiles, name)
        sampled = name in reference.columns and name in current.columns
        if kind in CONTINUOUS:
            if sampled:
                a, b = numeric(reference[name]), numeric(current[name])
                if len(a) >= 2 and len(b) >= 2:
                    statistic, p_value = ks_test(a, b)
                    out.append(TestResult(name, "KS", statistic, p_value, statistic))
            if whole is not None:
                (ca, rows_a), (cb, rows_b) = whole
                if ca.nulls or cb.nulls:
                    counts = np.array([ca.nulls, rows_a - ca.nulls]), np.array([cb.nulls, rows_b - cb.nulls])
                    out.append(TestResult(name, "null rate (whole table)", *counts_test(*counts)))
            elif sampled and (reference[name].isna().any() or current[name].isna().any()):
                ref, cur = reference[name], current[name]
                statistic, p_value, tv = counts_test(*label_counts(ref.isna().to_numpy(), cur.isna().to_numpy()))
                out.append(TestResult(name, "null rate", statistic, p_value, tv))
            continue
        counts = profile_counts(*whole) if whole is not None else None
        if counts is not None:
            out.append(TestResult(name, "chi-squared (whole table)", *counts_test(*counts)))
        elif sampled:
            statistic, p_value, tv = counts_test(*label_counts(labels(reference[name]), labels(current[name])))
            out.append(TestResult(name, "chi-squared", statistic, p_value, tv))
    return out


def profile_counts(
    a: tuple[ColumnProfile, int], b: tuple[ColumnProfile, int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Whole-table histograms of one column in two profiles, each given as (column, table rows).

    Bins: every value listed on both sides, or listed on one side and known absent from the
    other (whose list is complete); then nulls; then "other", the rows a list cut at
    max_categories leaves out (a value listed on one side only, where the other side's list was
    cut, goes to "other" on both sides, since its count there is unknown). None when counting
    stopped at the distinct cap on either side: the counts are then not the whole table's.
    """
    (ca, rows_a), (cb, rows_b) = a, b
    if ca.frequencies is None or cb.frequencies is None or ca.distinct_capped or cb.distinct_capped:
        return None
    fa, fb = {_value_key(v): int(c) for v, c in ca.frequencies}, {_value_key(v): int(c) for v, c in cb.frequencies}
    bins = sorted(
        (v for v in set(fa) | set(fb)
         if (v in fa or not ca.frequencies_truncated) and (v in fb or not cb.frequencies_truncated)),
        key=str,
    )
    listed_a, listed_b = [fa.get(v, 0) for v in bins], [fb.get(v, 0) for v in bins]
    other_a, other_b = rows_a - ca.nulls - sum(listed_a), rows_b - cb.nulls - sum(listed_b)
    return np.array([*listed_a, ca.nulls, max(other_a, 0)]), np.array([*listed_b, cb.nulls, max(other_b, 0)])


def range_changes(old: TableProfile, new: TableProfile, columns: Sequence[Mapping]) -> list[str]:
    """Where `new` no longer holds what `old` held, per schema column (``{"name", "kind"}``):
    a numeric or datetime range that does not contain the old one, or a category of the old
    table absent from the new one (both frequency lists complete). A model fitted on `old`
    emits those values, and expectations profiled from `new` would refuse them."""
    out: list[str] = []
    for column in columns:
        name, kind = column["name"], column["kind"]
        pair = _column_pair((old, new), name)
        if kind in SKIPPED or pair is None:
            continue
        (a, _), (b, _) = pair
        if kind in CONTINUOUS:
            lo_a, hi_a, lo_b, hi_b = (_ordered(v) for v in (a.min, a.max, b.min, b.max))
            if None in (lo_a, hi_a, lo_b, hi_b):
                continue
            try:
                narrower = lo_b > lo_a or hi_b < hi_a
            except TypeError:  # a column typed differently on the two sides: the dtype check decides
                continue
            if narrower:
                out.append(f"{name} range [{a.min}, {a.max}] is not within the new table's [{b.min}, {b.max}]")
        elif kind == "categorical" and _complete(a) and _complete(b):
            present = {_value_key(v) for v, _ in b.frequencies}
            gone = [v for v, _ in a.frequencies if _value_key(v) not in present]
            if gone:
                listed = ", ".join(map(repr, gone[:5])) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
                out.append(f"{name} categories {listed} are no longer in the table")
    return out


def _column_pair(
    profiles: tuple[TableProfile, TableProfile] | None, name: str
) -> tuple[tuple[ColumnProfile, int], tuple[ColumnProfile, int]] | None:
    if profiles is None or any(p is None or name not in p for p in profiles):
        return None
    old, new = profiles
    return (old[name], old.rows), (new[name], new.rows)


def _complete(column: ColumnProfile) -> bool:
    return column.frequencies is not None and not column.frequencies_truncated and not column.distinct_capped


def _value_key(value: Any) -> Any:
    """A profile value as a dict key that survives the JSON round trip (1 and True stay apart)."""
    return (type(value).__name__, value) if isinstance(value, bool) else value


def _ordered(value: Any) -> Any:
    """A profile's min/max as a comparable value: numbers as they are, datetimes (in memory or as
    ISO text after the JSON round trip) as naive UTC instants."""
    if value is None or isinstance(value, int | float | Decimal):
        return value
    try:
        return naive_utc(value)
    except (TypeError, ValueError):
        return None


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
