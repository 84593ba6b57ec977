"""Time to quality in one training run: save a synthpipe model each time its training clock
passes a mark (15, 30, 60, 120 s by default), then score every saved model.

The interface is a per-epoch callback, the one proposed for `BaseGenerator.fit`:

    model.fit(table, on_epoch_end=callback)   # callback(model, epoch, elapsed_s) -> None

called once per epoch, after the epoch's metrics are recorded (the end of `_train`'s loop body,
before the budget/early-stopping break), with `elapsed_s` = seconds since training started. A
callback may save the model (`model.save(path)` writes the current weights) and may extend
`model.config.time_budget_s`, which the loop reads every epoch. Until base.py has that parameter,
`attach` emulates it on one model instance by wrapping the instance's `_train` (to start the clock)
and `_record` (called once per epoch, at that same point) -- no class is modified.

What a snapshot at mark t holds: the weights at the end of the first epoch that ends after t
seconds of training, i.e. what `time_budget_s=t` trains, but the current weights rather than the
best validated ones (fit() swaps those in only when it returns), with early stopping off. The
time spent saving is taken off the clock and added to the model's budget, so snapshots cost no
training time.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_MARKS = (15.0, 30.0, 60.0, 120.0)
EpochCallback = Callable[[Any, int, float], None]


class BudgetSnapshots:
    """on_epoch_end callback: saves the model under `folder` once for the marks it has passed."""

    def __init__(self, marks: list[float] | tuple[float, ...], folder: str | Path):
        if not marks or min(marks) <= 0:
            raise ValueError(f"time-to-quality marks must be positive seconds, got {marks!r}")
        self.marks = sorted(float(m) for m in marks)
        self.folder = Path(folder)
        self.taken: list[dict[str, Any]] = []
        self.paused_s = 0.0  # seconds spent saving, excluded from the training clock

    def pending(self) -> list[float]:
        done = {t["mark_s"] for t in self.taken}
        return [m for m in self.marks if m not in done]

    def __call__(self, model: Any, epoch: int, elapsed_s: float) -> None:
        train_s = elapsed_s - self.paused_s
        due = [m for m in self.pending() if train_s >= m]
        if due:
            self._save(model, epoch, train_s, due, reached=True)

    def finish(self, model: Any, train_s: float, epochs_run: int) -> None:
        """After fit(): marks training never reached (it ended sooner) get the fitted model."""
        due = self.pending()
        if due:
            self._save(model, epochs_run - 1, train_s, due, reached=False)

    def _save(self, model: Any, epoch: int, train_s: float, due: list[float], reached: bool) -> None:
        start = time.perf_counter()
        path = self.folder / f"epoch-{epoch + 1}"
        model.save(path)
        spent = time.perf_counter() - start
        self.paused_s += spent
        budget = getattr(model.config, "time_budget_s", None)
        if reached and budget is not None:
            model.config.time_budget_s = budget + spent  # saving must not eat the training budget
        for mark in due:
            self.taken.append(
                {
                    "mark_s": mark,
                    "train_s": train_s,
                    "epochs_run": epoch + 1,
                    "path": str(path),
                    "save_s": spent,
                    "reached": reached,
                }
            )


def has_native_hook(model: Any) -> bool:
    return "on_epoch_end" in inspect.signature(type(model).fit).parameters


@contextmanager
def attach(model: Any, callback: EpochCallback) -> Iterator[dict[str, Any]]:
    """Yields the keyword arguments for `model.fit` that call `callback` after every epoch: the
    native `on_epoch_end` when the generator has it, else an emulation on this instance only."""
    if has_native_hook(model):
        yield {"on_epoch_end": callback}
        return
    clock = {"start": None}
    train, record = model._train, model._record

    def timed_train(*args: Any, **kwargs: Any) -> Any:
        clock["start"] = time.perf_counter()
        return train(*args, **kwargs)

    def recording(epoch: int, metrics: Any) -> None:
        record(epoch, metrics)
        callback(model, epoch, time.perf_counter() - clock["start"])

    model._train, model._record = timed_train, recording
    try:
        yield {}
    finally:
        del model._train, model._record  # back to the class's methods
