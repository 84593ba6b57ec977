"""The checks that decide whether a synthetic table is fit to publish (and that compare any two tables).

`run_validation` runs every applicable check of the suite (`suite.CHECKS`) and returns their
`CheckResult`s; `report.write_report` turns them into report.json and a self-contained
report.html. Nothing here imports Prefect or a generator: any two tables can be validated.
Heavy libraries (sdmetrics, scikit-learn, great expectations, matplotlib) are imported inside
the functions that use them. Single checks can be called directly as plain functions of tables
(`fidelity.quality_check`, `shift.covariate_shift`, `privacy.exact_copies`,
`privacy.distance_checks`, `expectations.run_expectations`), e.g. from benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import TableSchema
from synthpipe.validators.base import CheckResult, Verdict, verdict
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.suite import ALL_CHECKS, CHECKS, Check, check_config, prepare, run_suite

__all__ = ["ALL_CHECKS", "CHECKS", "Check", "CheckResult", "ValidationConfig", "Verdict", "checks_passed",
           "run_check", "run_validation", "verdict"]


def run_validation(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema | None = None,
    *,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    config: ValidationConfig | dict | None = None,
    likelihood: dict | None = None,
    synthetic_path: str | Path | None = None,
) -> list[CheckResult]:
    """Every applicable check of `synthetic` against `real` (the training table).

    `holdout` holds real rows the generator never saw (needed by privacy_dcr and
    privacy_membership, and the fairer test set of concept_shift). `target` (or config.target)
    enables prior_shift and concept_shift. `likelihood`, when the generator has one, is
    ``{"kind": "exact"|"bound", "per_row": array of held-out nats, "n_columns": int,
    "per_column": dict | None}`` and adds the ungated check `holdout_log_likelihood`.
    `synthetic_path`, the synthetic Parquet dataset directory (split subdirectories included),
    makes the full-coverage checks (expectations: ranges, nulls, categories, types, moments)
    stream every emitted row in bounded memory; `synthetic` is then a bounded sample of it.
    Model-based checks use at most `config.max_rows` rows per table (uniform, seeded). Every
    result says how many synthetic rows it saw in `extra["rows_seen"]`.
    """
    config = check_config(config, target)
    return run_suite(prepare(real, synthetic, schema, holdout, config, likelihood, synthetic_path))


def run_check(name: str, real: pd.DataFrame, synthetic: pd.DataFrame, *args: Any, **options: Any) -> CheckResult:
    """One check of the suite by name, prepared exactly as in a run (other arguments as for
    `run_validation`): the call for benchmarks and notebooks. `run_check("covariate_shift",
    real, syn).score` is the classifier two-sample AUC, "privacy_dcr" with a holdout the DCR
    ratio, "privacy_exact_copies" the copy rate."""
    if name not in ALL_CHECKS:
        raise ConfigError(f"unknown check {name!r}; choose from {list(ALL_CHECKS)}")
    config = check_config(options.pop("config", None)).model_copy(update={"checks": [name]})
    return next(r for r in run_validation(real, synthetic, *args, config=config, **options) if r.name == name)


def checks_passed(results: list[CheckResult]) -> bool:
    """True when every gated check passed (checks that do not apply, passed=None, never fail a run)."""
    return verdict(results).passed
