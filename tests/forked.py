"""Child processes for the tests of cross-process locking: forked (children need only the test
module's functions, and fork starts them quickly), started together so they contend."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable
from typing import Any

CTX = mp.get_context("fork")


def run_together(target: Callable[..., Any], arg_tuples: Iterable[tuple], timeout_s: float) -> list[int | None]:
    """Run `target(*args)` in one child per tuple, all at once; their exit codes (None: still running
    after `timeout_s`)."""
    procs = [CTX.Process(target=target, args=args) for args in arg_tuples]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=timeout_s)
    return [p.exitcode for p in procs]
