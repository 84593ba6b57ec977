"""Thresholds and settings of the validation suite, with the reasoning behind each default.

The defaults follow common drift-monitoring practice (a corrected p < 0.05 is significant,
PSI above 0.2 is a significant shift) and are tuned so that a random split of a real table
passes every gate, while the failure each check exists for (a filtered subset, a flipped class
balance, a permuted target, copied training rows, out-of-range values) fails it. Synthetic data
from a good generator is never indistinguishable from real data, so the gates on two-sample
tests bound effect sizes (AUC, PSI, TV), not p-values: at a few thousand rows any imperfection
is "significant", and a p-value gate would fail every generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Rows of the synthetic output kept in memory for the sample-based checks (classifiers, sdmetrics),
# in a run and in `synthpipe validate`; the whole-output checks stream every row instead.
SYNTHETIC_SAMPLE_ROWS = 50_000


class ValidationConfig(BaseModel):
    """Which checks run, and the gate of each."""

    model_config = ConfigDict(extra="forbid")

    # --- fidelity (sdmetrics) ---------------------------------------------------------------
    quality_min: float = Field(
        0.7, ge=0, le=1,
        description="sdmetrics QualityReport overall score (mean of column shapes and pair trends). "
        "SDV's own guidance reads 0.7-0.8 as acceptable; a random split of a real table scores ~0.95.",
    )
    diagnostic_min: float = Field(
        0.9, ge=0, le=1,
        description="sdmetrics DiagnosticReport score (validity: values within bounds, known categories, "
        "unique keys; structure). A valid generator scores ~1.0, so anything below 0.9 is broken output.",
    )
    # --- dataset shift ------------------------------------------------------------------------
    covariate_auc_max: float = Field(
        0.9, ge=0.5, le=1,
        description="Cross-validated AUC of gradient-boosted trees telling real rows from synthetic ones "
        "(0.5: indistinguishable). Generators are always detectable: on the shipped ACS table a random split "
        "scores 0.50, a well-trained TVAE 0.84, an undertrained CTGAN 0.99, and the AUC grows with the rows "
        "the classifier sees. 0.9 fails tables the classifier separates almost perfectly without failing "
        "every deep generator. A subset filtered on one column (age > 50) scores only ~0.8 but fails "
        "through psi_max, which catches a large shift in any one column.",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of every test, after correction.")
    p_adjust: Literal["bh", "holm"] = Field(
        "bh", description="Multiple-testing correction of the per-column tests: Benjamini-Hochberg (false "
        "discovery rate) or Holm (family-wise error).",
    )
    psi_max: float = Field(
        0.2, ge=0,
        description="Population stability index per column; the industry rule of thumb reads < 0.1 as "
        "stable, 0.1-0.2 as moderate and > 0.2 as a significant shift. covariate_shift fails when any "
        "column exceeds it (a decent generator stays below ~0.15 on every ACS column).",
    )
    gate_on_p_values: bool = Field(
        False,
        description="Also fail covariate_shift/prior_shift when a corrected p-value is below alpha. Useful "
        "when comparing two real snapshots; off by default because with thousands of rows every synthetic "
        "table differs significantly.",
    )
    prior_tv_max: float = Field(
        0.1, ge=0, le=1,
        description="Total variation distance between the target's real and synthetic marginals (numeric "
        "targets binned at real deciles). 0.1 allows a 10-point swing in a class share; a flipped 60/40 "
        "balance scores 0.2.",
    )
    concept_ratio_min: float = Field(
        0.5, ge=0,
        description="Skill of a model trained on synthetic rows relative to one trained on real rows, both "
        "scored on real rows: (TSTR - chance) / (TRTR - chance), with chance 0.5 for AUC, 1/k for balanced "
        "accuracy and 0 for R^2. A permuted target scores ~0; 0.5 asks the synthetic table to keep at "
        "least half of the learnable signal.",
    )
    concept_min_real_skill: float = Field(
        0.02, ge=0,
        description="Below this real-vs-chance skill the target is unpredictable even from real data, and "
        "concept_shift is reported as not applicable.",
    )
    cv_folds: int = Field(5, ge=2, le=20, description="Folds of every cross-validation.")
    # --- privacy ------------------------------------------------------------------------------
    exact_copy_max: float = Field(
        0.001, ge=0, le=1,
        description="Allowed excess of the share of synthetic rows identical to a training row over the "
        "natural rate (holdout rows identical to a training row, or with no holdout the training rows "
        "that have a duplicate), plus the one-sided sampling error of both rates at alpha. Tables of "
        "few discrete columns repeat rows naturally (13% of ACS rows do), so the gate is on the excess; "
        "on continuous tables the natural rate is 0 and the gate is 0.1% copies.",
    )
    dcr_ratio_min: float = Field(
        0.8, ge=0,
        description="Mean distance to closest training record of synthetic rows over that of holdout rows "
        "(standardised encoding). Fresh real data scores ~1; copies pull it towards 0.",
    )
    membership_auc_max: float = Field(
        0.6, ge=0.5, le=1,
        description="AUC of a distance-based membership-inference attack (training vs holdout rows, scored "
        "by closeness to the synthetic set). 0.5 means the synthetic table reveals nothing about who "
        "was in training.",
    )
    rare_value_min_count: int = Field(
        5, ge=1,
        description="A categorical value held by fewer training rows than this is rare: it points at those "
        "rows' people. 5 is the generators' own min_category_count, which a pipeline run passes on.",
    )
    rare_value_max_share: float = Field(
        0.0, ge=0, le=1,
        description="Allowed share of synthetic rows carrying a rare training value (privacy_rare_values). 0: "
        "synthpipe's generators never emit one freely, so any is a broken promise. Holdout rows carry such "
        "values naturally and are reported beside it, not gated on.",
    )
    privacy_max_rows: int = Field(
        5_000, ge=100,
        description="Rows of each table used for nearest-neighbour distances (exact copies always use all rows).",
    )
    # --- expectations -------------------------------------------------------------------------
    expectations_min: float = Field(
        1.0, ge=0, le=1,
        description="Share of expectations the synthetic table must meet. 1.0: every one (out-of-range "
        "values and unknown categories are hard errors).",
    )
    null_tolerance: float = Field(
        0.1, ge=0, le=1, description="Allowed absolute difference of a nullable column's null fraction."
    )
    mean_band_sd: float = Field(
        0.5, gt=0, description="A numeric column's synthetic mean must lie within this many real standard "
        "deviations of the real mean.",
    )
    expectations_suite: Path | None = Field(
        None, description="A user-edited suite (JSON, as written to expectations.json) used instead of profiling "
        "the source (the CLI's --expectations FILE).",
    )
    out_dir: Path | None = Field(
        None, description="Where expectations.json and the GX Data Docs are written (None: not written)."
    )
    # --- general ------------------------------------------------------------------------------
    bootstrap_reps: int = Field(
        200, ge=0, description="Bootstrap replicates of every confidence interval (0 disables intervals)."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Coverage of the percentile intervals.")
    max_rows: int = Field(
        20_000, ge=100,
        description="Rows of each table used by the model-based and sdmetrics checks; larger tables are "
        "subsampled uniformly (seeded) and each check reports the rows it used.",
    )
    stream_batch_rows: int = Field(
        200_000, ge=1_000,
        description="Rows per batch when the full-coverage checks stream the synthetic dataset directory; "
        "memory is about one batch, whatever the output's size. Each batch costs GX a fixed ~0.5 s on top "
        "of ~3 s per million rows, so much smaller batches are slower.",
    )
    max_plot_columns: int = Field(24, ge=0, description="Per-column distribution plots in the report.")
    high_cardinality: int = Field(
        100, ge=2, description="Categorical columns with more categories are left out of sdmetrics' pair trends."
    )
    target: str | None = Field(None, description="Target column for prior_shift and concept_shift.")
    checks: list[str] | None = Field(None, description="Checks to run; None runs every check that applies.")
    threads: int | None = Field(
        1, ge=1,
        description="OpenMP/BLAS threads for the checks' models and neighbour searches. 1 by default: the "
        "models are small, and OpenMP under oversubscription (a shared machine, Prefect's thread pool) can "
        "run 20x slower than one thread. None leaves the libraries' defaults.",
    )
    seed: int = 0

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        from synthpipe.validators.suite import check_names  # the suite's table names the checks

        known = check_names()
        unknown = [c for c in value if c not in known]
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; choose from {list(known)}")
        return value

    def wants(self, check: str) -> bool:
        return self.checks is None or check in self.checks
