"""Fidelity: sdmetrics' QualityReport and DiagnosticReport, and the generator's held-out likelihood.

sdmetrics is slow on many rows and on high-cardinality columns (its pair trends build a
contingency table per pair), so the tables arrive here already subsampled to
`ValidationConfig.max_rows` and categorical columns with more than `high_cardinality`
categories are scored for their shape only, not in pairs; the details say which.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.row_keys import NUMERIC_KINDS, labels, numeric_values
from synthpipe.generators.schema import ColumnKind, TableSchema
from synthpipe.validators.base import CheckResult
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.stats import bootstrap_mean, percentile_interval

_SDTYPE = {
    ColumnKind.NUMERICAL: "numerical",
    ColumnKind.INTEGER: "numerical",
    ColumnKind.DATETIME: "datetime",
    ColumnKind.CATEGORICAL: "categorical",
    ColumnKind.BOOLEAN: "categorical",  # labels are canonical strings, see generators/row_keys.labels
    ColumnKind.CONSTANT: "categorical",
    ColumnKind.ID: "id",
}


def sdmetrics_inputs(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Both tables in sdmetrics' terms: canonical dtypes and single-table metadata from the schema.

    Numbers become floats, datetimes tz-naive UTC, categories and booleans canonical strings, so
    dtype drift between a source file and a Parquet round trip never reads as a quality loss.
    The first ID column is the primary key (its uniqueness is a diagnostic).
    """
    names = [c.name for c in schema.columns if c.name in real.columns and c.name in synthetic.columns]
    columns: dict[str, dict[str, str]] = {}
    out_real, out_syn = {}, {}
    primary_key = None
    for name in names:
        column = schema[name]
        sdtype = _SDTYPE[column.kind]
        columns[name] = {"sdtype": sdtype}
        for source, out in ((real, out_real), (synthetic, out_syn)):
            series = source[name]
            if column.kind == ColumnKind.DATETIME:
                out[name] = pd.to_datetime(series, errors="coerce", utc=True, format="mixed").dt.tz_localize(None)
            elif column.kind in NUMERIC_KINDS:
                out[name] = numeric_values(series, column)
            elif column.kind == ColumnKind.ID:
                out[name] = series.astype(str).to_numpy()
            else:
                out[name] = labels(series)
        if column.kind == ColumnKind.ID and primary_key is None:
            primary_key = name
    metadata: dict[str, Any] = {"columns": columns}
    if primary_key:
        metadata["primary_key"] = primary_key
    return pd.DataFrame(out_real), pd.DataFrame(out_syn), metadata


def quality_check(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, config: ValidationConfig
) -> CheckResult:
    """sdmetrics QualityReport: column shapes (KS/TV complement) and column-pair trends.

    The interval bootstraps the per-column and per-pair scores (the report's own averages),
    which is cheap and shows how uneven the fidelity is across the table; it is not a
    row-resampling interval of the whole report.
    """
    from sdmetrics.single_column import TVComplement

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

    real_s, syn_s, metadata = sdmetrics_inputs(real, synthetic, schema)
    wide = [
        n for n, m in metadata["columns"].items()
        if m["sdtype"] == "categorical" and real_s[n].nunique() > config.high_cardinality
    ]
    paired_meta = {"columns": {n: m for n, m in metadata["columns"].items() if n not in wide}}
    if "primary_key" in metadata:
        paired_meta["primary_key"] = metadata["primary_key"]
    paired = list(paired_meta["columns"])

    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real_s[paired], syn_s[paired], paired_meta, verbose=False)
        shapes = report.get_details("Column Shapes").copy()
        pairs = report.get_details("Column Pair Trends").copy()
    for name in wide:
        shapes.loc[len(shapes)] = {"Column": name, "Metric": "TVComplement",
                                   "Score": TVComplement.compute(real_s[name], syn_s[name])}
    shape_scores = shapes["Score"].to_numpy(dtype=float)
    pair_scores = pairs["Score"].to_numpy(dtype=float) if len(pairs) else np.array([])
    shape_scores_ok = shape_scores[np.isfinite(shape_scores)]
    pair_scores_ok = pair_scores[np.isfinite(pair_scores)]

    def overall(s: np.ndarray, p: np.ndarray) -> float:
        parts = [x.mean() for x in (s, p) if len(x)]
        return float(np.mean(parts)) if parts else float("nan")

    score = overall(shape_scores_ok, pair_scores_ok)
    rng = np.random.default_rng(config.seed)
    interval = None
    if config.bootstrap_reps and len(shape_scores_ok):
        reps = []
        for _ in range(config.bootstrap_reps):
            s = shape_scores_ok[rng.integers(0, len(shape_scores_ok), len(shape_scores_ok))]
            p = pair_scores_ok[rng.integers(0, len(pair_scores_ok), len(pair_scores_ok))] if len(pair_scores_ok) else pair_scores_ok
            reps.append(overall(s, p))
        interval = percentile_interval(np.array(reps), config.confidence)

    shapes_table = shapes.rename(columns={"Column": "column", "Metric": "metric", "Score": "score"})
    shapes_table.insert(0, "property", "column shape")
    pairs_table = pairs.rename(columns={"Column 1": "column", "Column 2": "column_2", "Metric": "metric", "Score": "score"})
    pairs_table.insert(0, "property", "pair trend")
    keep = ["property", "column", "column_2", "metric", "score"]
    details = pd.concat([shapes_table, pairs_table], ignore_index=True).reindex(columns=keep)
    details = details.sort_values(["property", "score"], kind="stable").reset_index(drop=True)
    shape_mean = float(shape_scores_ok.mean()) if len(shape_scores_ok) else float("nan")
    pair_mean = float(pair_scores_ok.mean()) if len(pair_scores_ok) else float("nan")
    summary = f"quality {score:.3f} (column shapes {shape_mean:.3f}, pair trends {pair_mean:.3f})"
    if wide:
        summary += f"; {len(wide)} column(s) with > {config.high_cardinality} categories left out of pair trends: {wide}"
    worst = shapes.sort_values("Score").head(3)
    if len(worst):
        summary += "; weakest shapes: " + ", ".join(f"{c} {s:.2f}" for c, s in zip(worst["Column"], worst["Score"]))
    return CheckResult.scored(
        name="quality",
        score=score,
        threshold=config.quality_min,
        summary=summary,
        details=details,
        interval=interval,
        direction="higher",
        extra={
            "column_shapes": shape_mean,
            "column_pair_trends": pair_mean,
            "pair_trends_skipped_columns": wide,
            "ci_method": "bootstrap over per-column and per-pair scores",
        },
    )


def diagnostic_check(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, config: ValidationConfig
) -> CheckResult:
    """sdmetrics DiagnosticReport: data validity (bounds, categories, key uniqueness) and structure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import DiagnosticReport

    real_s, syn_s, metadata = sdmetrics_inputs(real, synthetic, schema)
    report = DiagnosticReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real_s, syn_s, metadata, verbose=False)
        validity = report.get_details("Data Validity").copy()
        structure = report.get_details("Data Structure").copy()
        properties = report.get_properties()
    score = float(report.get_score())
    validity.insert(0, "property", "data validity")
    structure.insert(0, "property", "data structure")
    structure.insert(1, "Column", None)
    details = pd.concat([validity, structure], ignore_index=True)
    details = details.rename(columns={"Column": "column", "Metric": "metric", "Score": "score"})
    details = details.reindex(columns=["property", "column", "metric", "score"]).sort_values("score", kind="stable")

    rng = np.random.default_rng(config.seed + 1)
    validity_scores = validity["Score"].to_numpy(dtype=float)
    validity_scores = validity_scores[np.isfinite(validity_scores)]
    structure_score = float(structure["Score"].mean()) if len(structure) else float("nan")
    interval = None
    if config.bootstrap_reps and len(validity_scores):
        boot = rng.choice(validity_scores, (config.bootstrap_reps, len(validity_scores))).mean(axis=1)
        interval = percentile_interval(np.nanmean(np.c_[boot, np.full(len(boot), structure_score)], axis=1), config.confidence)
    bad = details[details["score"] < 1].head(5)
    summary = f"diagnostic {score:.3f}"
    if len(bad):
        summary += "; below 1: " + ", ".join(f"{c or '-'} {m} {s:.3f}" for c, m, s in zip(bad["column"], bad["metric"], bad["score"]))
    else:
        summary += "; every column valid, structure matches"
    return CheckResult.scored(
        name="diagnostic",
        score=score,
        threshold=config.diagnostic_min,
        summary=summary,
        details=details.reset_index(drop=True),
        interval=interval,
        direction="higher",
        extra={"properties": dict(zip(properties["Property"], properties["Score"])),
               "ci_method": "bootstrap over per-column validity scores"},
    )


THEIS_NOTE = (
    "A good held-out likelihood and good samples can disagree: likelihood rewards covering every "
    "real row, not producing realistic ones (Theis, van den Oord and Bethge, 2015)."
)


def likelihood_check(likelihood: dict[str, Any], config: ValidationConfig) -> CheckResult:
    """The generator's held-out log-likelihood (exact, or a bound such as an ELBO): reported, not gated.

    Likelihood and sample quality can disagree (Theis et al., 2015), so it informs, never decides.
    """
    kind = likelihood.get("kind", "exact")
    per_row = np.asarray(likelihood["per_row"], dtype=float)
    finite = per_row[np.isfinite(per_row)]
    n_columns = int(likelihood.get("n_columns") or 0)
    score = float(finite.mean()) if len(finite) else float("nan")
    interval = bootstrap_mean(finite, config.bootstrap_reps, np.random.default_rng(config.seed + 2), config.confidence)
    per_column = likelihood.get("per_column") or None
    details = None
    if per_column:
        details = pd.DataFrame({"column": list(per_column), "nats_per_row": list(per_column.values())})
        details = details.sort_values("nats_per_row").reset_index(drop=True)
    label = "log-likelihood" if kind == "exact" else "log-likelihood lower bound (ELBO)"
    per_col = f", {score / n_columns:.3f} nats per column" if n_columns else ""
    summary = f"held-out {label}: {score:.3f} nats per row{per_col} over {len(finite)} rows"
    if len(finite) < len(per_row):
        summary += f" ({len(per_row) - len(finite)} non-finite rows left out)"
    return CheckResult(
        name="holdout_log_likelihood",
        score=score,
        threshold=None,
        passed=None,
        summary=summary,
        details=details,
        interval=interval,
        direction="higher",
        extra={"kind": kind, "n_rows": int(len(finite)), "n_columns": n_columns, "note": THEIS_NOTE,
               "nats_per_column": score / n_columns if n_columns else None},
    )
