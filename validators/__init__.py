"""The checks that decide whether a synthetic table is fit to publish (and that compare any two tables).

`run_validation` runs every applicable check and returns their `CheckResult`s; `report.write_report`
turns them into report.json and a self-contained report.html. Nothing here imports Prefect or a
generator: any two tables can be validated. Heavy libraries (sdmetrics, scikit-learn, great
expectations, matplotlib) are imported inside the functions that use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from synthpipe.generators.errors import ConfigError, DataError, SynthpipeError
from synthpipe.generators.schema import TableSchema, infer_schema
from synthpipe.validators.base import CheckResult
from synthpipe.validators.config import ALL_CHECKS, ValidationConfig
from synthpipe.validators.encoding import compared_columns, subsample

__all__ = ["ALL_CHECKS", "CheckResult", "ValidationConfig", "checks_passed", "run_validation"]


def _config(config: ValidationConfig | dict | None, target: str | None) -> ValidationConfig:
    if config is None:
        config = ValidationConfig()
    elif isinstance(config, dict):
        try:
            config = ValidationConfig.model_validate(config)
        except Exception as exc:
            raise ConfigError(f"invalid validation settings: {exc}") from None
    if target is not None:
        config = config.model_copy(update={"target": target})
    return config


def _guarded(name: str, fn: Callable[[], CheckResult | list[CheckResult]]) -> list[CheckResult]:
    """Run one check; a crash becomes a failed check naming the error, so the report still appears."""
    start = time.perf_counter()
    try:
        out = fn()
    except SynthpipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported in the result, never swallowed silently
        out = CheckResult(name=name, score=float("nan"), threshold=None, passed=False,
                          summary=f"error: the check crashed with {type(exc).__name__}: {exc}",
                          extra={"error": f"{type(exc).__name__}: {exc}"})
    results = out if isinstance(out, list) else [out]
    elapsed = time.perf_counter() - start
    for r in results:
        r.extra.setdefault("seconds", round(elapsed / len(results), 3))
    return results


def run_validation(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema | None = None,
    *,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    config: ValidationConfig | dict | None = None,
    likelihood: dict | None = None,
) -> list[CheckResult]:
    """Every applicable check of `synthetic` against `real` (the training table).

    `holdout` holds real rows the generator never saw (needed by privacy_dcr and
    privacy_membership, and the fairer test set of concept_shift). `target` (or config.target)
    enables prior_shift and concept_shift. `likelihood`, when the generator has one, is
    ``{"kind": "exact"|"bound", "per_row": array of held-out nats, "n_columns": int,
    "per_column": dict | None}`` and adds the ungated check `holdout_log_likelihood`.
    Model-based checks use at most `config.max_rows` rows per table (uniform, seeded) and say
    so in `extra["rows_used"]`; exact copies and expectations always see every row.
    """
    config = _config(config, target)
    return _run(real, synthetic, schema, holdout, config, likelihood)


def _run(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema | None,
    holdout: pd.DataFrame | None,
    config: ValidationConfig,
    likelihood: dict | None,
) -> list[CheckResult]:
    for label, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if frame is not None and len(frame) == 0:
            raise DataError(f"the {label} table has no rows; nothing to validate")
    schema = schema or infer_schema(real)
    target_column = None
    if config.target is not None:
        missing = [label for label, f in (("real", real), ("synthetic", synthetic)) if config.target not in f.columns]
        if config.target not in schema or missing:
            where = f"the {' and '.join(missing)} table" if missing else "the schema"
            raise ConfigError(f"target column {config.target!r} is not in {where}; columns are {list(map(str, real.columns))}")
        target_column = schema[config.target]

    rng = np.random.default_rng(config.seed)
    real_s = subsample(real, config.max_rows, rng)
    syn_s = subsample(synthetic, config.max_rows, rng)
    hold_s = subsample(holdout, config.max_rows, rng)
    rows_used = {"real": [len(real_s), len(real)], "synthetic": [len(syn_s), len(synthetic)]}
    if holdout is not None:
        rows_used["holdout"] = [len(hold_s), len(holdout)]
    subsampled = any(used < total for used, total in rows_used.values())
    columns = compared_columns(schema, real, synthetic)
    features = [c for c in columns if target_column is None or c.name != target_column.name]

    results: list[CheckResult] = []
    if config.wants("quality"):
        from synthpipe.validators.fidelity import quality_check

        results += _guarded("quality", lambda: quality_check(real_s, syn_s, schema, config))
    if config.wants("diagnostic"):
        from synthpipe.validators.fidelity import diagnostic_check

        results += _guarded("diagnostic", lambda: diagnostic_check(real_s, syn_s, schema, config))
    if likelihood is not None:
        from synthpipe.validators.fidelity import likelihood_check

        results += _guarded("holdout_log_likelihood", lambda: likelihood_check(likelihood, config))
    if config.wants("covariate_shift"):
        from synthpipe.validators.shift import covariate_shift

        results += _guarded("covariate_shift", lambda: covariate_shift(real_s, syn_s, columns, config))
    if config.wants("prior_shift"):
        from synthpipe.validators.shift import prior_shift

        results += _guarded("prior_shift", lambda: prior_shift(real_s, syn_s, target_column, config))
    if config.wants("concept_shift"):
        from synthpipe.validators.shift import concept_shift

        results += _guarded("concept_shift",
                            lambda: concept_shift(real_s, syn_s, target_column, features, config, hold_s))
    if config.wants("privacy_exact_copies"):
        from synthpipe.validators.privacy import exact_copies

        results += _guarded("privacy_exact_copies", lambda: exact_copies(real, synthetic, columns, config, holdout))
    if config.wants("privacy_dcr") or config.wants("privacy_membership"):
        from synthpipe.validators.privacy import distance_checks

        pair = _guarded("privacy_dcr", lambda: distance_checks(real, synthetic, columns, config, holdout))
        results += [r for r in pair if config.wants(r.name)]
    if config.wants("expectations"):
        results += _guarded("expectations", lambda: _expectations(real, synthetic, schema, config, holdout))

    for r in results:
        if r.name not in ("privacy_exact_copies", "expectations", "holdout_log_likelihood"):
            r.extra.setdefault("rows_used", rows_used)
            r.extra.setdefault("subsampled", subsampled)
    _attach_overview_figures(results, real_s, syn_s, columns, config)
    return results


def _expectations(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    config: ValidationConfig,
    holdout: pd.DataFrame | None = None,
) -> CheckResult:
    """Profile the suite from the whole source (training + holdout rows): its ranges and category
    sets are the source's, the same bounds the generator's schema was inferred with."""
    from synthpipe.validators.expectations import (
        build_suite,
        load_suite,
        run_expectations,
        save_suite,
        suite_json,
    )

    source = pd.concat([real, holdout], ignore_index=True) if holdout is not None else real
    suite = load_suite(config.expectations_suite) if config.expectations_suite else build_suite(source, schema, config)
    if config.out_dir is not None:
        save_suite(suite, config.out_dir / "expectations.json")
    result = run_expectations(synthetic, suite, config.out_dir, config)
    result.extra["suite"] = str(config.expectations_suite) if config.expectations_suite else "profiled from the source table"
    # write_report saves the suite next to the report even when no out_dir was configured
    result.extra["_files"] = {"expectations.json": suite_json(suite)}
    return result


def _attach_overview_figures(
    results: list[CheckResult], real: pd.DataFrame, synthetic: pd.DataFrame, columns: list, config: ValidationConfig
) -> None:
    """Per-column overlays and the association-difference matrix go with the fidelity check
    (or the covariate-shift check when fidelity did not run): report.py draws them."""
    host = next((r for r in results if r.name == "quality" and r.details is not None), None)
    host = host or next((r for r in results if r.name == "covariate_shift" and r.details is not None), None)
    if host is None or not columns:
        return
    from synthpipe.validators.figures import correlation_difference, distribution_overlays

    scores: dict[str, float] = {}
    if host.name == "quality":
        shapes = host.details[host.details["property"] == "column shape"]
        scores = dict(zip(shapes["column"], shapes["score"]))
    else:
        scores = {c: -p for c, p in zip(host.details["column"], host.details["psi"])}
    host.figures.append(distribution_overlays(real, synthetic, columns, scores, config.max_plot_columns))
    if len(columns) > 1:
        host.figures.append(correlation_difference(real, synthetic, columns, seed=config.seed))


def checks_passed(results: list[CheckResult]) -> bool:
    """True when every gated check passed (checks that do not apply, passed=None, never fail a run)."""
    return all(r.passed for r in results if r.passed is not None)
