"""Named stage boundaries of a run, so that a test can stop a real run at a chosen one.

The kill tests (tests/test_faults.py) must SIGKILL `synthpipe run` *at* a stage, not somewhere
near it, or they would pass by luck. With SYNTHPIPE_TEST_PAUSE_AT=<stage>:<marker-file> in its
environment, a run that reaches <stage> writes its pid to <marker-file> and sleeps until it is
signalled. Without the variable `reached` is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_VARIABLE = "SYNTHPIPE_TEST_PAUSE_AT"
STAGES = ("ingest", "train", "checkpoint", "sample", "write", "validate", "swap", "register")


def reached(stage: str) -> None:
    """Mark the start of `stage`; pause here when the test variable names it."""
    spec = os.environ.get(PAUSE_VARIABLE)
    if not spec:
        return
    name, _, marker = spec.partition(":")
    if name != stage or not marker:
        return
    Path(marker).write_text(f"{os.getpid()}\n")
    # until a signal ends the process (or its handler raises). Short sleeps: the kernel may hand
    # a process-directed signal to any thread, and then Python only flags it for the main thread,
    # which runs the handler between bytecodes; one long sleep might not return for an hour
    while True:
        time.sleep(0.05)
