"""Dataset shift between a real table and a synthetic (or a second real) table, in its three kinds.

- covariate shift, p(x): can a classifier tell the rows apart? (a classifier two-sample test,
  Lopez-Paz and Oquab, 2017), plus per-column two-sample tests and PSI, corrected for multiple
  testing, naming the columns that moved and those the classifier relies on;
- prior shift, p(y): did the target's marginal move? (total variation, chi-squared);
- concept shift, p(y|x): does a model trained on the synthetic rows predict real rows as well
  as one trained on real rows? (train-synthetic-test-real over train-real-test-real).

The gates bound effect sizes (AUC, PSI, TV, skill ratio); p-values are reported and gate only
when `gate_on_p_values` is set (see config.py for why).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthpipe.generators.row_keys import is_numeric, labels, numeric_values
from synthpipe.generators.schema import ColumnKind, ColumnSchema
from synthpipe.validators.base import CheckResult, gate, in_limited_threads, not_applicable
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.drift import CORRECTION_NAMES, correct, counts_test, ks_test
from synthpipe.validators.encoding import CategoryMap, ordinal_features
from synthpipe.validators.stats import (
    auc_from_scores,
    auc_null_pvalue,
    binned_counts,
    bootstrap_auc,
    bootstrap_counts,
    category_counts,
    jensen_shannon,
    percentile_interval,
    psi,
    quantile_edges,
    shares,
    total_variation,
)

IMPORTANCE_ROWS = 2_000  # rows of one held-out fold used for permutation importances
DETECTOR_BINS = 32  # bins per feature of the two-sample classifier (and codes per categorical feature)


def _classifier(categorical: np.ndarray, seed: int, early_stopping: bool = False, detector: bool = False):
    """Gradient-boosted trees: strong on mixed tables, native categories and nulls, fast on one thread.

    As the two-sample `detector` the trees are kept moderate (depth 4, 32 bins per feature, a
    fixed budget): fine bins let a classifier separate tables on artefacts such as a real spike
    at exactly 40 hours against synthetic values spread around it, which says little about
    shift. The concept-shift models are predictors and keep full capacity, stopping early on a
    10% validation split (which also makes a permuted target cheap).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    shape = dict(max_depth=4, max_bins=DETECTOR_BINS, min_samples_leaf=20) if detector else dict(max_leaf_nodes=31)
    return HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, categorical_features=categorical, early_stopping=early_stopping,
        n_iter_no_change=10, validation_fraction=0.1, random_state=seed, **shape,
    )


def _regressor(categorical: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=31, categorical_features=categorical,
        early_stopping=True, n_iter_no_change=10, validation_fraction=0.1, random_state=seed,
    )


# --------------------------------------------------------------------------------------------
# per-column comparisons


@dataclass
class ColumnComparison:
    column: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    js_distance: float
    wasserstein_sd: float


def compare_column(real: pd.Series, other: pd.Series, column: ColumnSchema) -> ColumnComparison:
    """Two-sample test and effect sizes of one column.

    Numbers: Kolmogorov-Smirnov on the non-null values, Wasserstein distance in real standard
    deviations, and PSI/JS over the real deciles plus a null bin. Categories: chi-squared on the
    category counts (unseen categories pooled, nulls a category), PSI and JS on the same counts.
    """
    from scipy import stats

    if is_numeric(column):
        r = numeric_values(real, column)
        o = numeric_values(other, column)
        rf, of = r[np.isfinite(r)], o[np.isfinite(o)]
        edges = quantile_edges(rf, 10)
        cr, co = binned_counts(r, edges), binned_counts(o, edges)
        statistic, p_value = ks_test(rf, of)
        if len(rf) and len(of):
            sd = float(np.std(rf)) or 1.0
            wasserstein = float(stats.wasserstein_distance(rf, of) / sd)
        else:
            wasserstein = float("nan")
        test = "KS"
    else:
        cmap = CategoryMap.fit(labels(real), 250)
        cr, co = category_counts(cmap.codes(labels(real)), cmap.codes(labels(other)), len(cmap.names))
        statistic, p_value, _ = counts_test(cr, co)
        wasserstein = float("nan")
        test = "chi-squared"
    return ColumnComparison(
        column=column.name, kind=column.kind.value, test=test, statistic=statistic, p_value=p_value,
        psi=psi(cr, co), js_distance=jensen_shannon(cr, co), wasserstein_sd=wasserstein,
    )


def _balanced(real: pd.DataFrame, synthetic: pd.DataFrame, n_max: int, rng: np.random.Generator):
    n = min(len(real), len(synthetic), n_max)
    r = real.iloc[np.sort(rng.choice(len(real), n, replace=False))] if len(real) > n else real
    s = synthetic.iloc[np.sort(rng.choice(len(synthetic), n, replace=False))] if len(synthetic) > n else synthetic
    return r, s


# --------------------------------------------------------------------------------------------
# covariate shift


@in_limited_threads
def covariate_shift(
    real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[ColumnSchema], config: ValidationConfig
) -> CheckResult:
    """Classifier two-sample test (cross-validated AUC of real vs synthetic) plus per-column tests.

    Passes when the AUC is at most `covariate_auc_max` and no column's PSI exceeds `psi_max`
    (and, with `gate_on_p_values`, no column differs significantly after correction).
    """
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedKFold

    name = "covariate_shift"
    if not columns:
        return not_applicable(name, "no comparable columns", "lower", config.covariate_auc_max)
    rng = np.random.default_rng(config.seed + 10)
    real_b, syn_b = _balanced(real, synthetic, config.max_rows, rng)
    (xr, xs), categorical = ordinal_features(columns, real_b, syn_b, max_codes=DETECTOR_BINS)
    x = np.vstack([xr, xs])
    y = np.r_[np.zeros(len(xr), int), np.ones(len(xs), int)]
    folds = StratifiedKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    oof = np.empty(len(y))
    fold_aucs = []
    model = test_idx = None
    for train_idx, test_idx in folds.split(x, y):
        model = _classifier(categorical, config.seed, detector=True).fit(x[train_idx], y[train_idx])
        oof[test_idx] = model.predict_proba(x[test_idx])[:, 1]
        fold_aucs.append(auc_from_scores(y[test_idx], oof[test_idx]))
    auc = auc_from_scores(y, oof)
    p_value = auc_null_pvalue(auc, int(y.sum()), int(len(y) - y.sum()))
    interval = bootstrap_auc(y, oof, config.bootstrap_reps, rng, config.confidence)

    # permutation importance of the last fold's model on its held-out rows
    imp_idx = test_idx if len(test_idx) <= IMPORTANCE_ROWS else rng.choice(test_idx, IMPORTANCE_ROWS, replace=False)
    importances = np.zeros(len(columns))
    if len(np.unique(y[imp_idx])) == 2:
        result = permutation_importance(
            model, x[imp_idx], y[imp_idx], scoring="roc_auc", n_repeats=3, random_state=config.seed, n_jobs=1
        )
        importances = result.importances_mean

    comparisons = [compare_column(real[c.name], synthetic[c.name], c) for c in columns]
    table = pd.DataFrame([vars(c) for c in comparisons])
    table["p_adjusted"] = correct(table["p_value"].to_numpy(), config.p_adjust)
    table["significant"] = table["p_adjusted"] < config.alpha
    table["psi_exceeded"] = table["psi"] > config.psi_max
    table["importance"] = importances
    table = table.sort_values(["psi", "importance"], ascending=False, kind="stable").reset_index(drop=True)
    table = table[["column", "kind", "psi", "js_distance", "wasserstein_sd", "test", "statistic",
                   "p_value", "p_adjusted", "significant", "psi_exceeded", "importance"]]

    auc_ok = gate(auc, config.covariate_auc_max, "lower")
    psi_bad = table.loc[table["psi_exceeded"], "column"].tolist()
    sig = table.loc[table["significant"], "column"].tolist()
    passed = bool(auc_ok) and not psi_bad and not (config.gate_on_p_values and sig)
    relied = table.sort_values("importance", ascending=False).head(3)
    relied = [f"{c} ({v:+.3f})" for c, v in zip(relied["column"], relied["importance"]) if v > 0]
    correction = CORRECTION_NAMES[config.p_adjust]
    summary = (
        f"real-vs-synthetic classifier AUC {auc:.3f} (bound {config.covariate_auc_max}, p={p_value:.2g}); "
        f"{len(sig)} of {len(table)} columns differ at {correction}-corrected p<{config.alpha}; "
        f"{len(psi_bad)} with PSI>{config.psi_max}" + (f" ({', '.join(psi_bad[:5])})" if psi_bad else "")
    )
    if relied:
        summary += "; classifier relies on " + ", ".join(relied)
    figure = {"name": "shifted_columns", "kind": "shift_bars", "title": "Most shifted columns", "caption": summary,
              "columns": table["column"].head(15).tolist(), "psi": table["psi"].head(15).tolist(),
              "importance": table["importance"].head(15).tolist(), "psi_max": config.psi_max}
    return CheckResult(
        name=name, score=auc, threshold=config.covariate_auc_max, passed=passed, summary=summary,
        details=table, figures=[figure], interval=interval, direction="lower",
        extra={
            "p_value": p_value, "fold_aucs": fold_aucs, "rows_per_side": len(xr), "rows_seen": len(xs),
            "columns_significant": sig, "columns_psi_exceeded": psi_bad, "auc_passed": auc_ok,
            "ci_method": "stratified bootstrap of out-of-fold predictions",
            "p_value_method": "normal approximation of the label-permutation distribution of the out-of-fold AUC",
        },
    )


# --------------------------------------------------------------------------------------------
# prior shift


def _target_counts(real: pd.Series, other: pd.Series, column: ColumnSchema) -> tuple[list[str], np.ndarray, np.ndarray]:
    if is_numeric(column):
        r, o = numeric_values(real, column), numeric_values(other, column)
        edges = quantile_edges(r[np.isfinite(r)], 10)
        cr, co = binned_counts(r, edges), binned_counts(o, edges)
        bounds = [-np.inf, *edges.tolist(), np.inf]
        names = [f"[{bounds[i]:.4g}, {bounds[i + 1]:.4g})" for i in range(len(bounds) - 1)] + ["<null>"]
    else:
        cmap = CategoryMap.fit(labels(real), 250)
        cr, co = category_counts(cmap.codes(labels(real)), cmap.codes(labels(other)), len(cmap.names))
        names = list(cmap.names)
    keep = (cr + co) > 0
    return [n for n, k in zip(names, keep) if k], cr[keep], co[keep]


def prior_shift(
    real: pd.DataFrame, synthetic: pd.DataFrame, target: ColumnSchema | None, config: ValidationConfig
) -> CheckResult:
    """Total variation distance (and chi-squared test) between the target's two marginals."""

    name = "prior_shift"
    if target is None:
        return not_applicable(name, "no target column configured", "lower", config.prior_tv_max)
    names, cr, co = _target_counts(real[target.name], synthetic[target.name], target)
    tv = total_variation(cr, co)
    _, p_value, _ = counts_test(cr, co)
    interval = bootstrap_counts(total_variation, cr, co, config.bootstrap_reps,
                                np.random.default_rng(config.seed + 20), config.confidence)
    passed = bool(gate(tv, config.prior_tv_max, "lower")) and not (config.gate_on_p_values and p_value < config.alpha)
    details = pd.DataFrame({"value": names, "real_share": shares(cr), "synthetic_share": shares(co)})
    details["difference"] = details["synthetic_share"] - details["real_share"]
    details = details.sort_values("difference", key=np.abs, ascending=False).reset_index(drop=True)
    top = details.iloc[0]
    summary = (
        f"target {target.name!r}: total variation {tv:.3f} (bound {config.prior_tv_max}), chi-squared p={p_value:.2g}; "
        f"largest move {top['value']}: {top['real_share']:.1%} real vs {top['synthetic_share']:.1%} synthetic"
    )
    return CheckResult(
        name=name, score=tv, threshold=config.prior_tv_max, passed=passed, summary=summary, details=details,
        interval=interval, direction="lower",
        extra={"target": target.name, "p_value": p_value, "psi": psi(cr, co),
               "ci_method": "multinomial bootstrap of both marginals"},
    )


# --------------------------------------------------------------------------------------------
# concept shift


def _skill(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    """AUC (binary), balanced accuracy (multiclass) or R^2 (regression) of predictions."""
    if task == "binary":
        return auc_from_scores(y == 1, pred)
    if task == "multiclass":
        classes = np.unique(y)
        return float(np.mean([(pred[y == c] == c).mean() for c in classes]))
    ss_res = np.sum((y - pred) ** 2)
    ss_tot = np.sum((y - y.mean()) ** 2)
    return float(1 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def _chance(task: str, y: np.ndarray) -> float:
    if task == "binary":
        return 0.5
    if task == "multiclass":
        return 1.0 / len(np.unique(y))
    return 0.0


def _fit_predict(task: str, categorical: np.ndarray, x_train, y_train, x_test, seed: int) -> np.ndarray:
    """Predictions for x_test: P(class 1) (binary), a label (multiclass) or a value (regression)."""
    if task == "regression":
        return _regressor(categorical, seed).fit(x_train, y_train).predict(x_test)
    classes = np.unique(y_train)
    if len(classes) < 2:  # a synthetic target with one class predicts that class everywhere
        return np.full(len(x_test), float(classes[0] == 1) if task == "binary" else classes[0])
    model = _classifier(categorical, seed, early_stopping=True).fit(x_train, y_train)
    if task == "binary":
        return model.predict_proba(x_test)[:, list(model.classes_).index(1)] if 1 in model.classes_ else np.zeros(len(x_test))
    return model.predict(x_test)


@in_limited_threads
def concept_shift(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    target: ColumnSchema | None,
    features: list[ColumnSchema],
    config: ValidationConfig,
    holdout: pd.DataFrame | None = None,
) -> CheckResult:
    """How much of p(y|x) the synthetic table keeps: (TSTR - chance) / (TRTR - chance).

    TSTR trains on synthetic rows, TRTR on real rows; both are scored on the holdout when one is
    given, otherwise TRTR by cross-validation on the real rows and TSTR on all real rows (those
    trained the generator, so a holdout is the fairer test). Also reports how often the two
    models disagree on the same real rows.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    name = "concept_shift"
    if target is None:
        return not_applicable(name, "no target column configured", "higher", config.concept_ratio_min)
    if target.kind == ColumnKind.DATETIME or not features:
        return not_applicable(name, f"target {target.name!r} is not a class or a number, or there are no features",
                              "higher", config.concept_ratio_min)
    if target.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        cmap = CategoryMap.fit(labels(real[target.name]), 250)
        encode = lambda f: cmap.codes(labels(f[target.name])).astype(float)  # noqa: E731
        n_classes = len(np.unique(encode(real)))
        task = "binary" if n_classes == 2 else "multiclass"
    else:
        encode = lambda f: numeric_values(f[target.name], target)  # noqa: E731
        task = "regression"

    def usable(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[np.isfinite(encode(frame))] if task == "regression" else frame

    real_u, syn_u = usable(real), usable(synthetic)
    test_frame = usable(holdout) if holdout is not None else None
    if task != "regression" and len(np.unique(encode(real_u))) < 2:
        return not_applicable(name, f"target {target.name!r} has a single class in the real table", "higher",
                              config.concept_ratio_min)
    frames = [real_u, syn_u] + ([test_frame] if test_frame is not None else [])
    mats, categorical = ordinal_features(features, *frames)
    x_real, x_syn = mats[0], mats[1]
    y_real, y_syn = encode(real_u), encode(syn_u)
    if task == "binary":  # code 1 is the real table's second most frequent class
        y_real, y_syn = (y_real == 1).astype(int), (y_syn == 1).astype(int)

    if test_frame is not None:
        x_test, y_test = mats[2], encode(test_frame)
        if task == "binary":
            y_test = (y_test == 1).astype(int)
        pred_real = _fit_predict(task, categorical, x_real, y_real, x_test, config.seed)
        evaluation = "holdout"
    else:
        x_test, y_test = x_real, y_real
        pred_real = np.empty(len(y_real), dtype=float)
        splitter = (KFold(config.cv_folds, shuffle=True, random_state=config.seed) if task == "regression"
                    else StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed))
        stratify = y_real if task != "regression" else None
        for tr, te in splitter.split(x_real, stratify):
            pred_real[te] = _fit_predict(task, categorical, x_real[tr], y_real[tr], x_real[te], config.seed)
        evaluation = f"{config.cv_folds}-fold cross-validation on the real rows"
    pred_syn = _fit_predict(task, categorical, x_syn, y_syn, x_test, config.seed)

    chance = _chance(task, y_test)
    trtr, tstr = _skill(task, y_test, pred_real), _skill(task, y_test, pred_syn)
    metric = {"binary": "AUC", "multiclass": "balanced accuracy", "regression": "R^2"}[task]
    if task == "binary":
        disagree = float(np.mean((pred_real >= 0.5) != (pred_syn >= 0.5)))
    elif task == "multiclass":
        disagree = float(np.mean(pred_real != pred_syn))
    else:
        disagree = float(np.mean(np.abs(pred_real - pred_syn) > 0.5 * (np.std(y_test) or 1.0)))
    details = pd.DataFrame({
        "quantity": ["TRTR " + metric, "TSTR " + metric, "chance " + metric, "disagreement rate", "test rows"],
        "value": [trtr, tstr, chance, disagree, float(len(y_test))],
    })
    extra = {"target": target.name, "task": task, "metric": metric, "trtr": trtr, "tstr": tstr, "chance": chance,
             "disagreement": disagree, "evaluation": evaluation}
    if not np.isfinite(trtr) or trtr - chance < config.concept_min_real_skill:
        result = not_applicable(
            name, f"a model trained on real rows predicts {target.name!r} no better than chance "
                  f"({metric} {trtr:.3f} vs {chance:.3f})", "higher", config.concept_ratio_min)
        result.details, result.extra = details, {**result.extra, **extra}
        return result

    def ratio(y, a, b) -> float:
        return (_skill(task, y, b) - chance) / (_skill(task, y, a) - chance)

    score = (tstr - chance) / (trtr - chance)
    rng = np.random.default_rng(config.seed + 30)
    reps = []
    for _ in range(config.bootstrap_reps):
        idx = rng.integers(0, len(y_test), len(y_test))
        reps.append(ratio(y_test[idx], pred_real[idx], pred_syn[idx]))
    interval = percentile_interval(np.array(reps), config.confidence) if reps else None
    summary = (
        f"target {target.name!r} ({task}): TSTR {metric} {tstr:.3f} vs TRTR {trtr:.3f} (chance {chance:.3f}), "
        f"skill ratio {score:.2f} (min {config.concept_ratio_min}); the two models disagree on {disagree:.1%} "
        f"of real rows; scored by {evaluation}"
    )
    return CheckResult.scored(
        name=name, score=float(score), threshold=config.concept_ratio_min, summary=summary, details=details,
        interval=interval, direction="higher", extra={**extra, "ci_method": "bootstrap of test rows (models fixed)"},
    )
