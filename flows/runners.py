"""Which Prefect task runner the emission shards run on, from the run's `runner:` settings.

- nothing set: in this process, one shard at a time (Prefect's thread-pool runner with one
  thread: the model's torch threads use the cores, and memory stays one shard's worth);
- `workers: N` (`--workers N`): a local Dask cluster of N worker processes, one thread and one
  torch thread each, started for the emission and closed after it (prefect-dask);
- `address: tcp://HOST:8786` (`--dask-address`): an existing Dask cluster. Its workers need
  synthpipe installed and must reach the output path.

prefect-dask and distributed are the `dask` extra; only the Dask runners import them.
"""

from __future__ import annotations

import logging
from typing import Any

from synthpipe.generators.errors import ConfigError

# Dask's own log lines (worker start and stop) are noise in a pipeline's log.
_QUIET_DASK = {"logging.distributed": "warning"}


def task_runner_for(runner: Any) -> Any:
    """A Prefect TaskRunner for `runner` (a flows.config.RunnerConfig or None)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    workers = getattr(runner, "workers", None)
    address = getattr(runner, "address", None)
    if not workers and not address:
        return ThreadPoolTaskRunner(max_workers=1)
    try:
        import dask
        from prefect_dask import DaskTaskRunner
    except ImportError:
        flag = "--dask-address" if address else "--workers"
        raise ConfigError(
            f"{flag} needs prefect-dask and distributed: pip install 'synthpipe[dask]'"
        ) from None
    dask.config.set(_QUIET_DASK)
    logging.getLogger("distributed").setLevel(logging.WARNING)  # the scheduler and nannies run here
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": int(workers),
            "processes": True,
            "threads_per_worker": 1,
            "dashboard_address": ":0",  # any free port: never collide with another cluster's 8787
            "env": {"PREFECT_API_URL": api_url_for_workers()},  # the nannies set it in each worker
        }
    )


def api_url_for_workers() -> str:
    """The Prefect API this process reports to, for the local cluster's workers.

    Without it each worker process finds no API and starts (and, after its task, stops) a
    temporary Prefect server of its own: about ten seconds of every shard on a 2-core machine,
    which made two workers slower than one. When this process itself runs on a temporary server,
    that server is started now (Prefect keeps one per process, so the flow then reuses it).
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        return str(url)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    return str(server.api_url)


def describe(runner: Any) -> str:
    """One line for the log and report.json."""
    if getattr(runner, "address", None):
        return f"dask cluster at {runner.address}"
    if getattr(runner, "workers", None):
        return f"local dask cluster, {runner.workers} worker process(es)"
    return "in process"


def prefect_defaults() -> None:
    """The environment every command that starts Prefect's engine gives it (call it before
    Prefect is imported: Prefect reads its settings once)."""
    import os

    # A fresh Prefect database migrates on first start; on a busy 2-core machine that takes
    # longer than Prefect's 20 s default. Usage telemetry races that migration ("database is
    # locked" tracebacks in the log) and phones home; a data pipeline needs neither.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
