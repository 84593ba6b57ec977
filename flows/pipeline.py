"""The pipeline as a Prefect flow: ingest -> schema -> split -> train -> sample+write -> validate -> report.

Tasks are thin and named after what they do; the logic lives in `generators/`, `validators/` and
`flows/io.py`. Everything is written into a staging directory that replaces the output directory
only when the whole run succeeded, so a failed run never leaves partial output and never removes
the last good one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

import synthpipe
from synthpipe.flows.conditions import coerce_conditions
from synthpipe.flows.config import RunConfig
from synthpipe.flows.io import atomic_directory, write_parquet
from synthpipe.flows.io.scan import infinite_policies, scan_source
from synthpipe.flows.logs import one_line_user_errors
from synthpipe.flows.runners import describe as describe_runner
from synthpipe.flows.stages import reached
from synthpipe.generators import get_generator_class
from synthpipe.generators.base import BaseGenerator
from synthpipe.generators.errors import SynthpipeError
from synthpipe.generators.profile import TableProfile
from synthpipe.generators.schema import TableSchema, infer_schema
from synthpipe.generators.seeding import SeedStream
from synthpipe.generators.splits import split_rows
from synthpipe.validators.config import SYNTHETIC_SAMPLE_ROWS

one_line_user_errors()  # a SynthpipeError in a task is one line in the run's logs, no traceback

VALIDATION_ROWS = SYNTHETIC_SAMPLE_ROWS  # rows of the emitted table kept in memory for validation


def _retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient failures (a flaky network share, a database restart), not bad input:
    a missing table or a ragged file will not fix itself, and SQL reads retry their connection."""
    try:
        state.result()
    except SynthpipeError:
        return False
    except Exception:
        return True
    return False


@task(name="ingest", retries=2, retry_delay_seconds=2, retry_condition_fn=_retry_unless_user_error, cache_policy=NO_CACHE)
def ingest(cfg: RunConfig) -> tuple[pd.DataFrame, pd.DataFrame, TableProfile, dict[str, Any]]:
    """One pass over the source: (train rows, holdout rows, whole-table profile, provenance).

    The frames are indexed by source row position; a source of at most max_train_rows /
    (1 - holdout_fraction) rows is read whole and split as `split_holdout` splits it.
    """
    reached("ingest")
    result = scan_source(
        cfg.source.path, **cfg.source.model_dump(exclude={"path"}), max_train_rows=cfg.max_train_rows, holdout_fraction=cfg.holdout_fraction, seed=cfg.seed,
        on_infinite=infinite_policies(cfg.schema_overrides),
    )
    return result.train, result.holdout, result.profile, result.provenance.to_dict()


@task(name="infer-schema", cache_policy=NO_CACHE)
def build_schema(
    df: pd.DataFrame, overrides: dict[str, dict[str, Any]], profile: TableProfile | None = None
) -> TableSchema:
    """Kinds from the sample `df`; null rates, bounds and categories from the whole-table profile."""
    return infer_schema(df, overrides, profile)


@task(name="split-holdout", cache_policy=NO_CACHE)
def split_holdout(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows the generator never sees, for privacy, concept-shift and held-out likelihood checks
    (the split ingest applies to a table it holds whole; stream SeedStream.HOLDOUT_SPLIT)."""
    return split_rows(df, fraction, seed, SeedStream.HOLDOUT_SPLIT)


@task(name="train", cache_policy=NO_CACHE)
def train(train_df: pd.DataFrame, schema: TableSchema, cfg: RunConfig, checkpoint_dir: Path) -> BaseGenerator:
    params = {"checkpoint_dir": str(checkpoint_dir), **cfg.generator_params()}
    model = get_generator_class(cfg.generator)(**params)
    return model.fit(train_df, schema, resume=cfg.resume)


@task(name="sample-and-write", cache_policy=NO_CACHE)
def sample_and_write(
    model_dir: Path,
    cfg: RunConfig,
    rows: int,
    conditions: dict[str, Any] | pd.DataFrame | None,
    out_dir: Path,
    metadata: dict,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Write the synthetic dataset (one per split with `split`) as shards on the configured task
    runner (flows/emit.py, flows/runners.py); return a summary and a bounded preview read back
    from the written parts for validation.

    `conditions` is one mapping for every row, or a frame with one row of conditions per emitted
    row (stored in the staging directory; each shard reads its slice). Split k's rows are the
    stream of derive_seed(seed, EMIT_SPLIT, k), so every runner writes the same rows.
    """
    from synthpipe.flows.emit import emit_shards, merge_stats, read_preview, store_conditions
    from synthpipe.flows.exports import split_sizes
    from synthpipe.flows.runners import task_runner_for

    reached("sample")
    parts = split_sizes(rows, cfg.split) if cfg.split else {None: rows}
    datasets, offset = [], 0
    for name, size in parts.items():
        datasets.append({  # each split is the next slice of the one stream of cfg.seed (IDs never repeat)
            "directory": str(out_dir / name if name else out_dir), "rows": size, "seed": cfg.seed,
            "metadata": {**metadata, "split": name, "rows": size}, "condition_start": offset, "row_start": offset,
        })
        offset += size
    per_row = isinstance(conditions, pd.DataFrame)
    conditions_path = store_conditions(conditions, out_dir.parent) if per_row else None
    try:
        results = emit_shards.with_options(task_runner=task_runner_for(cfg.runner))(
            str(model_dir), datasets, conditions=None if per_row else conditions, conditions_path=conditions_path,
            shard_rows=cfg.runner.shard_rows, chunk_rows=cfg.chunk_rows, device=cfg.device,
        )
    finally:
        if conditions_path:
            Path(conditions_path).unlink(missing_ok=True)
    written: dict[str, Any] = {
        "rows": sum(r["rows"] for r in results), "files": sum(r["files"] for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "splits": {name: r["rows"] for name, r in zip(parts, results) if name},
        "columns": merge_stats([r["columns"] for r in results]),
        "shards": [shard for r in results for shard in r["shards"]],
    }
    return written, read_preview([d["directory"] for d in datasets], VALIDATION_ROWS)


@task(name="write-augmented", cache_policy=NO_CACHE)
def write_augmented(real: pd.DataFrame, synthetic_dir: Path, out_dir: Path, metadata: dict) -> int:
    """Real training rows plus the synthetic rows, with a provenance column, chunk by chunk."""
    import pyarrow.dataset as ds

    from synthpipe.flows.exports import augment

    def chunks() -> Iterator[pd.DataFrame]:
        first = True
        for batch in ds.dataset(synthetic_dir, format="parquet").to_batches():
            yield augment(real if first else real.iloc[:0], batch.to_pandas())
            first = False

    return write_parquet(out_dir, chunks(), metadata={**metadata, "augmented": True}).rows


@task(name="validate", cache_policy=NO_CACHE)
def validate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    holdout: pd.DataFrame | None,
    cfg: RunConfig,
    likelihood: dict[str, Any] | None,
    out_dir: Path,
    synthetic_dir: Path | None = None,
) -> list:
    """Model-based checks on the bounded `synthetic` sample; with `synthetic_dir` (the written
    dataset) the full-coverage checks stream every emitted row."""
    from synthpipe.validators import run_validation

    reached("validate")
    checks_cfg = {"out_dir": str(out_dir), **cfg.checks}  # GX Data Docs go next to the report
    if "min_category_count" in cfg.params:  # hold the generator to the rarity it was asked to protect
        checks_cfg.setdefault("rare_value_min_count", cfg.params["min_category_count"])
    if cfg.expectations:
        checks_cfg.setdefault("expectations_suite", cfg.expectations)
    return run_validation(
        real,
        synthetic,
        schema,
        holdout=holdout if holdout is not None and len(holdout) else None,
        target=cfg.target,
        config=checks_cfg,
        likelihood=likelihood,
        synthetic_path=synthetic_dir,
    )


@task(name="held-out-likelihood", cache_policy=NO_CACHE)
def held_out_likelihood(model: BaseGenerator, holdout: pd.DataFrame) -> dict[str, Any] | None:
    if model.likelihood_kind is None or len(holdout) == 0:
        return None
    per_row = model.log_likelihood(holdout)
    if per_row is None:
        return None
    per_column = None
    if hasattr(model, "log_likelihood_by_column"):
        per_column = model.log_likelihood_by_column(holdout).mean().to_dict()
    return {
        "kind": model.likelihood_kind,
        "per_row": np.asarray(per_row),
        "n_columns": len(model.schema_.columns),
        "per_column": per_column,
    }


@task(name="report", cache_policy=NO_CACHE)
def report(out_dir: Path, checks: list, run_info: dict[str, Any], history: dict | None) -> dict[str, Any]:
    from prefect.artifacts import create_markdown_artifact

    from synthpipe.validators.report import markdown_summary, write_report

    result = write_report(out_dir, checks, run_info, history)
    create_markdown_artifact(markdown_summary(result), key="synthpipe-report", description="synthpipe run summary")
    return result


@contextmanager
def _timer(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = round(time.perf_counter() - start, 3)


@contextmanager
def output_target(cfg: RunConfig) -> Iterator[Path]:
    """The directory a run writes into, locked against concurrent runs on the same output.

    Versioned: `out/runs/<run-id>/`, then `out/latest` is moved to it atomically (a failed run
    leaves `latest` on the last good run). Otherwise: a staging directory swapped into `out`.
    """
    from synthpipe.flows.outputs import file_lock, versioned_run

    out = cfg.out_path
    if cfg.versioned:
        with versioned_run(out, keep=cfg.keep_runs) as run_dir:
            yield run_dir
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.parent / f".{out.name}.lock"), atomic_directory(out) as stage:
        yield stage


@task(name="reuse-or-train", cache_policy=NO_CACHE)
def reuse_or_train(
    df: pd.DataFrame, train_df: pd.DataFrame, schema: TableSchema, cfg: RunConfig, provenance: dict, checkpoint_dir: Path,
    profile: TableProfile | None = None,
) -> tuple[BaseGenerator, dict[str, Any]]:
    """With a registry: reuse the registered model when the source (its whole-table `profile`,
    the sample `df`) has not shifted."""
    if not cfg.registry:
        return train.fn(train_df, schema, cfg, checkpoint_dir), {
            "reused": False, "reason": "no registry configured", "id": None
        }
    from synthpipe.flows.registry import ModelRegistry

    registry = ModelRegistry(cfg.registry)
    entry = registry.lookup(registry_key(cfg))
    reused, reason = registry.decide_reuse(entry, df, fingerprint=provenance.get("content_hash"), profile=profile)
    if reused:
        model = BaseGenerator.load(entry.model_dir, device=cfg.device)
        return model, {"reused": True, "reason": reason, "id": entry.id}
    return train.fn(train_df, schema, cfg, checkpoint_dir), {"reused": False, "reason": reason, "id": None}


def registry_key(cfg: RunConfig) -> str:
    from synthpipe.flows.registry import make_config_key
    from synthpipe.flows.sql import mask_url

    params = {k: v for k, v in cfg.generator_params().items() if k not in ("progress", "device")}
    return make_config_key({
        "source": mask_url(cfg.source.path) if "://" in cfg.source.path else cfg.source.path,
        "table": cfg.source.table,
        "query": cfg.source.query,
        "generator": cfg.generator,
        "params": params,
        "schema": cfg.schema_overrides,
        "holdout_fraction": cfg.holdout_fraction,
        "seed": cfg.seed,
    })


@flow(name="synthpipe-run", log_prints=True)
def synthpipe_run(config: dict[str, Any]) -> dict[str, Any]:
    """Run the whole pipeline for one configuration; returns the report (report.json's content)."""
    cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
    logger = get_run_logger()
    timings: dict[str, float] = {}
    out = cfg.out_path
    checkpoint_dir = out.parent / f".{out.name}.checkpoints"

    with output_target(cfg) as stage:
        with _timer(timings, "ingest_s"):
            train_df, holdout, profile, provenance = ingest(cfg)
        df = pd.concat([train_df, holdout]).sort_index()  # the sample in source order: the whole of a small table
        logger.info("read %s rows x %s columns from %s", profile.rows, df.shape[1], provenance.get("source"))
        schema = build_schema(df, cfg.schema_overrides, profile)
        conditions = plan_conditions(cfg, schema, cfg.rows if cfg.rows is not None else profile.rows)

        with _timer(timings, "fit_s"):
            model, model_info = reuse_or_train(df, train_df, schema, cfg, provenance, checkpoint_dir, profile)
        if not model_info["reused"] and getattr(model, "fit_seconds_", None) is not None:
            # The training loop alone: what time_budget_s bounds (fit_s adds the codec's fit).
            timings["train_loop_s"] = round(float(model.fit_seconds_), 3)
        logger.info("model: %s", model_info["reason"])
        rows = cfg.rows if cfg.rows is not None else profile.rows
        metadata = {
            "synthpipe_version": synthpipe.__version__,
            "generator": cfg.generator,
            "params": {k: v for k, v in model.config.__dict__.items()},
            "seed": cfg.seed,
            "rows": rows,
            "conditions": {k: str(v) for k, v in cfg.conditions.items()},
            "balance": cfg.balance,
            "source": provenance,
        }
        model.save(stage / "model")
        with _timer(timings, "sample_s"):
            written, synthetic = sample_and_write(stage / "model", cfg, rows, conditions, stage / "synthetic", metadata)
            if cfg.augment:
                written["augmented_rows"] = write_augmented(train_df, stage / "synthetic", stage / "augmented", metadata)
        with _timer(timings, "validate_s"):
            likelihood = held_out_likelihood(model, holdout)
            checks = validate(train_df, synthetic, schema, holdout, cfg, likelihood, stage, stage / "synthetic")
        run_info = {
            "synthpipe_version": synthpipe.__version__,
            "generator": cfg.generator,
            "params": metadata["params"],
            "seed": cfg.seed,
            "source": provenance,
            "rows": {"source": profile.rows, "train": len(train_df), "holdout": len(holdout), "synthetic": rows},
            "output": {"directory": str(out), "files": written["files"], "splits": written["splits"] or None,
                       "augmented_rows": written.get("augmented_rows"), "runner": describe_runner(cfg.runner),
                       "shards": len(written["shards"])},
            "conditions": metadata["conditions"],
            "balance": cfg.balance,
            "model": model_info,
            "training": model.training_summary(),
            "timings": timings,
        }
        if cfg.registry and not model_info["reused"]:
            run_info["model"]["id"] = register_model(cfg, stage / "model", df, schema, provenance, checks, timings, profile)
        result = report(stage, checks, run_info, None if model_info["reused"] else model.history_)
    _remove_tree(checkpoint_dir)  # the run succeeded: nothing left to resume
    logger.info("wrote %s synthetic rows to %s; verdict: %s", rows, out, "PASS" if result["passed"] else "FAIL")
    return result


def plan_conditions(cfg: RunConfig, schema: TableSchema, rows: int) -> dict[str, Any] | pd.DataFrame | None:
    """Typed conditions for every row, or a per-row frame that balances `balance`'s classes."""
    if cfg.balance:
        from synthpipe.flows.exports import balanced_conditions

        return balanced_conditions(schema, cfg.balance, rows, cfg.seed)
    return coerce_conditions(cfg.conditions, schema) if cfg.conditions else None


@task(name="register-model", cache_policy=NO_CACHE)
def register_model(
    cfg: RunConfig, model_dir: Path, df: pd.DataFrame, schema: TableSchema, provenance: dict, checks: list,
    timings: dict[str, float], profile: TableProfile | None = None,
) -> str:
    from synthpipe.flows.registry import ModelRegistry

    metrics = {c.name: c.score for c in checks if c.score is not None}
    entry = ModelRegistry(cfg.registry).register(
        model_dir, registry_key(cfg), provenance.get("content_hash", ""), metrics, timings.get("fit_s", 0.0),
        df, schema.to_dict(), seed=cfg.seed, profile=profile,
    )
    return entry.id


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
