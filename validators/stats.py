"""Statistics the checks share: bootstrap intervals, multiple-testing corrections, binned
distributions and the distances between them (PSI, total variation, Jensen-Shannon).

Everything is vectorised numpy; nothing here knows about columns kinds or reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

EPS = 1e-6  # floor on bin shares in PSI, so an empty bin does not make it infinite


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """Efron-Tibshirani percentile interval of bootstrap replicates (None when there are none)."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if len(samples) < 2:
        return None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap(
    statistic: Callable[..., float],
    arrays: Sequence[np.ndarray],
    reps: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval of `statistic(*arrays)` under resampling of each array's rows.

    Each array is resampled independently (the samples being compared are independent draws),
    which is the two-sample bootstrap of Efron and Tibshirani (1993, ch. 8).
    """
    if reps <= 0 or any(len(a) == 0 for a in arrays):
        return None
    replicates = np.empty(reps)
    for r in range(reps):
        resampled = [a[rng.integers(0, len(a), len(a))] for a in arrays]
        replicates[r] = statistic(*resampled)
    return percentile_interval(replicates, confidence)


def bootstrap_mean(values: np.ndarray, reps: int, rng: np.random.Generator, confidence: float = 0.95):
    """Percentile interval of a mean, vectorised in chunks (cheap enough for 1e5 values x 200 reps)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if reps <= 0 or len(values) == 0:
        return None
    means = []
    chunk = max(1, 2_000_000 // max(1, len(values)))
    for start in range(0, reps, chunk):
        k = min(chunk, reps - start)
        idx = rng.integers(0, len(values), (k, len(values)))
        means.append(values[idx].mean(axis=1))
    return percentile_interval(np.concatenate(means), confidence)


def bootstrap_counts(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    counts_a: np.ndarray,
    counts_b: np.ndarray,
    reps: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Bootstrap of a statistic of two histograms: resampling rows is a multinomial draw of counts."""
    na, nb = int(counts_a.sum()), int(counts_b.sum())
    if reps <= 0 or na == 0 or nb == 0:
        return None
    draws_a = rng.multinomial(na, counts_a / na, size=reps)
    draws_b = rng.multinomial(nb, counts_b / nb, size=reps)
    replicates = np.array([statistic(a, b) for a, b in zip(draws_a, draws_b)])
    return percentile_interval(replicates, confidence)


def adjust_pvalues(pvalues: np.ndarray, method: str = "bh") -> np.ndarray:
    """Benjamini-Hochberg (false discovery rate) or Holm (family-wise) adjusted p-values.

    NaN p-values (tests that could not run) stay NaN and do not count as tests.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    order = np.argsort(q)
    ranked = q[order]
    if method == "bh":
        adjusted = ranked * m / np.arange(1, m + 1)
        adjusted = np.minimum.accumulate(adjusted[::-1])[::-1]
    elif method == "holm":
        adjusted = ranked * (m - np.arange(m))
        adjusted = np.maximum.accumulate(adjusted)
    else:
        raise ValueError(f"unknown p-value adjustment {method!r}; use 'bh' or 'holm'")
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    out[ok] = result
    return out


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def psi(counts_expected: np.ndarray, counts_actual: np.ndarray) -> float:
    """Population stability index sum((a - e) * ln(a / e)) over bins, shares floored at EPS."""
    e = np.maximum(shares(np.asarray(counts_expected, dtype=float)), EPS)
    a = np.maximum(shares(np.asarray(counts_actual, dtype=float)), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def total_variation(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Half the L1 distance between two histograms' shares: the largest difference in any event's probability."""
    return float(0.5 * np.abs(shares(np.asarray(counts_a, float)) - shares(np.asarray(counts_b, float))).sum())


def jensen_shannon(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms."""
    p = shares(np.asarray(counts_a, float))
    q = shares(np.asarray(counts_b, float))
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max(0.0, 0.5 * (kl_p + kl_q))))


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior bin edges at the quantiles of `values` (duplicates removed: discrete data has fewer bins)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return np.array([])
    edges = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(edges)


def binned_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (bins split at `edges`, open-ended at both sides) plus a last bin for NaN."""
    finite = np.isfinite(values)
    idx = np.searchsorted(edges, values[finite], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float((~finite).sum()))


def category_counts(codes_a: np.ndarray, codes_b: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of two integer-coded samples over the same `n_codes` codes."""
    return (
        np.bincount(codes_a, minlength=n_codes).astype(float),
        np.bincount(codes_b, minlength=n_codes).astype(float),
    )


def auc_from_scores(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank formula (ties counted half), NaN when one class is empty."""
    from scipy.stats import rankdata

    labels = np.asarray(labels).astype(bool)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, reps: int, rng: np.random.Generator, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Percentile interval of an AUC, resampling each class separately (stratified bootstrap).

    The scores are ranked once; a resample only changes how often each score occurs, so each
    replicate's AUC is a weighted Mann-Whitney sum over the distinct scores in O(n).
    """
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if reps <= 0 or n_pos == 0 or n_neg == 0:
        return None
    _, group = np.unique(np.asarray(scores, dtype=float), return_inverse=True)
    n_groups = int(group.max()) + 1
    pos_group, neg_group = group[labels], group[~labels]
    replicates = np.empty(reps)
    for r in range(reps):
        w_pos = np.bincount(pos_group[rng.integers(0, n_pos, n_pos)], minlength=n_groups).astype(float)
        w_neg = np.bincount(neg_group[rng.integers(0, n_neg, n_neg)], minlength=n_groups).astype(float)
        below = np.cumsum(w_neg) - w_neg  # negatives with a strictly lower score
        replicates[r] = float(np.sum(w_pos * (below + 0.5 * w_neg)) / (n_pos * n_neg))
    return percentile_interval(replicates, confidence)


def auc_null_pvalue(auc: float, n_pos: int, n_neg: int) -> float:
    """One-sided p-value of an AUC above 0.5 under label exchangeability.

    Out-of-fold scores come from models that never saw the scored row, so under the null (both
    samples from one distribution) the labels are exchangeable given the scores and the AUC is
    a Mann-Whitney U statistic. Its permutation distribution is normal with mean 1/2 and
    variance (n+ + n- + 1) / (12 n+ n-) (ties only shrink it, so this is conservative), which
    is the permutation test with infinitely many replicates at no cost.
    """
    from scipy.stats import norm

    if not np.isfinite(auc) or n_pos == 0 or n_neg == 0:
        return float("nan")
    sd = np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return float(norm.sf((auc - 0.5) / sd))
