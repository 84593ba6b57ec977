"""Privacy: does the synthetic table leak the training rows?

- `privacy_exact_copies`: share of synthetic rows identical to a training row (hashes of the
  canonical row over every non-ID column, all rows), against the rate at which fresh real rows
  coincide with training rows, so that tables of few discrete columns are not failed for
  duplicates that occur naturally;
- `privacy_dcr`: distance to the closest training record of synthetic rows over that of holdout
  rows, plus the nearest-neighbour distance ratio (closest over second closest);
- `privacy_membership`: AUC of a distance attack telling training rows from holdout rows by
  their closeness to the synthetic table.

The last two need a holdout (real rows the generator never saw) and are reported as not
applicable without one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthpipe.generators.copy_guard import copy_limit
from synthpipe.generators.row_keys import row_keys
from synthpipe.generators.schema import ColumnSchema
from synthpipe.validators.base import NEEDS_HOLDOUT, CheckResult, in_limited_threads, not_applicable
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.encoding import distance_features, subsample
from synthpipe.validators.stats import auc_from_scores, bootstrap, bootstrap_auc


def _copy_rate(keys: np.ndarray, reference: set) -> np.ndarray:
    return pd.Series(keys).isin(reference).to_numpy()


def exact_copies(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[ColumnSchema],
    config: ValidationConfig,
    holdout: pd.DataFrame | None = None,
) -> CheckResult:
    """Share of synthetic rows identical to some training row, gated on its excess over the natural rate.

    The natural rate is the share of holdout rows identical to a training row; with no holdout,
    the share of training rows equal to another training row (a leave-one-out estimate of the
    same thing). The threshold is natural rate + `exact_copy_max` + the one-sided sampling error
    of the two rates at `alpha`.
    """
    name = "privacy_exact_copies"
    if not columns:
        return not_applicable(name, "no comparable non-ID columns", "lower")
    train_keys = row_keys(train, columns)
    reference = set(train_keys.tolist())
    copied = _copy_rate(row_keys(synthetic, columns), reference)
    rate = float(copied.mean()) if len(copied) else 0.0
    if holdout is not None and len(holdout):
        natural_flags = _copy_rate(row_keys(holdout, columns), reference)
        natural_source = "holdout rows identical to a training row"
    else:
        natural_flags = pd.Series(train_keys).duplicated(keep=False).to_numpy()
        natural_source = "training rows identical to another training row"
    natural = float(natural_flags.mean()) if len(natural_flags) else 0.0
    threshold = copy_limit(rate, len(copied), natural, len(natural_flags), config.alpha, config.exact_copy_max)
    rng = np.random.default_rng(config.seed + 40)
    interval = bootstrap(lambda a: float(a.mean()), [copied.astype(float)], config.bootstrap_reps, rng, config.confidence) \
        if config.bootstrap_reps and len(copied) < 200_000 else None
    n_copied = int(copied.sum())
    summary = (
        f"{n_copied} of {len(copied)} synthetic rows ({rate:.2%}) are identical to a training row; "
        f"natural rate {natural:.2%} ({natural_source}); allowed up to {threshold:.2%}"
    )
    details = None
    if n_copied:
        details = synthetic.loc[copied, [c.name for c in columns]].head(20).reset_index(drop=True)
    return CheckResult.scored(
        name=name, score=rate, threshold=threshold, summary=summary,
        details=details, interval=interval, direction="lower",
        extra={"copied_rows": n_copied, "natural_rate": natural, "natural_source": natural_source,
               "excess_allowed": config.exact_copy_max, "columns": [c.name for c in columns],
               "rows": {"train": len(train), "synthetic": len(synthetic)}},
    )


def _neighbours(reference: np.ndarray, queries: list[np.ndarray], k: int = 2) -> list[np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(reference))
    nn = NearestNeighbors(n_neighbors=k, algorithm="auto", n_jobs=1).fit(reference)
    return [nn.kneighbors(q, return_distance=True)[0] for q in queries]


def _nndr(distances: np.ndarray) -> np.ndarray:
    """Closest over second-closest distance (1 when both are 0: the row sits among duplicates)."""
    if distances.shape[1] < 2:
        return np.ones(len(distances))
    d1, d2 = distances[:, 0], distances[:, 1]
    return np.divide(d1, d2, out=np.ones_like(d1), where=d2 > 0)


@in_limited_threads
def distance_checks(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[ColumnSchema],
    config: ValidationConfig,
    holdout: pd.DataFrame | None = None,
) -> list[CheckResult]:
    """`privacy_dcr` and `privacy_membership`, sharing one encoding and one neighbour search."""
    if holdout is None or len(holdout) == 0:
        reason = NEEDS_HOLDOUT
        return [not_applicable("privacy_dcr", reason, "higher", config.dcr_ratio_min),
                not_applicable("privacy_membership", reason, "lower", config.membership_auc_max)]
    if not columns:
        return [not_applicable("privacy_dcr", "no comparable columns", "higher", config.dcr_ratio_min),
                not_applicable("privacy_membership", "no comparable columns", "lower", config.membership_auc_max)]
    rng = np.random.default_rng(config.seed + 50)
    n = config.privacy_max_rows
    # Equal query sizes keep the two DCR samples comparable; the training set is the reference.
    m = min(len(holdout), len(synthetic), n)
    train_ref = subsample(train, config.max_rows, rng)
    hold_q = subsample(holdout, m, rng)
    syn_q = subsample(synthetic, m, rng)
    ref, hold_x, syn_x = distance_features(columns, train_ref, hold_q, syn_q)
    d_syn, d_hold = _neighbours(ref, [syn_x, hold_x])
    dcr_syn, dcr_hold = d_syn[:, 0], d_hold[:, 0]

    def ratio(a: np.ndarray, b: np.ndarray) -> float:
        denominator = b.mean()
        return float(a.mean() / denominator) if denominator > 0 else (1.0 if a.mean() == 0 else float("inf"))

    dcr_ratio = ratio(dcr_syn, dcr_hold)
    interval = bootstrap(ratio, [dcr_syn, dcr_hold], config.bootstrap_reps, rng, config.confidence)
    nndr_syn, nndr_hold = _nndr(d_syn), _nndr(d_hold)
    quantiles = [0.05, 0.25, 0.5, 0.75]
    details = pd.DataFrame({
        "statistic": ["DCR mean", *[f"DCR q{int(q * 100)}" for q in quantiles], "share at distance 0", "NNDR mean"],
        "synthetic_to_train": [dcr_syn.mean(), *np.quantile(dcr_syn, quantiles), (dcr_syn == 0).mean(), nndr_syn.mean()],
        "holdout_to_train": [dcr_hold.mean(), *np.quantile(dcr_hold, quantiles), (dcr_hold == 0).mean(), nndr_hold.mean()],
    })
    hi = float(np.quantile(np.r_[dcr_syn, dcr_hold], 0.99)) or 1.0
    edges = np.linspace(0, hi, 41)
    figure = {
        "name": "dcr_histogram", "kind": "dcr_histogram", "edges": edges.tolist(),
        "title": "Distance to closest record",
        "caption": "Distances of synthetic and of holdout rows to their closest training row (standardised).",
        "synthetic": np.histogram(np.clip(dcr_syn, 0, hi), edges)[0].tolist(),
        "holdout": np.histogram(np.clip(dcr_hold, 0, hi), edges)[0].tolist(),
    }
    rows = {"train_reference": len(train_ref), "synthetic_queries": len(syn_q), "holdout_queries": len(hold_q)}
    dcr = CheckResult.scored(
        name="privacy_dcr", score=dcr_ratio, threshold=config.dcr_ratio_min,
        summary=(
            f"mean distance to closest training record: synthetic {dcr_syn.mean():.3f} vs holdout {dcr_hold.mean():.3f} "
            f"(ratio {dcr_ratio:.2f}, min {config.dcr_ratio_min}); NNDR synthetic {nndr_syn.mean():.2f} vs "
            f"holdout {nndr_hold.mean():.2f}; {(dcr_syn == 0).mean():.1%} of synthetic rows at distance 0"
        ),
        details=details, figures=[figure], interval=interval, direction="higher",
        extra={"nndr_synthetic": float(nndr_syn.mean()), "nndr_holdout": float(nndr_hold.mean()), "rows": rows,
               "rows_seen": len(syn_q),
               "encoding": "robust z-scores for numbers (+ null flags), one-hot/sqrt(2) for categories"},
    )

    # Membership inference: are training rows closer to the synthetic set than holdout rows are?
    train_q = subsample(train, m, rng)
    syn_ref = subsample(synthetic, config.max_rows, rng)
    syn_ref_x, train_x, hold_x2 = distance_features(columns, syn_ref, train_q, hold_q)
    d_train, d_hold2 = _neighbours(syn_ref_x, [train_x, hold_x2], k=1)
    labels = np.r_[np.ones(len(d_train), bool), np.zeros(len(d_hold2), bool)]
    scores = -np.r_[d_train[:, 0], d_hold2[:, 0]]  # closer means "was in training"
    auc = auc_from_scores(labels, scores)
    m_interval = bootstrap_auc(labels, scores, config.bootstrap_reps, rng, config.confidence)
    membership = CheckResult.scored(
        name="privacy_membership", score=auc, threshold=config.membership_auc_max,
        summary=(
            f"distance-based membership attack AUC {auc:.3f} (max {config.membership_auc_max}; 0.5 reveals nothing): "
            f"training rows sit {d_train[:, 0].mean():.3f} from the synthetic set, holdout rows {d_hold2[:, 0].mean():.3f}"
        ),
        interval=m_interval, direction="lower",
        extra={"rows": {"train_queries": len(train_q), "holdout_queries": len(hold_q), "synthetic_reference": len(syn_ref)},
               "rows_seen": len(syn_ref),
               "attack": "score = -distance to the closest synthetic row"},
    )
    return [dcr, membership]

