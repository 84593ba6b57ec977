"""The result every check returns, and the small helpers checks share to build one.

A check knows nothing of how the data was made or where the report goes: it compares tables
and returns a `CheckResult`. `passed` is None when the check has no gate (a likelihood) or
does not apply (no holdout, no target); such checks never fail a run.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import pandas as pd

from synthpipe.generators.serialize import to_jsonable

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CheckResult:
    """One check's verdict, with the evidence behind it.

    `score` is compared with `threshold` in `direction` ("higher": pass when score >= threshold;
    "lower": pass when score <= threshold). `interval` is a bootstrap confidence interval for
    the score. `figures` holds plot specifications (plain dicts with a "kind" key that
    report.py knows how to draw) or matplotlib figures; they stay out of report.json. Keys of
    `extra` that start with "_" are private too: `extra["_files"]` maps file names to text that
    write_report saves next to the report (the expectation suite, for one).
    """

    name: str
    score: float
    threshold: float | None
    passed: bool | None
    summary: str
    details: pd.DataFrame | None = None
    figures: list = field(default_factory=list)
    interval: tuple[float, float] | None = None
    direction: str = "higher"  # is a higher score better?
    extra: dict = field(default_factory=dict)

    @classmethod
    def scored(cls, name: str, score: float, threshold: float | None, summary: str, *,
               direction: str = "higher", **fields: Any) -> CheckResult:
        """A check whose verdict is its score against its threshold, nothing more: `passed` is
        `gate(score, threshold, direction)`, so it cannot disagree with the numbers shown."""
        return cls(name=name, score=score, threshold=threshold, passed=gate(score, threshold, direction),
                   summary=summary, direction=direction, **fields)

    @property
    def gated(self) -> bool:
        return self.passed is not None

    def to_dict(self, max_detail_rows: int = 200) -> dict[str, Any]:
        """A JSON-safe dict: NaN and infinities become None, details become a list of records."""
        details = None
        if self.details is not None:
            details = [
                {str(k): jsonable(v) for k, v in row.items()}
                for row in self.details.head(max_detail_rows).to_dict(orient="records")
            ]
        return {
            "name": self.name,
            "score": jsonable(self.score),
            "threshold": jsonable(self.threshold),
            "passed": self.passed,
            "interval": None if self.interval is None else [jsonable(v) for v in self.interval],
            "direction": self.direction,
            "summary": self.summary,
            "details": details,
            "details_truncated": bool(self.details is not None and len(self.details) > max_detail_rows),
            "figures": [figure_name(f, i) for i, f in enumerate(self.figures)],
            "extra": jsonable({k: v for k, v in self.extra.items() if not str(k).startswith("_")}),
        }


def figure_name(figure: Any, index: int) -> str:
    if isinstance(figure, dict):
        return str(figure.get("name") or figure.get("kind") or f"figure_{index}")
    return f"figure_{index}"


def gate(score: float, threshold: float | None, direction: str) -> bool | None:
    """Pass/fail of a score against its threshold: None without a threshold, False for a missing (NaN) score."""
    if threshold is None:
        return None
    if score is None or math.isnan(score):
        return False
    return bool(score >= threshold) if direction == "higher" else bool(score <= threshold)


@dataclass(frozen=True)
class Verdict:
    """The run's verdict over its checks: the one place pass/fail is decided (report.json, the
    HTML page, the CLI's exit code and `checks_passed` all read it)."""

    passed: bool
    gated: list[str]
    failed: list[str]
    not_applicable: list[str]


def verdict(checks: list[CheckResult]) -> Verdict:
    """Passed when every gated check passed; checks without a gate (passed None) never fail a run."""
    gated = [c for c in checks if c.passed is not None]
    return Verdict(
        passed=all(c.passed for c in gated),
        gated=[c.name for c in gated],
        failed=[c.name for c in gated if not c.passed],
        not_applicable=[c.name for c in checks if c.passed is None and c.extra.get("applicable") is False],
    )


NEEDS_HOLDOUT = "needs a holdout table (real rows the generator never saw)"


def not_applicable(name: str, reason: str, direction: str = "higher", threshold: float | None = None) -> CheckResult:
    """A check that cannot run on these inputs (e.g. needs a holdout): reported, never gated."""
    return CheckResult(
        name=name,
        score=float("nan"),
        threshold=threshold,
        passed=None,
        summary=f"not applicable: {reason}",
        direction=direction,
        extra={"applicable": False, "reason": reason},
    )


@contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Cap OpenMP/BLAS threads while a check fits models (None: leave the libraries' defaults).

    threadpoolctl only limits runtimes already loaded, so scikit-learn's OpenMP runtime is
    loaded first. One thread is the robust default: under oversubscription (a shared machine,
    a thread-pool task runner) OpenMP's spinning barriers make small fits 10-20x slower.
    """
    if threads is None:
        yield
        return
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


def in_limited_threads(check: Callable[P, R]) -> Callable[P, R]:
    """`check`, run under `limited_threads(config.threads)` where `config` is its
    ValidationConfig argument: the checks that fit models or search neighbours say so in one line."""
    signature = inspect.signature(check)

    @functools.wraps(check)
    def capped(*args: P.args, **kwargs: P.kwargs) -> R:
        with limited_threads(signature.bind(*args, **kwargs).arguments["config"].threads):
            return check(*args, **kwargs)

    return capped


def jsonable(value: Any) -> Any:
    """Strict JSON (NaN and infinities become None): `generators.serialize.to_jsonable` with `finite`."""
    return to_jsonable(value, finite=True)


def naive_utc(value: Any) -> pd.Timestamp:
    """A datetime (a Timestamp, or ISO text with or without an offset) as a naive UTC instant: how
    the checks compare datetimes of aware and naive columns, and bounds read back from JSON."""
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
