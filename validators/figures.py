"""Plot specifications computed from the data, drawn later by report.py.

Checks return small summaries (binned shares, association matrices, distance histograms), not
images: the data stay with the check that read them, report.py needs no tables, and rendering
can be capped or skipped without recomputing anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthpipe.generators.row_keys import is_numeric, labels, numeric_values
from synthpipe.generators.schema import ColumnSchema
from synthpipe.validators.encoding import OTHER_LABEL

MAX_BARS = 12
MAX_HEATMAP_COLUMNS = 30


def distribution_overlays(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[ColumnSchema],
    order_by_score: dict[str, float] | None = None,
    limit: int = 24,
) -> dict:
    """Real-vs-synthetic histograms (numbers) and bar shares (categories) per column.

    When there are more columns than `limit`, the worst-scoring ones (by `order_by_score`) are
    kept, in table order, so the plots show where the synthetic data is weakest.
    """
    chosen = columns
    if len(columns) > limit:
        scores = order_by_score or {}
        worst = sorted(columns, key=lambda c: scores.get(c.name, 1.0))[:limit]
        keep = {c.name for c in worst}
        chosen = [c for c in columns if c.name in keep]
    panels = []
    for column in chosen:
        if is_numeric(column):
            r = numeric_values(real[column.name], column)
            s = numeric_values(synthetic[column.name], column)
            rf, sf = r[np.isfinite(r)], s[np.isfinite(s)]
            if len(rf) == 0:
                continue
            lo, hi = np.percentile(rf, [0.5, 99.5])
            if len(sf):
                lo, hi = min(lo, np.percentile(sf, 0.5)), max(hi, np.percentile(sf, 99.5))
            if hi <= lo:
                hi = lo + 1.0
            edges = np.linspace(lo, hi, 31)
            hr, _ = np.histogram(np.clip(rf, lo, hi), edges)
            hs, _ = np.histogram(np.clip(sf, lo, hi), edges)
            panels.append({
                "column": column.name, "type": "numeric", "datetime": column.kind.value == "datetime",
                "edges": edges.tolist(),
                "real": (hr / max(1, len(r))).tolist(), "synthetic": (hs / max(1, len(s))).tolist(),
                "null_real": float(np.isnan(r).mean()) if len(r) else 0.0,
                "null_synthetic": float(np.isnan(s).mean()) if len(s) else 0.0,
                "score": (order_by_score or {}).get(column.name),
            })
        else:
            r = pd.Series(labels(real[column.name])).value_counts(normalize=True)
            s = pd.Series(labels(synthetic[column.name])).value_counts(normalize=True)
            cats = [c for c in r.index[:MAX_BARS]]
            extra = [c for c in s.index if c not in r.index][:3]  # unseen categories are worth showing
            cats += extra
            rs = [float(r.get(c, 0.0)) for c in cats]
            ss = [float(s.get(c, 0.0)) for c in cats]
            rest_r, rest_s = 1 - sum(rs), 1 - sum(ss)
            if rest_r > 1e-9 or rest_s > 1e-9:
                cats.append(OTHER_LABEL)
                rs.append(max(0.0, rest_r))
                ss.append(max(0.0, rest_s))
            panels.append({
                "column": column.name, "type": "categorical", "categories": [str(c) for c in cats],
                "real": rs, "synthetic": ss, "unseen": [str(c) for c in extra],
                "score": (order_by_score or {}).get(column.name),
            })
    omitted = len(columns) - len(chosen)
    caption = ("Blue: real (filled); orange: synthetic (line). Titles show sdmetrics' column-shape score "
               "where available." + (f" {omitted} better-scoring columns not plotted." if omitted else ""))
    return {"name": "distributions", "kind": "distributions", "panels": panels, "omitted": omitted,
            "title": "Column distributions: real vs synthetic", "caption": caption}


def association_matrix(frame: pd.DataFrame, columns: list[ColumnSchema]) -> np.ndarray:
    """Pairwise association in [-1, 1]: Spearman for two numbers, Cramer's V for two categories,
    the correlation ratio for a number and a category (nulls: pairwise complete for numbers, a
    category of their own for categories)."""
    k = len(columns)
    num = {}
    cat = {}
    for c in columns:
        if is_numeric(c):
            v = numeric_values(frame[c.name], c)
            num[c.name] = pd.Series(v).rank().to_numpy()
        else:
            codes, _ = pd.factorize(pd.Series(labels(frame[c.name])))
            cat[c.name] = codes
    out = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = columns[i].name, columns[j].name
            if a in num and b in num:
                value = _spearman(num[a], num[b])
            elif a in cat and b in cat:
                value = _cramers_v(cat[a], cat[b])
            else:
                x, g = (num[a], cat[b]) if a in num else (num[b], cat[a])
                value = _correlation_ratio(x, g)
            out[i, j] = out[j, i] = value
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    x, y = x[ok], y[ok]
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    ka, kb = a.max() + 1, b.max() + 1
    if ka < 2 or kb < 2:
        return 0.0
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.nansum(np.where(expected > 0, (table - expected) ** 2 / expected, 0.0))
    return float(np.sqrt(chi2 / (n * (min(ka, kb) - 1))))


def _correlation_ratio(x: np.ndarray, groups: np.ndarray) -> float:
    ok = np.isfinite(x)
    x, groups = x[ok], groups[ok]
    if len(x) < 3 or x.var() == 0:
        return 0.0
    sums = np.bincount(groups, weights=x)
    counts = np.bincount(groups)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    between = np.sum(counts * (means - x.mean()) ** 2)
    return float(np.sqrt(between / (x.var() * len(x))))


def correlation_difference(
    real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[ColumnSchema], max_rows: int = 5_000, seed: int = 0
) -> dict:
    """Association matrices of both tables (on at most `max_rows` rows each) for the difference heatmap."""
    columns = columns[:MAX_HEATMAP_COLUMNS]
    rng = np.random.default_rng(seed)

    def cap(frame: pd.DataFrame) -> pd.DataFrame:
        if len(frame) <= max_rows:
            return frame
        return frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]

    r = association_matrix(cap(real), columns)
    s = association_matrix(cap(synthetic), columns)
    mean = float(np.nanmean(np.abs(r - s)[np.triu_indices(len(columns), 1)])) if len(columns) > 1 else 0.0
    caption = ("|association(synthetic) − association(real)| per column pair (Spearman for two numbers, "
               f"Cramér's V for two categories, correlation ratio for mixed pairs); mean {mean:.3f}.")
    return {"name": "correlation_difference", "kind": "correlation_difference",
            "columns": [c.name for c in columns], "real": r.tolist(), "synthetic": s.tolist(),
            "mean_abs_difference": mean, "title": "Association differences", "caption": caption}

