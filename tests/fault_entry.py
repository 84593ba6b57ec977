"""`synthpipe` as its console script runs it, plus the pause points that lie inside the generator
and the registry, for the kill tests (tests/test_faults.py).

The pipeline's own stage boundaries call `synthpipe.flows.stages.reached` (ingest, sample, write,
validate, swap). Training, checkpoint writing and registry registration happen inside
`generators/` and `flows/registry.py`, which know nothing of test hooks, so this entry point
wraps them to call `reached` at the chosen moment. Nothing is faked: every file on disk when the
test kills the process was written by the real code; only the moment is chosen.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from synthpipe.flows.stages import PAUSE_VARIABLE, reached

PAUSE_AFTER_CHECKPOINTS = 2  # two complete checkpoints first, so there is one to resume from


def _instrument(stage: str) -> None:
    if stage == "train":  # between two epochs, after a complete checkpoint
        from synthpipe.generators.base import BaseGenerator

        save = BaseGenerator._save_checkpoint
        count = [0]

        def save_then_pause(self, *position) -> None:
            save(self, *position)
            count[0] += 1
            if count[0] == PAUSE_AFTER_CHECKPOINTS:
                reached("train")

        BaseGenerator._save_checkpoint = save_then_pause
    elif stage == "checkpoint":  # half of the next checkpoint's bytes on disk, the rest to come
        import torch

        real_save = torch.save
        count = [0]

        def save_half_then_pause(obj, f, *args, **kwargs):
            if Path(str(getattr(f, "name", f))).name == "checkpoint.tmp":
                count[0] += 1
                if count[0] == PAUSE_AFTER_CHECKPOINTS + 1:
                    buffer = io.BytesIO()
                    real_save(obj, buffer, *args, **kwargs)
                    half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
                    if hasattr(f, "write"):
                        f.write(half)
                        f.flush()
                        os.fsync(f.fileno())
                    else:
                        Path(f).write_bytes(half)
                    reached("checkpoint")
            return real_save(obj, f, *args, **kwargs)

        torch.save = save_half_then_pause
    elif stage == "register":  # the model copied into the registry's staging, no entry yet
        from synthpipe.flows import registry

        write_snapshot = registry._write_snapshot

        def write_then_pause(*args, **kwargs):
            write_snapshot(*args, **kwargs)
            reached("register")

        registry._write_snapshot = write_then_pause


if __name__ == "__main__":
    import faulthandler
    import signal

    # SIGUSR1 prints every thread's stack to stderr: a test that times out asks for it before it
    # kills the run, so a hang says where it hung
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    _instrument(os.environ.get(PAUSE_VARIABLE, "").partition(":")[0])
    from synthpipe.flows.cli import main

    sys.exit(main())
