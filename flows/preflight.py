"""Checks that run before the Prefect engine starts, so a bad input fails in a second, not after
the engine's start-up, and with the same message the ingest step would give."""

from __future__ import annotations

import glob
from pathlib import Path

from synthpipe.flows.config import RunConfig, SourceConfig
from synthpipe.generators.errors import ConfigError, DataError

# Files up to this size are read in full here (the same reader as the ingest step); larger ones
# get the cheap checks only and are read once, inside the flow.
FULL_READ_BYTES = 64 * 2**20


def check_source(source: SourceConfig) -> None:
    """Raise DataError if the source is missing, empty or (for small files) unreadable."""
    path = source.path
    if "://" in path:
        return  # a database: reachability is retried inside the flow
    matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
    if not matches:
        raise DataError(f"{path}: no file matches this pattern")
    first = Path(matches[0])
    if not first.exists():
        raise DataError(f"{path}: no such file or directory")
    total = sum(p.stat().st_size for p in map(Path, matches) if p.is_file())
    if first.is_file() and total == 0:
        raise DataError(f"{path}: the file is empty")
    if first.is_file() and total <= FULL_READ_BYTES:
        from synthpipe.flows.io import read_table

        read_table(
            path,
            format=source.format,
            delimiter=source.delimiter,
            encoding=source.encoding,
            table=source.table,
            query=source.query,
        )


def check_generator(cfg: RunConfig) -> None:
    """The generator exists, the device is usable, and it can do what the run asks of it."""
    from synthpipe.generators import get_generator_class
    from synthpipe.generators.base import select_device

    select_device(cfg.device)
    cls = get_generator_class(cfg.generator)
    # the constructor runs every parameter check that fit relies on (BaseGenerator._param_checks),
    # so epochs=0 or a batch size that pac does not divide fail here, before any data is read
    cls(**cfg.generator_params())
    if (cfg.conditions or cfg.balance) and cls.supports_conditions == "none":
        what = "--balance" if cfg.balance else "conditions"
        raise ConfigError(f"{what} needs exact conditional sampling: use --generator gan or autoregressive")
