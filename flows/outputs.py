"""Versioned output directories; the code lives in `synthpipe.flows.io.atomic` (staging, swap,
locks and versioned runs are one concern). Kept so existing imports keep working."""

from synthpipe.flows.io.atomic import (  # noqa: F401
    FAILED,
    LATEST,
    LOCK,
    RUNNING,
    RUNS,
    OutputBusyError,
    file_lock,
    latest_run,
    list_runs,
    mark_dead_runs,
    mark_failed,
    new_run,
    new_run_id,
    output_lock,
    promote,
    prune,
    versioned_run,
)
