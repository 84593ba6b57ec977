"""Checks that run before the Prefect engine starts, so a bad input fails in a second, not after
the engine's start-up, and with the same message the ingest step would give."""

from __future__ import annotations

from synthpipe.flows.config import RunConfig, SourceConfig
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import check_width


def check_source(source: SourceConfig) -> None:
    """Raise DataError if the source is missing, empty or not a readable table.

    Reads the head only (the first batch of the first file, as ingest would read it), so a
    source of any size is checked in a second; ingest reads it once, inside the flow.
    A database source is only checked for its form: reachability is retried inside the flow.
    """
    from synthpipe.flows.io.scan import peek_source

    head = peek_source(source.path, **source.model_dump(exclude={"path"}))
    check_width(head, source.path)


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
