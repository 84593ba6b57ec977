"""Quality and privacy metrics for a synthetic table, self-contained and pure.

Each function takes DataFrames (real train, real holdout, synthetic) and returns numbers; none of
them trains a generator or touches files. Row caps keep every metric to seconds on one core, and
the subsamples are seeded so two runs of the same inputs give the same figures.

- quality_score: sdmetrics QualityReport (column shapes and pair trends), 0..1, higher is better.
- c2st_auc: classifier two-sample test, gradient-boosted trees, k-fold ROC AUC of telling holdout
  rows from synthetic rows; 0.5 means indistinguishable, 1.0 means trivially separable.
- utility: train-on-synthetic/test-on-real over train-on-real/test-on-real for one target column
  (R^2 for regression, ROC AUC for classification); 1.0 means the synthetic table is as useful.
- dcr_ratio: median distance from synthetic rows to their closest train row over the same for
  holdout rows; below 1 means synthetic rows sit closer to training rows than unseen real rows do.
- exact_copy_rate: share of synthetic rows that are verbatim training rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

MAX_TREE_CATEGORIES = 255  # HistGradientBoosting's limit for a native categorical feature
MAX_ONE_HOT = 50  # categories one-hot encoded for distances; rarer ones share an "other" slot


def quality_score(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: dict[str, Any],
    max_rows: int = 5_000,
    seed: int = 0,
) -> dict[str, float]:
    """sdmetrics QualityReport on (subsampled) real vs synthetic: overall, shapes and trends."""
    real, synthetic = (
        _subsample(real, max_rows, seed),
        _subsample(synthetic[real.columns], max_rows, seed + 1),
    )
    with warnings.catch_warnings():
        # the single-table report is deprecated in favour of a unified one that adds multi-table
        # properties; the single-table scores are the ones comparable across sdmetrics versions
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(real, synthetic, metadata, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    return {
        "quality": float(report.get_score()),
        "shapes": float(props.get("Column Shapes", np.nan)),
        "trends": float(props.get("Column Pair Trends", np.nan)),
    }


def c2st_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, max_rows: int = 5_000, folds: int = 5, seed: int = 0
) -> float:
    """Mean k-fold ROC AUC of gradient-boosted trees separating real rows from synthetic rows.
    Both sides are cut to the same size so that the classes are balanced."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    n = min(len(real), len(synthetic), max_rows)
    real, synthetic = _subsample(real, n, seed), _subsample(synthetic[real.columns], n, seed + 1)
    x, categorical = tree_features([real, synthetic], reference=real)
    x = np.vstack(x)
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    aucs = []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
        model.fit(x[train_idx], y[train_idx])
        aucs.append(roc_auc_score(y[test_idx], model.predict_proba(x[test_idx])[:, 1]))
    return float(np.mean(aucs))


def utility(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    target: str,
    task: str,
    max_rows: int = 20_000,
    seed: int = 0,
) -> dict[str, float]:
    """Score on the holdout of a model trained on synthetic rows, over one trained on real rows."""
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    train, holdout, synthetic = (
        _subsample(f[f[target].notna()], max_rows, seed + i)
        for i, f in enumerate((train, holdout, synthetic))
    )
    features = [c for c in train.columns if c != target]
    (x_train, x_holdout, x_synth), categorical = tree_features(
        [train[features], holdout[features], synthetic[features]], reference=train[features]
    )
    score_real = _fit_and_score(x_train, train[target], x_holdout, holdout[target], task, categorical, seed)
    score_synth = (
        _fit_and_score(x_synth, synthetic[target], x_holdout, holdout[target], task, categorical, seed)
        if len(synthetic) >= 2
        else np.nan
    )
    ratio = score_synth / score_real if score_real > 0 else np.nan
    return {
        "utility_real": float(score_real),
        "utility_synth": float(score_synth),
        "utility_ratio": float(ratio),
    }


def dcr_ratio(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    max_rows: int = 2_000,
    max_reference: int = 20_000,
    seed: int = 0,
) -> dict[str, float]:
    """Median distance to the closest train record: synthetic rows over holdout rows.

    Columns are standardised with the train statistics (numbers by mean/std, nulls as an extra
    0/1 column, categories one-hot scaled so that a mismatch costs 1), so that every column
    counts about the same; the same train subsample is the reference for both queries."""
    from sklearn.neighbors import NearestNeighbors

    n = min(len(holdout), len(synthetic), max_rows)
    reference = _subsample(train, max_reference, seed)
    encode = distance_encoder(reference)
    index = NearestNeighbors(n_neighbors=1).fit(encode(reference))
    d_synth = index.kneighbors(encode(_subsample(synthetic[train.columns], n, seed + 1)))[0][:, 0]
    d_holdout = index.kneighbors(encode(_subsample(holdout, n, seed + 2)))[0][:, 0]
    med_synth, med_holdout = float(np.median(d_synth)), float(np.median(d_holdout))
    return {
        "dcr_synth": med_synth,
        "dcr_holdout": med_holdout,
        "dcr_ratio": med_synth / med_holdout if med_holdout > 0 else np.nan,
    }


def exact_copy_rate(train: pd.DataFrame, rows: pd.DataFrame) -> float:
    """Share of `rows` that equal some train row in every column (nulls equal nulls)."""
    if len(rows) == 0:
        return float("nan")
    seen = set(row_hashes(train, train.columns))
    return float(np.mean([h in seen for h in row_hashes(rows, train.columns)]))


# ---- helpers (public because they are small, pure and worth testing on their own) ------------


def row_hashes(df: pd.DataFrame, columns: pd.Index) -> np.ndarray:
    """A hash per row that ignores dtype differences (int 3 == float 3.0, None == NaN), so that a
    generator that restores a column with another dtype is not credited with zero copies."""
    canon = {}
    for name in columns:
        col = df[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            canon[name] = _as_float(col)
        elif pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            canon[name] = pd.to_numeric(col, errors="coerce").astype("float64")
        else:
            canon[name] = col.astype("object").where(col.notna(), "\x00null").astype(str)
    return pd.util.hash_pandas_object(pd.DataFrame(canon), index=False).to_numpy()


def tree_features(frames: list[pd.DataFrame], reference: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray]:
    """Float matrices for gradient-boosted trees, encoded consistently across `frames`.

    Numbers and booleans stay numbers (nulls stay NaN, which the trees handle); datetimes become
    seconds; categories become codes over the union of values in all frames, marked categorical
    when there are few enough of them. Returns the matrices and the categorical mask."""
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    categorical = []
    for name in reference.columns:
        cols = [f[name] for f in frames]
        if all(_is_numberlike(c) for c in cols):
            for block, col in zip(blocks, cols):
                block.append(_as_float(col))
            categorical.append(False)
            continue
        strings = [
            c.astype("object").where(c.notna(), None).map(lambda v: None if v is None else str(v))
            for c in cols
        ]
        values = sorted({v for s in strings for v in s.dropna().unique()})
        lookup = {v: float(i) for i, v in enumerate(values)}
        for block, s in zip(blocks, strings):
            block.append(s.map(lookup).astype("float64").to_numpy())
        categorical.append(len(values) <= MAX_TREE_CATEGORIES)
    matrices = [np.column_stack(b) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, frames)]
    return matrices, np.array(categorical, dtype=bool)


def distance_encoder(reference: pd.DataFrame) -> Any:
    """Fit a standardising encoder on `reference`; returns a function DataFrame -> float matrix."""
    plans = []
    for name in reference.columns:
        col = reference[name]
        if _is_numberlike(col):
            x = _as_float(col)
            mean = float(np.nanmean(x)) if np.isfinite(x).any() else 0.0
            std = float(np.nanstd(x)) if np.isfinite(x).any() else 1.0
            plans.append(("num", name, (mean, std if std > 0 else 1.0, bool(np.isnan(x).any()))))
        else:
            top = col.astype(str).where(col.notna(), "\x00null").value_counts().index[:MAX_ONE_HOT]
            plans.append(("cat", name, list(top)))

    def encode(df: pd.DataFrame) -> np.ndarray:
        parts = []
        for kind, name, plan in plans:
            col = df[name]
            if kind == "num":
                mean, std, has_null = plan
                x = (
                    _as_float(col)
                    if _is_numberlike(col)
                    else pd.to_numeric(col, errors="coerce").to_numpy(float)
                )
                null = np.isnan(x)
                parts.append(np.where(null, 0.0, (x - mean) / std)[:, None])
                if has_null or null.any():
                    parts.append(null.astype(float)[:, None])
            else:
                s = col.astype(str).where(col.notna(), "\x00null").to_numpy()
                onehot = (s[:, None] == np.array(plan, dtype=object)[None, :]).astype(float)
                other = (onehot.sum(axis=1, keepdims=True) == 0).astype(float)
                parts.append(np.hstack([onehot, other]) / np.sqrt(2.0))
        return np.hstack(parts) if parts else np.zeros((len(df), 0))

    return encode


def _fit_and_score(
    x_fit: np.ndarray,
    y_fit: pd.Series,
    x_eval: np.ndarray,
    y_eval: pd.Series,
    task: str,
    categorical: np.ndarray,
    seed: int,
) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "regression":
        model = HistGradientBoostingRegressor(categorical_features=categorical, random_state=seed)
        model.fit(x_fit, pd.to_numeric(y_fit, errors="coerce").to_numpy(float))
        return float(r2_score(pd.to_numeric(y_eval).to_numpy(float), model.predict(x_eval)))
    y_fit, y_eval = y_fit.astype(str).to_numpy(), y_eval.astype(str).to_numpy()
    labels = np.unique(y_eval)
    if len(labels) < 2:
        return float("nan")
    if len(np.unique(y_fit)) < 2:  # a one-class synthetic target carries no signal
        return 0.5
    model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed).fit(
        x_fit, y_fit
    )
    proba = np.zeros((len(x_eval), len(labels)))
    predicted = model.predict_proba(x_eval)
    for j, label in enumerate(model.classes_):
        if label in labels:
            proba[:, np.searchsorted(labels, label)] = predicted[:, j]
    if len(labels) == 2:
        return float(roc_auc_score(y_eval == labels[1], proba[:, 1]))
    proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    return float(roc_auc_score(y_eval, proba, multi_class="ovr", labels=labels))


def _subsample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(df) <= n:
        return df.reset_index(drop=True)
    return df.sample(n=n, random_state=seed).reset_index(drop=True)


def _is_numberlike(col: pd.Series) -> bool:
    return (
        pd.api.types.is_numeric_dtype(col)
        or pd.api.types.is_bool_dtype(col)
        or pd.api.types.is_datetime64_any_dtype(col)
    )


def _as_float(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col):
        if getattr(col.dt, "tz", None) is not None:
            col = col.dt.tz_convert(None)
        ns = col.to_numpy("datetime64[ns]").astype("int64").astype("float64")
        return np.where(col.isna().to_numpy(), np.nan, ns / 1e9)
    return pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
