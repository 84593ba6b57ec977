"""The validation suite: a table of checks and the one loop that runs them.

Each row of `CHECKS` says what a check needs (a holdout, a target, a likelihood), where its
default threshold lives in `ValidationConfig`, which report section shows it, and how many
rows it looks at (`coverage`): "sample" checks fit models on bounded, seeded samples of each
table; "all" checks see every row of the tables in memory; "stream" checks see every emitted
row, streamed from the synthetic dataset directory when one is given. Adding a check is adding
a row; the runner, the report and the verdict need no change.

The check functions stay plain functions of tables (`fidelity.quality_check`,
`privacy.exact_copies`, ...), so benchmarks or notebooks can call one directly without the
suite.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthpipe.generators.errors import ConfigError, DataError, SynthpipeError
from synthpipe.generators.schema import ColumnSchema, TableSchema, infer_schema
from synthpipe.validators.base import NEEDS_HOLDOUT, CheckResult, not_applicable
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.encoding import compared_columns, subsample


@dataclass
class Inputs:
    """Everything a check may use, prepared once: the full tables, their bounded samples, the
    compared columns and the synthetic dataset directory (None: the frame is the whole output)."""

    real: pd.DataFrame
    synthetic: pd.DataFrame
    holdout: pd.DataFrame | None
    real_s: pd.DataFrame
    syn_s: pd.DataFrame
    hold_s: pd.DataFrame | None
    schema: TableSchema
    columns: list[ColumnSchema]
    features: list[ColumnSchema]
    target: ColumnSchema | None
    config: ValidationConfig
    likelihood: dict | None
    synthetic_path: Path | None


@dataclass(frozen=True)
class Check:
    """One row of the suite."""

    name: str
    run: Callable[[Inputs], CheckResult | list[CheckResult]]
    section: str  # the report heading it is shown under
    threshold: str | None  # the ValidationConfig field holding its default threshold
    direction: str  # "higher" or "lower" scores are better
    coverage: str = "sample"  # "sample", "all" (every row in memory) or "stream" (every emitted row)
    needs_holdout: bool = False
    needs_target: bool = False
    needs_likelihood: bool = False
    also: tuple[tuple[str, str | None, str], ...] = ()  # further results of one run: (name, threshold, direction)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *(name for name, _, _ in self.also))

    @property
    def gates(self) -> dict[str, tuple[str | None, str]]:
        """name -> (threshold field, direction) of every result the check returns."""
        return {self.name: (self.threshold, self.direction), **{n: (t, d) for n, t, d in self.also}}


def _calls(module: str, function: str, *fields: str) -> Callable[[Inputs], CheckResult | list[CheckResult]]:
    """A check's runner: `synthpipe.validators.<module>.<function>` applied to these `Inputs` fields.
    The module is imported when the check runs, so building the table (and ValidationConfig's
    check of names) loads none of sdmetrics, sklearn or GX."""

    def run(x: Inputs) -> CheckResult | list[CheckResult]:
        check = getattr(importlib.import_module(f"synthpipe.validators.{module}"), function)
        return check(*(getattr(x, field) for field in fields))

    run.__qualname__ = f"{module}.{function}"
    return run


_SAMPLES = ("real_s", "syn_s")
_TABLES = ("real", "synthetic")

CHECKS: tuple[Check, ...] = (
    Check("quality", _calls("fidelity", "quality_check", *_SAMPLES, "schema", "config"),
          "Fidelity", "quality_min", "higher"),
    Check("diagnostic", _calls("fidelity", "diagnostic_check", *_SAMPLES, "schema", "config"),
          "Fidelity", "diagnostic_min", "higher"),
    Check("holdout_log_likelihood", _calls("fidelity", "likelihood_check", "likelihood", "config"),
          "Held-out likelihood", None, "higher", needs_likelihood=True),
    Check("covariate_shift", _calls("shift", "covariate_shift", *_SAMPLES, "columns", "config"),
          "Dataset shift", "covariate_auc_max", "lower"),
    Check("prior_shift", _calls("shift", "prior_shift", *_SAMPLES, "target", "config"),
          "Dataset shift", "prior_tv_max", "lower", needs_target=True),
    Check("concept_shift", _calls("shift", "concept_shift", *_SAMPLES, "target", "features", "config", "hold_s"),
          "Dataset shift", "concept_ratio_min", "higher", needs_target=True),
    Check("privacy_exact_copies", _calls("privacy", "exact_copies", *_TABLES, "columns", "config", "holdout"),
          "Privacy", "exact_copy_max", "lower", coverage="all"),
    Check("privacy_dcr", _calls("privacy", "distance_checks", *_TABLES, "columns", "config", "holdout"),
          "Privacy", "dcr_ratio_min", "higher", needs_holdout=True,
          also=(("privacy_membership", "membership_auc_max", "lower"),)),
    Check("privacy_rare_values",
          _calls("rare_values", "rare_values_check", *_TABLES, "columns", "config", "holdout", "synthetic_path"),
          "Privacy", "rare_value_max_share", "lower", coverage="stream"),
    Check("expectations",
          _calls("expectations", "expectations_check", *_TABLES, "schema", "config", "holdout", "synthetic_path"),
          "Expectations", "expectations_min", "higher", coverage="stream"),
)



def check_names() -> tuple[str, ...]:
    """The names ValidationConfig.checks accepts: every check but the likelihood (which runs
    whenever the generator gives one)."""
    return tuple(n for c in CHECKS if not c.needs_likelihood for n in c.names)


ALL_CHECKS: tuple[str, ...] = check_names()
SECTIONS: dict[str, str] = {n: c.section for c in CHECKS for n in c.names}
THRESHOLDS: dict[str, tuple[str | None, str]] = {n: g for c in CHECKS for n, g in c.gates.items()}


def check_config(config: ValidationConfig | dict | None, target: str | None = None) -> ValidationConfig:
    """The validated settings (a dict is checked, with an error naming the bad field)."""
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


def run_suite(inputs: Inputs) -> list[CheckResult]:
    """Run every row of `CHECKS` that the configuration wants and the inputs (`prepare`) allow."""
    config, holdout, likelihood = inputs.config, inputs.holdout, inputs.likelihood
    results: list[CheckResult] = []
    for check in CHECKS:
        wanted = [n for n in check.names if config.wants(n)] if not check.needs_likelihood else list(check.names)
        if not wanted or (check.needs_likelihood and likelihood is None):
            continue
        if check.needs_holdout and holdout is None:
            found = [_not_applicable(n, NEEDS_HOLDOUT, config) for n in check.names]
        else:
            found = guarded(check.name, lambda check=check: check.run(inputs))
        for result in found:
            if result.name in wanted:
                _record_rows(result, check, inputs)
                results.append(result)
    _attach_overview_figures(results, inputs)
    return results


def _not_applicable(name: str, reason: str, config: ValidationConfig) -> CheckResult:
    field, direction = THRESHOLDS[name]
    return not_applicable(name, reason, direction, getattr(config, field) if field else None)


def prepare(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema | None,
    holdout: pd.DataFrame | None,
    config: ValidationConfig,
    likelihood: dict | None = None,
    synthetic_path: Path | None = None,
) -> Inputs:
    """Check the tables and the target, and draw the bounded samples (seeded) once for every check."""
    for label, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if frame is not None and len(frame) == 0:
            raise DataError(f"the {label} table has no rows; nothing to validate")
    schema = schema or infer_schema(real)
    target = None
    if config.target is not None:
        missing = [label for label, f in (("real", real), ("synthetic", synthetic)) if config.target not in f.columns]
        if config.target not in schema or missing:
            where = f"the {' and '.join(missing)} table" if missing else "the schema"
            raise ConfigError(f"target column {config.target!r} is not in {where}; columns are {list(map(str, real.columns))}")
        target = schema[config.target]
    rng = np.random.default_rng(config.seed)
    real_s = subsample(real, config.max_rows, rng)
    syn_s = subsample(synthetic, config.max_rows, rng)
    hold_s = subsample(holdout, config.max_rows, rng)
    columns = compared_columns(schema, real, synthetic)
    features = [c for c in columns if target is None or c.name != target.name]
    return Inputs(real=real, synthetic=synthetic, holdout=holdout, real_s=real_s, syn_s=syn_s, hold_s=hold_s,
                  schema=schema, columns=columns, features=features, target=target, config=config,
                  likelihood=likelihood, synthetic_path=None if synthetic_path is None else Path(synthetic_path))


def _record_rows(result: CheckResult, check: Check, x: Inputs) -> None:
    """`rows_seen`: the synthetic rows the check looked at (a streaming check sets its own);
    sampled checks also say which share of each table they used."""
    if check.needs_likelihood:
        result.extra.setdefault("rows_seen", None)
        return
    if check.coverage == "sample":
        rows_used = {"real": [len(x.real_s), len(x.real)], "synthetic": [len(x.syn_s), len(x.synthetic)]}
        if x.holdout is not None:
            rows_used["holdout"] = [len(x.hold_s), len(x.holdout)]
        result.extra.setdefault("rows_used", rows_used)
        result.extra.setdefault("subsampled", any(u < t for u, t in rows_used.values()))
        result.extra.setdefault("rows_seen", len(x.syn_s))
    else:
        result.extra.setdefault("rows_seen", len(x.synthetic))
    result.extra.setdefault("coverage", check.coverage)


def guarded(name: str, fn: Callable[[], CheckResult | list[CheckResult]]) -> list[CheckResult]:
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


def _attach_overview_figures(results: list[CheckResult], x: Inputs) -> None:
    """Per-column overlays and the association-difference matrix go with the fidelity check
    (or the covariate-shift check when fidelity did not run): report.py draws them."""
    host = next((r for r in results if r.name == "quality" and r.details is not None), None)
    host = host or next((r for r in results if r.name == "covariate_shift" and r.details is not None), None)
    if host is None or not x.columns:
        return
    from synthpipe.validators.figures import correlation_difference, distribution_overlays

    if host.name == "quality":
        shapes = host.details[host.details["property"] == "column shape"]
        scores = dict(zip(shapes["column"], shapes["score"]))
    else:
        scores = {c: -p for c, p in zip(host.details["column"], host.details["psi"])}
    host.figures.append(distribution_overlays(x.real_s, x.syn_s, x.columns, scores, x.config.max_plot_columns))
    if len(x.columns) > 1:
        host.figures.append(correlation_difference(x.real_s, x.syn_s, x.columns, seed=x.config.seed))
