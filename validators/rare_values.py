"""Privacy: does the synthetic table replay categorical values that few training rows hold?

A value seen in one to four training rows (a rare job title, a small town) points at those
rows' people as surely as a copied row does, yet a row carrying it can be far from every
training row and pass the copy and distance checks. The generators promise never to emit such
a value freely (`min_category_count`, `transforms.CategoricalEncoder`); this check holds them to
it on every emitted row (the synthetic dataset is streamed when one is given), and judges any
other generator's output the same way.

Score: the share of synthetic rows carrying at least one categorical value seen in fewer than
`rare_value_min_count` training rows; gate: at most `rare_value_max_share` (0 by default: the
promise is "never"). The rate at which holdout rows carry such values is reported beside it,
not gated on: fresh real rows do carry them (other people with the same rare job title), so a
generator that replays training values at their training frequency would match that rate and
still leak.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from synthpipe.generators.schema import ColumnKind, ColumnSchema
from synthpipe.validators.base import CheckResult, not_applicable
from synthpipe.validators.config import ValidationConfig

NAME = "privacy_rare_values"
MAX_EXAMPLES = 3  # replayed values shown per column in the report


def rare_training_values(real: pd.DataFrame, columns: list[ColumnSchema], min_count: int) -> dict[str, pd.Series]:
    """column -> training count of each value seen in 1 to `min_count` - 1 training rows, for
    every categorical column (the kind the generators protect)."""
    rare: dict[str, pd.Series] = {}
    for column in columns:
        if column.kind is not ColumnKind.CATEGORICAL or column.name not in real.columns:
            continue
        counts = real[column.name].dropna().astype(object).value_counts()
        few = counts[counts < min_count]
        if len(few):
            rare[column.name] = few
    return rare


class RareValueTally:
    """Rows carrying a rare value, and which values, added up batch by batch."""

    def __init__(self, rare: dict[str, pd.Series]):
        self.rare = {name: pd.Index(values.index, dtype=object) for name, values in rare.items()}
        self.rows = 0
        self.carrying = 0
        self.by_column: dict[str, Counter] = {name: Counter() for name in rare}
        self.rows_by_column: dict[str, int] = dict.fromkeys(rare, 0)

    def add(self, frame: pd.DataFrame) -> None:
        flags = np.zeros(len(frame), dtype=bool)
        for name, values in self.rare.items():
            if name not in frame.columns:
                continue
            cells = frame[name].astype(object)
            hit = cells.isin(values).to_numpy()
            if hit.any():
                self.by_column[name].update(cells[hit].tolist())
                self.rows_by_column[name] += int(hit.sum())
                flags |= hit
        self.rows += len(frame)
        self.carrying += int(flags.sum())

    @property
    def share(self) -> float:
        return self.carrying / self.rows if self.rows else 0.0


def wilson_interval(hits: int, n: int, confidence: float) -> tuple[float, float] | None:
    """Wilson score interval of a proportion: from counts alone, so a streamed check has one, and
    sensible at 0 hits (where a bootstrap collapses to [0, 0])."""
    if n == 0:
        return None
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lower = 0.0 if hits == 0 else max(0.0, centre - half)  # exactly 0, not a rounding residue
    return lower, min(1.0, centre + half)


def tally_rows(rare: dict[str, pd.Series], frames: Iterable[pd.DataFrame]) -> RareValueTally:
    tally = RareValueTally(rare)
    for frame in frames:
        tally.add(frame)
    return tally


def rare_values_check(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[ColumnSchema],
    config: ValidationConfig,
    holdout: pd.DataFrame | None = None,
    synthetic_path: Path | None = None,
) -> CheckResult:
    """`privacy_rare_values`: every synthetic row (streamed from `synthetic_path` when given)
    against the categorical values fewer than `rare_value_min_count` training rows hold."""
    min_count = config.rare_value_min_count
    if not any(c.kind is ColumnKind.CATEGORICAL for c in columns):
        return not_applicable(NAME, "no categorical columns", "lower", config.rare_value_max_share)
    rare = rare_training_values(real, columns, min_count)
    if not rare:
        reason = (f"no categorical value is held by fewer than {min_count} training rows"
                  if min_count > 1 else "rare_value_min_count is 1: no value counts as rare")
        return not_applicable(NAME, reason, "lower", config.rare_value_max_share)
    if synthetic_path is not None:
        from synthpipe.validators.streaming import dataset_batches

        batches = dataset_batches(synthetic_path, config.stream_batch_rows, columns=list(rare))
        tally, coverage = tally_rows(rare, batches), "every emitted row (streamed)"
    else:
        tally, coverage = tally_rows(rare, [synthetic]), "the synthetic table"
    natural = tally_rows(rare, [holdout]) if holdout is not None and len(holdout) else None
    n_rare = sum(len(v) for v in rare.values())
    held_by = sum(int(v.sum()) for v in rare.values())
    details = pd.DataFrame({
        "column": list(rare),
        "rare values in training": [len(v) for v in rare.values()],
        "training rows holding them": [int(v.sum()) for v in rare.values()],
        "replayed values": [len(tally.by_column[n]) for n in rare],
        "synthetic rows carrying them": [tally.rows_by_column[n] for n in rare],
        "examples replayed": [", ".join(repr(v)[:40] for v, _ in tally.by_column[n].most_common(MAX_EXAMPLES))
                              for n in rare],
    })
    if natural is not None:
        details["holdout rows carrying them"] = [natural.rows_by_column[n] for n in rare]
    replayed = sum(len(c) for c in tally.by_column.values())
    natural_text = (f"; {natural.share:.2%} of holdout rows carry one (reported, not gated: fresh real rows "
                    f"hold rare values too)") if natural is not None else ""
    summary = (
        f"{tally.carrying} of {tally.rows} synthetic rows ({tally.share:.2%}) carry one of the {n_rare} categorical "
        f"values held by fewer than {min_count} training rows ({held_by} training rows in {len(rare)} column(s)); "
        f"{replayed} distinct value(s) replayed; allowed up to {config.rare_value_max_share:.2%}{natural_text}"
    )
    return CheckResult.scored(
        name=NAME, score=tally.share, threshold=config.rare_value_max_share, summary=summary,
        details=details, interval=wilson_interval(tally.carrying, tally.rows, config.confidence),
        direction="lower",
        extra={"rare_value_min_count": min_count, "rare_values": n_rare, "replayed_values": replayed,
               "carrying_rows": tally.carrying, "rows_seen": tally.rows, "coverage_of": coverage,
               "natural_rate": None if natural is None else natural.share,
               "columns": list(rare)},
    )
