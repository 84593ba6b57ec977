"""Ingest of a source of any size: one streaming pass that profiles the whole table and draws
the training and holdout samples, so memory depends on `max_train_rows`, never on the source.

CSV files stream through pyarrow's CSV reader (sniffed as `read_table` sniffs them), Parquet
files and datasets through pyarrow.dataset batches, SQL through SQLAlchemy's chunked results in a
read-only transaction. Each batch goes once through the `ProfileAccumulator` (which also turns
inf / -inf into counted nulls) and the two reservoirs. A table of at most
`max_train_rows / (1 - holdout_fraction)` rows is held whole and split exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthpipe.flows.io.atomic import now
from synthpipe.flows.io.csv import BLOCK_BYTES, CsvBatches, scan_passes, sniff_csv
from synthpipe.flows.io.frames import arrow_to_pandas
from synthpipe.flows.io.parquet import ParquetBatches
from synthpipe.flows.io.reservoir import TrainHoldoutSampler
from synthpipe.flows.io.sources import Plan, Provenance, files_hash, resolve_source
from synthpipe.generators.errors import ConfigError, DataError
from synthpipe.generators.profile import MAX_CATEGORIES, ProfileAccumulator, TableProfile

# Training rows drawn from a large source: fits a laptop for every generator.
MAX_TRAIN_ROWS = 200_000
INFINITE_POLICIES = ("null", "error")
PEEK_BYTES = 1 << 16  # what pre-flight reads of a CSV file


@dataclass
class ScanResult:
    """What ingest hands the flow. `train` and `holdout` are indexed by source row position
    (0-based), so `pd.concat([train, holdout]).sort_index()` is the sample in source order (the
    whole table when it is small)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    profile: TableProfile
    provenance: Provenance


def scan_source(
    source: str | os.PathLike[str],
    *,
    max_train_rows: int = MAX_TRAIN_ROWS,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    max_categories: int = MAX_CATEGORIES,
    on_infinite: Mapping[str, str] | None = None,
    batch_rows: int = 65_536,
    csv_block_bytes: int = BLOCK_BYTES,
    **where: str | None,
) -> ScanResult:
    """Scan `source` once (see the module docstring). `where` are `read_table`'s options
    (format, delimiter, encoding, table, query); and:

    `max_train_rows` caps the training sample; the holdout has `holdout_fraction` of the rows,
    capped at what that fraction gives a table of `max_train_rows / (1 - holdout_fraction)` rows.
    `on_infinite` maps a column to "null" (the default: inf / -inf become nulls, counted in the
    profile) or "error" (a DataError naming the source, the column and the count).
    `batch_rows` (Parquet, SQL) and `csv_block_bytes` set the batch size: memory, not results.
    """
    if not isinstance(max_train_rows, int) or max_train_rows < 2:
        raise ConfigError(f"max_train_rows must be an integer >= 2, got {max_train_rows!r}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ConfigError(f"holdout_fraction must be in [0, 1), got {holdout_fraction!r}")
    policies = _check_policies(on_infinite)
    plan = resolve_source(source, **where)
    reader, hashes = open_reader(plan, batch_rows, csv_block_bytes)

    def one_pass(batches: Iterator[pa.RecordBatch]) -> tuple[ProfileAccumulator, TrainHoldoutSampler, pa.Schema | None]:
        profile = ProfileAccumulator(max_categories=max_categories, hash_rows=plan.kind == "sql")
        sampler = TrainHoldoutSampler(max_train_rows, holdout_fraction, seed)
        schema = None
        for batch in batches:
            batch = profile.update(batch)
            schema = schema or batch.schema
            sampler.offer(batch)
        return profile, sampler, schema

    accumulator, sampler, schema = scan_passes(reader, one_pass)
    if accumulator.rows == 0 or schema is None:
        what = "returned no rows" if plan.kind == "sql" else "has columns but no rows"
        raise DataError(f"{plan.label} {what}")
    profile = accumulator.result(None if plan.kind == "sql" else files_hash(plan, hashes))
    for name, policy in policies.items():
        if name not in profile:
            raise ConfigError(f"schema override on_infinite names column {name!r}, which {plan.label} lacks")
        if policy == "error" and profile[name].infinities:
            raise DataError(
                f"{plan.label}: column {name!r} has {profile[name].infinities} infinite value(s) (inf / -inf), "
                "and its schema says on_infinite: error"
            )
    (train, train_at), (holdout, holdout_at) = sampler.result()
    train_df = _frame(train, train_at, schema, plan.label)
    holdout_df = _frame(holdout, holdout_at, schema, plan.label)
    options: dict[str, Any] = {"format": plan.kind}
    if plan.kind == "sql":
        options.update({"table": plan.table, "query": plan.query})
    else:
        options.update({**getattr(reader, "options", {}), "files": len(plan.files)})
    options["sample"] = {
        "train_rows": len(train_df),
        "holdout_rows": len(holdout_df),
        "max_train_rows": max_train_rows,
        "whole_table": profile.rows <= sampler.whole_table_limit,
    }
    if profile.infinities:
        options["infinities"] = profile.infinities  # nulled; the report shows them from here
    provenance = Provenance(
        source=plan.label,
        kind=plan.kind,
        rows=profile.rows,
        columns=len(profile.columns),
        content_hash=profile.content_hash or "",
        read_at=now(),
        options=options,
    )
    return ScanResult(train_df, holdout_df, profile, provenance)


def peek_source(source: str | os.PathLike[str], **where: str | None) -> pd.DataFrame:
    """The first batch of a file source, read as ingest would read it, without reading the rest:
    pre-flight's check that a source exists and is a readable table. `where` as in scan_source.
    SQL sources are only resolved (reachability is retried inside the flow); an empty frame is
    returned for them."""
    plan = resolve_source(source, **where)
    if plan.kind == "sql":
        return pd.DataFrame()
    if plan.kind == "csv":
        head = sniff_csv(plan.files[0], plan.delimiter, plan.encoding, whole=False)
        reader = CsvBatches([head], plan.label, block_bytes=PEEK_BYTES)
        batches = scan_passes(_Head(reader), list)
    else:
        parquet = ParquetBatches(plan.files, plan.base, plan.label)
        batches = list(parquet.batches(batch_size=1024, max_batches=1))
    if not batches:
        raise DataError(f"{plan.text} has columns but no rows")
    return arrow_to_pandas(pa.Table.from_batches(batches), plan.text)


class _Head:
    """The first batch of a CSV reader only, for `scan_passes`."""

    def __init__(self, reader: CsvBatches):
        self.reader, self.label = reader, reader.label

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self.reader.batches(max_batches=1)


def as_parquet(source: str, spool: Path) -> Path:
    """`source` as a Parquet file or dataset directory for readers that stream Parquet only (the
    whole-output checks of `synthpipe validate`): itself when it is one; otherwise (CSV, a glob)
    copied batch by batch into `spool`, through ingest's own readers, in bounded memory."""
    import pyarrow.parquet as pq

    plan = resolve_source(source)
    path = Path(source).expanduser()
    if plan.kind == "parquet" and (path.is_file() or path.is_dir()):
        return path
    reader, _ = open_reader(plan, 65_536, BLOCK_BYTES)
    target = spool / "part-0.parquet"

    def copy(batches: Iterator[pa.RecordBatch]) -> Path:
        writer = None
        try:
            for batch in batches:
                writer = writer or pq.ParquetWriter(target, batch.schema)
                writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()
        return target

    return scan_passes(reader, copy)


def open_reader(plan: Plan, batch_rows: int, block_bytes: int) -> tuple[Any, list[str] | None]:
    """The batch reader for a plan, and the files' hashes when sniffing computed them."""
    if plan.kind == "sql":
        from synthpipe.flows.sql import SqlBatches

        return SqlBatches(plan.text, table=plan.table, query=plan.query, chunksize=batch_rows), None
    if plan.kind == "csv":
        sniffed = [sniff_csv(f, plan.delimiter, plan.encoding) for f in plan.files]
        return CsvBatches(sniffed, plan.text, block_bytes), [f.sha256 for f in sniffed]
    parquet = ParquetBatches(plan.files, plan.base, plan.text)
    return _Batched(parquet, batch_rows), None


class _Batched:
    """A Parquet reader with its batch size bound, for `scan_passes`."""

    def __init__(self, reader: ParquetBatches, rows: int):
        self.reader, self.rows, self.label = reader, rows, reader.label

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self.reader.batches(batch_size=self.rows)


def _frame(table: pa.Table | None, positions: np.ndarray, schema: pa.Schema, label: str) -> pd.DataFrame:
    if table is None:
        table = schema.empty_table()
    frame = arrow_to_pandas(table, label)
    frame.index = pd.Index(positions.astype(np.int64))
    return frame


def _check_policies(on_infinite: Mapping[str, str] | None) -> dict[str, str]:
    policies = dict(on_infinite or {})
    for name, policy in policies.items():
        if policy not in INFINITE_POLICIES:
            raise ConfigError(f"column {name!r}: on_infinite must be one of {list(INFINITE_POLICIES)}, got {policy!r}")
    return policies


def infinite_policies(overrides: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """The `on_infinite` settings of a run's schema overrides, by column."""
    return {name: o["on_infinite"] for name, o in (overrides or {}).items() if "on_infinite" in o}
