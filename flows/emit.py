"""Emission as shards: each shard is a Prefect task that writes one part file of the output.

Why shards: a 100M-row output does not fit one process's memory or one core's time. A shard
loads the saved model from disk (safetensors + JSON: no model object travels to a worker),
samples rows `start .. start + rows` of its dataset's seeded stream (the generator contract is
row-addressable, so the rows do not depend on the shard size, the runner or the worker count),
writes `part-{index:05d}.parquet` into the staging directory and returns its row count and
per-column statistics. Nothing but those statistics comes back to the flow.

The flow maps the shards over the task runner that `flows/runners.py` picks from the config
(in process, a local Dask cluster, an existing one). Every part file of a dataset gets the same
Arrow schema and key-value metadata, fixed once by the flow from the first rows of the stream
with flows/io.py's writer, so the parts read back as one dataset exactly as before. A shard
writes under a hidden temporary name and renames when complete, and the flow waits for every
shard before it reports a failure, so a failed run's staging directory is removed with no
writer still busy in it (see io.atomic_directory: the last good output stays).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from synthpipe.flows.io.atomic import now as _now
from synthpipe.flows.io.frames import arrow_to_pandas as _arrow_to_pandas
from synthpipe.flows.io.parquet import METADATA_KEY, SCHEMA_KEY, SIDECAR, _DatasetWriter, _empty_frame
from synthpipe.flows.stages import reached
from synthpipe.generators.errors import DataError
from synthpipe.generators.schema import ColumnKind
from synthpipe.generators.serialize import dumps

# Rows per shard (one part file each): today's rows per part file, so the layout on disk is
# unchanged; about 1-2 minutes of one core for a wide table, and a few hundred MB at most.
DEFAULT_SHARD_ROWS = 1_000_000
# Distinct values counted per categorical or boolean column and shard; more are summed as "other".
CATEGORY_CAP = 1000
# Rows of the stream's start that fix the Arrow types of every part file (today's writer used
# the first chunk; beyond the first rows only all-null columns can differ, and those take the
# schema's declared type either way).
LAYOUT_PROBE_ROWS = 2048
# Per-row conditions (--balance) travel to shards as a Parquet file in the staging directory,
# never through the scheduler or as flow parameters.
CONDITIONS_FILE = ".emit-conditions.parquet"

_MIN_MAX_KINDS = frozenset({ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME})
_COUNTED_KINDS = frozenset({ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN, ColumnKind.CONSTANT})


@dataclass(frozen=True)
class PartLayout:
    """What every part file of one dataset shares: Arrow schema (with pandas and synthpipe
    metadata), column order, categorical dtypes, and the column kinds the statistics need."""

    arrow_schema: pa.Schema
    columns: tuple[Any, ...]
    categories: dict[Any, pd.CategoricalDtype]
    kinds: dict[str, str]
    metadata_json: str
    schema_json: str


@dataclass(frozen=True)
class Shard:
    """Rows `start .. start + rows` of the stream of `seed`, written to `directory/part-{index}`.

    `condition_start` is the first row of the per-row conditions file that belongs to the shard.
    """

    index: int
    directory: str
    start: int
    rows: int
    seed: int
    condition_start: int = 0

    @property
    def path(self) -> Path:
        return Path(self.directory) / f"part-{self.index:05d}.parquet"


@dataclass
class DatasetPlan:
    """One output dataset (the whole output, or one split of it)."""

    directory: str
    rows: int
    seed: int
    metadata: dict[str, Any]
    condition_start: int = 0
    row_start: int = 0  # first row of the seed's stream: splits are consecutive slices of one stream
    shards: list[Shard] = field(default_factory=list)


def plan_shards(directory: str | os.PathLike[str], rows: int, seed: int, shard_rows: int = DEFAULT_SHARD_ROWS,
                condition_start: int = 0, row_start: int = 0) -> list[Shard]:
    """Cut `rows` into shards of `shard_rows` (the last one shorter); zero rows is one empty shard,
    so the dataset still has a file that carries its schema."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
    starts = range(0, rows, shard_rows) if rows else [0]
    return [
        Shard(i, str(directory), row_start + start, min(shard_rows, rows - start), seed, condition_start + start)
        for i, start in enumerate(starts)
    ]


def part_layout(model: Any, metadata: Mapping[str, Any], rows: int, seed: int,
                conditions: Mapping[str, Any] | pd.DataFrame | None = None) -> PartLayout:
    """Fix the Arrow schema of a dataset's part files the way io.write_parquet does, from the
    first rows of the stream (or the schema's declared dtypes when no row is emitted)."""
    schema = model.schema_.to_dict()
    key_values = {METADATA_KEY: dumps(dict(metadata)).encode(), SCHEMA_KEY: dumps(schema).encode()}
    writer = _DatasetWriter(Path("."), 1, key_values, schema)
    if rows:
        n = min(rows, LAYOUT_PROBE_ROWS)
        cond = conditions.iloc[:n] if isinstance(conditions, pd.DataFrame) else conditions
        probe = model.sample(n, conditions=cond, seed=seed, start_index=0)
    else:
        probe = _empty_frame(list(writer.declared.values()))
    writer._first(probe)
    return PartLayout(
        arrow_schema=writer.arrow_schema,
        columns=tuple(writer.columns),
        categories=dict(writer.categories),
        kinds={c.name: str(c.kind) for c in model.schema_.columns},
        metadata_json=key_values[METADATA_KEY].decode(),
        schema_json=key_values[SCHEMA_KEY].decode(),
    )


class _PartWriter(_DatasetWriter):
    """io's dataset writer bound to one part file and to the dataset's fixed layout."""

    def __init__(self, path: Path, layout: PartLayout):
        super().__init__(path.parent, 1, {}, None)
        self.path = path
        self.arrow_schema = layout.arrow_schema
        self.columns = list(layout.columns)
        self.categories = dict(layout.categories)

    def write_chunk(self, chunk: pd.DataFrame, index: int) -> pa.Table:
        table = self._conform(chunk, index)
        if self.writer is None:
            self._next_file()
        if table.num_rows:
            self.writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows
        return table

    def _next_file(self) -> None:
        self.writer = pq.ParquetWriter(self.path, self.arrow_schema)
        self.names.append(self.path.name)


# ---- per-shard statistics ------------------------------------------------------------------------


def column_stats(table: pa.Table, kinds: Mapping[str, str], cap: int = CATEGORY_CAP) -> dict[str, dict[str, Any]]:
    """Per column: non-null `count`, `nulls`, `min`/`max` (numerical, integer, datetime columns)
    and `categories` {value: rows} (categorical, boolean, constant columns; at most `cap` values,
    the rest summed in `other`). Values are plain JSON types (datetimes as ISO strings)."""
    from synthpipe.generators.serialize import to_jsonable

    out: dict[str, dict[str, Any]] = {}
    for name, column in zip(table.column_names, table.columns):
        kind = kinds.get(name)
        nulls = column.null_count
        entry: dict[str, Any] = {"count": len(column) - nulls, "nulls": nulls}
        if kind in _MIN_MAX_KINDS:
            lo_hi = pc.min_max(column) if len(column) - nulls else None
            entry["min"] = to_jsonable(lo_hi["min"].as_py()) if lo_hi else None
            entry["max"] = to_jsonable(lo_hi["max"].as_py()) if lo_hi else None
        elif kind in _COUNTED_KINDS:
            values = column.combine_chunks()
            if pa.types.is_dictionary(values.type):
                values = values.dictionary_decode()
            counts = pc.value_counts(values.drop_null())
            pairs = sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()),
                           key=lambda vc: (-vc[1], str(vc[0])))
            entry["categories"] = {to_jsonable(v): int(c) for v, c in pairs[:cap]}
            entry["other"] = int(sum(c for _, c in pairs[cap:]))
        out[name] = entry
    return out


def merge_stats(parts: Sequence[Mapping[str, Mapping[str, Any]]], cap: int = CATEGORY_CAP) -> dict[str, dict[str, Any]]:
    """Combine `column_stats` of several chunks or shards into the statistics of all their rows.

    Counts, nulls, min and max are exact; category counts are exact while every part listed all
    its values (`other` == 0), otherwise `other` holds what the caps left out.
    """
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, entry in part.items():
            into = merged.setdefault(name, {"count": 0, "nulls": 0})
            into["count"] += entry["count"]
            into["nulls"] += entry["nulls"]
            for key, better in (("min", min), ("max", max)):
                if key in entry:
                    value = entry[key]
                    into[key] = value if into.get(key) is None else (
                        into[key] if value is None else better(into[key], value))
            if "categories" in entry:
                counts = into.setdefault("categories", {})
                for value, c in entry["categories"].items():
                    counts[value] = counts.get(value, 0) + c
                into["other"] = into.get("other", 0) + entry.get("other", 0)
    for entry in merged.values():
        if "categories" in entry and len(entry["categories"]) > cap:
            ordered = sorted(entry["categories"].items(), key=lambda vc: (-vc[1], str(vc[0])))
            entry["categories"] = dict(ordered[:cap])
            entry["other"] += sum(c for _, c in ordered[cap:])
    return merged


# ---- the shard task ----------------------------------------------------------------------------


def read_condition_rows(path: str | os.PathLike[str], start: int, rows: int) -> pd.DataFrame:
    """Rows `start .. start + rows` of a per-row conditions file, reading only the row groups
    that hold them."""
    file = pq.ParquetFile(path)
    groups, first, offset = [], None, 0
    for i in range(file.num_row_groups):
        n = file.metadata.row_group(i).num_rows
        if offset + n > start and offset < start + rows:
            groups.append(i)
            first = offset if first is None else first
        offset += n
    if not groups:
        return file.schema_arrow.empty_table().to_pandas()
    table = file.read_row_groups(groups).slice(start - first, rows)
    return table.to_pandas()


def _conditions_for(conditions: Mapping[str, Any] | None, conditions_path: str | None, start: int,
                    rows: int) -> Mapping[str, Any] | pd.DataFrame | None:
    if conditions_path is not None:
        return read_condition_rows(conditions_path, start, rows)
    return conditions or None


def _on_dask_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


@task(name="emit-shard", cache_policy=NO_CACHE)
def emit_shard(
    model_dir: str,
    shard: Shard,
    layout: PartLayout,
    conditions: Mapping[str, Any] | None = None,
    conditions_path: str | None = None,
    chunk_rows: int = 100_000,
    device: str | None = None,
) -> dict[str, Any]:
    """Sample and write one shard; return its statistics (see `shard_result`).

    The model is loaded here, from `model_dir`. Rows are sampled `chunk_rows` at a time, each
    chunk one row group of the part file, so memory is bounded by the chunk, not the shard.
    """
    import torch

    from synthpipe.generators.base import BaseGenerator

    started = time.perf_counter(), time.process_time()
    if _on_dask_worker():
        torch.set_num_threads(1)  # one core per worker process; Dask runs the parallelism
    model = BaseGenerator.load(model_dir, device=device)
    final = shard.path
    temporary = final.parent / f".{final.name}.tmp-{secrets.token_hex(4)}"
    writer = _PartWriter(temporary, layout)
    stats = []
    try:
        for i, offset in enumerate(range(0, shard.rows, chunk_rows)):
            if i == 1:
                reached("write")  # the part file has its first chunk, the rest to come
            size = min(chunk_rows, shard.rows - offset)
            cond = _conditions_for(conditions, conditions_path, shard.condition_start + offset, size)
            chunk = model.sample(size, conditions=cond, seed=shard.seed, start_index=shard.start + offset)
            if len(chunk) != size:
                raise DataError(f"shard {shard.index}: the model returned {len(chunk)} rows, expected {size}")
            stats.append(column_stats(writer.write_chunk(chunk, i), layout.kinds))
        writer.close()
        os.replace(temporary, final)
    except BaseException:
        writer.abort()
        temporary.unlink(missing_ok=True)
        raise
    if not stats:
        stats.append(column_stats(layout.arrow_schema.empty_table(), layout.kinds))
    runtime = {"seconds": round(time.perf_counter() - started[0], 3),
               "cpu_seconds": round(time.process_time() - started[1], 3),
               "max_rss_bytes": _peak_rss_bytes(), "process": f"{socket.gethostname()}:{os.getpid()}",
               "finished_at": time.time()}
    return shard_result(shard, writer.rows, final.stat().st_size, merge_stats(stats), runtime)


def shard_result(shard: Shard, rows: int, size: int, columns: dict[str, dict[str, Any]],
                 runtime: dict[str, Any]) -> dict[str, Any]:
    """The per-shard statistics format: {"index", "directory", "file", "start", "rows", "bytes",
    "columns": {name: column_stats entry}, "runtime": {"seconds", "cpu_seconds", "max_rss_bytes"
    (the peak resident memory of the process so far), "process" (host:pid), "finished_at" (Unix
    time)}}. Everything but
    "runtime" is the same for any runner."""
    return {"index": shard.index, "directory": shard.directory, "file": shard.path.name, "start": shard.start,
            "rows": rows, "bytes": size, "columns": columns, "runtime": runtime}


def _peak_rss_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


# ---- the emission flow ----------------------------------------------------------------------------


@flow(name="emit-shards", task_runner=ThreadPoolTaskRunner(max_workers=1), validate_parameters=False)
def emit_shards(
    model_dir: str,
    datasets: list[dict[str, Any]],
    conditions: dict[str, Any] | None = None,
    conditions_path: str | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    chunk_rows: int = 100_000,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Write every dataset of `datasets` (DatasetPlan fields as dicts) as shards on this flow's
    task runner; returns one summary per dataset (see `finish_dataset`).

    Parameters are small on purpose (paths and numbers): Prefect records them with the flow run.
    The default runner runs one shard at a time in this process; `runners.task_runner_for` picks
    another with `emit_shards.with_options(task_runner=...)`.
    """
    return run_emission(model_dir, [DatasetPlan(**d) for d in datasets], conditions, conditions_path,
                        shard_rows, chunk_rows, device, submit=True)


def run_emission(
    model_dir: str,
    datasets: list[DatasetPlan],
    conditions: Mapping[str, Any] | None,
    conditions_path: str | None,
    shard_rows: int,
    chunk_rows: int,
    device: str | None,
    submit: bool,
) -> list[dict[str, Any]]:
    """Plan, run and finish the shards; `submit` maps them over the current flow's task runner,
    otherwise they run here one after another without Prefect (`synthpipe sample` in process)."""
    from synthpipe.generators.base import BaseGenerator

    model = BaseGenerator.load(model_dir, device=device)
    jobs: list[tuple[Shard, PartLayout]] = []
    layouts = []
    for plan in datasets:
        Path(plan.directory).mkdir(parents=True, exist_ok=True)
        cond = _conditions_for(conditions, conditions_path, plan.condition_start, min(plan.rows, LAYOUT_PROBE_ROWS))
        layout = part_layout(model, plan.metadata, plan.rows, plan.seed, cond)
        plan.shards = plan_shards(plan.directory, plan.rows, plan.seed, shard_rows, plan.condition_start,
                                  plan.row_start)
        layouts.append(layout)
        jobs.extend((shard, layout) for shard in plan.shards)
    del model
    args = {"model_dir": model_dir, "conditions": conditions, "conditions_path": conditions_path,
            "chunk_rows": chunk_rows, "device": device}
    if submit:
        futures = [emit_shard.submit(shard=shard, layout=layout, **args) for shard, layout in jobs]
        wait(futures)  # every shard has stopped before a failure unwinds the staging directory
        results = [f.result() for f in futures]  # raises the first failed shard's error
    else:
        results = [emit_shard.fn(shard=shard, layout=layout, **args) for shard, layout in jobs]
    by_directory: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_directory.setdefault(result["directory"], []).append(result)
    return [finish_dataset(plan, layout, by_directory.get(plan.directory, []))
            for plan, layout in zip(datasets, layouts)]


def finish_dataset(plan: DatasetPlan, layout: PartLayout, shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the dataset's `_synthpipe.json` sidecar (as io.write_parquet does) once every part is
    in place; return {"directory", "rows", "files", "bytes", "columns" (merged), "shards"}."""
    for leftover in Path(plan.directory).glob(".part-*.tmp-*"):  # from a worker killed mid-write
        leftover.unlink(missing_ok=True)
    shards = sorted(shards, key=lambda s: s["index"])
    rows = sum(s["rows"] for s in shards)
    if rows != plan.rows:
        raise DataError(f"{plan.directory}: shards wrote {rows} rows, expected {plan.rows}")
    sidecar = {
        "metadata": json.loads(layout.metadata_json),
        "schema": json.loads(layout.schema_json),
        "rows": rows,
        "files": [s["file"] for s in shards],
        "written_at": _now(),
    }
    (Path(plan.directory) / SIDECAR).write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    size = sum(f.stat().st_size for f in Path(plan.directory).iterdir() if f.is_file())
    return {"directory": plan.directory, "rows": rows, "files": len(shards), "bytes": size,
            "columns": merge_stats([s["columns"] for s in shards]), "shards": shards}


# ---- helpers for the callers ------------------------------------------------------------------------


def sample_to_directory(
    model_dir: str | os.PathLike[str],
    rows: int,
    out: Path,
    *,
    seed: int = 0,
    conditions: list[str] | None = None,
    device: str | None = None,
    runner: Any = None,
    chunk_rows: int = 100_000,
) -> dict[str, Any]:
    """`synthpipe sample`: rows `0 .. rows` of the stream of `seed` into `out/synthetic`, written
    whole or not at all. In process it runs the shards here without starting Prefect; with a
    Dask runner it runs the emission flow on it."""
    from synthpipe.flows.conditions import coerce_conditions, parse_conditions
    from synthpipe.flows.io import atomic_directory
    from synthpipe.flows.runners import task_runner_for
    from synthpipe.generators.base import BaseGenerator
    from synthpipe.generators.errors import ConfigError

    if rows < 0:
        raise ConfigError(f"--rows must be >= 0, got {rows}")
    model = BaseGenerator.load(model_dir, device=device)
    typed = coerce_conditions(parse_conditions(conditions), model.schema_)
    metadata = {"generator": model.name, "seed": seed, "rows": rows, "model": str(model_dir),
                "conditions": {k: str(v) for k, v in typed.items()}}
    del model
    shard_rows = getattr(runner, "shard_rows", DEFAULT_SHARD_ROWS)
    clustered = bool(getattr(runner, "workers", None) or getattr(runner, "address", None))
    task_runner = task_runner_for(runner) if clustered else None  # a missing extra fails before writing
    with atomic_directory(out) as stage:
        plan = {"directory": str(stage / "synthetic"), "rows": rows, "seed": seed, "metadata": metadata}
        if clustered:
            results = emit_shards.with_options(task_runner=task_runner)(
                str(model_dir), [plan], conditions=typed, shard_rows=shard_rows, chunk_rows=chunk_rows, device=device)
        else:
            results = run_emission(str(model_dir), [DatasetPlan(**plan)], typed, None, shard_rows, chunk_rows,
                                   device, submit=False)
    return results[0]


def store_conditions(frame: pd.DataFrame, directory: Path, row_group_rows: int = 100_000) -> str:
    """Write a per-row conditions frame where every shard can read its slice (in the staging
    directory, which the workers must reach anyway); returns its path."""
    path = directory / CONDITIONS_FILE
    pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), path,
                   row_group_size=row_group_rows)
    return str(path)


def read_preview(directories: Sequence[str | os.PathLike[str]], rows: int) -> pd.DataFrame | None:
    """The first `rows` rows of the written datasets, in order, read back part by part (bounded:
    only the row groups needed are read). None when nothing was written."""
    tables: list[pa.Table] = []
    left = rows
    for part in _parts(directories):
        file = pq.ParquetFile(part)
        for i in range(file.num_row_groups):
            if left <= 0 and tables:
                break
            table = file.read_row_group(i)
            tables.append(table.slice(0, max(left, 0)))
            left -= tables[-1].num_rows
        if left <= 0 and tables:
            break
    if not tables:
        return None
    return _arrow_to_pandas(pa.concat_tables(tables, promote_options="none"), "synthetic preview")


def _parts(directories: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    for directory in directories:
        yield from sorted(Path(directory).glob("part-*.parquet"))
