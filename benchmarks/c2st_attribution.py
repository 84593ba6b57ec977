"""What gives synthetic rows away: the two-sample AUC of each column alone, of the table without
it, and of chosen column groups.

Why: a whole-table AUC of 0.99 says a generator failed, not where. When every column alone is
near 0.5-0.7 and dropping any one leaves the AUC where it was, the classifier is reading a joint
pattern that several columns carry together (diamonds' carat, x, y and z, which geometry ties
almost deterministically), not a badly drawn marginal; a group's AUC then names that pattern.

    python -m benchmarks.c2st_attribution --dataset diamonds --generator gan --budget 60 \
        --group carat,x,y,z --group x,y

trains the generator on the harness's split (seed 0, 20k rows) and prints one line per test.
`--synthetic rows.parquet` scores a table sampled elsewhere instead of training one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from .datasets import DEFAULT_MAX_ROWS, load_table, split
from .metrics import c2st_auc


def attribution(
    holdout: pd.DataFrame, synthetic: pd.DataFrame, groups: list[list[str]] = (), folds: int = 3, seed: int = 0
) -> pd.DataFrame:
    """One row per test: `test` (all, alone, without, group), `columns`, `auc`."""
    unknown = sorted({c for g in groups for c in g} - set(holdout.columns))
    if unknown:
        raise SystemExit(f"unknown column(s) in --group: {', '.join(unknown)}; the table has {', '.join(holdout.columns)}")
    synthetic = synthetic[holdout.columns]
    rows: list[dict[str, Any]] = [{"test": "all", "columns": "*", "auc": c2st_auc(holdout, synthetic, folds=folds, seed=seed)}]
    for column in holdout.columns:
        rows.append({"test": "alone", "columns": column,
                     "auc": c2st_auc(holdout[[column]], synthetic[[column]], folds=folds, seed=seed)})
        if holdout.shape[1] > 1:
            rest = holdout.columns.drop(column)
            rows.append({"test": "without", "columns": column,
                         "auc": c2st_auc(holdout[rest], synthetic[rest], folds=folds, seed=seed)})
    for group in groups:
        rows.append({"test": "group", "columns": ",".join(group),
                     "auc": c2st_auc(holdout[group], synthetic[group], folds=folds, seed=seed)})
    return pd.DataFrame(rows)


def _train_and_sample(generator: str, train: pd.DataFrame, n: int, budget_s: float, seed: int) -> pd.DataFrame:
    from synthpipe.generators import get_generator_class

    model = get_generator_class(generator)(seed=seed, progress=False, epochs=100_000, time_budget_s=budget_s)
    model.fit(train)
    print(f"{generator}: {len(model.history_['epoch'])} epochs in {model.fit_seconds_:.0f} s", file=sys.stderr)
    return model.sample(n, seed=seed + 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.c2st_attribution", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--generator", default="gan", help="synthpipe generator to train (vae, gan, autoregressive)")
    p.add_argument("--synthetic", type=Path, help="score this Parquet/CSV table instead of training")
    p.add_argument("--budget", type=float, default=60.0, help="training seconds")
    p.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group", action="append", default=[], help="comma-separated columns scored together")
    args = p.parse_args(argv)
    train, holdout = split(load_table(args.dataset, args.max_rows), args.seed)
    if args.synthetic is not None:
        read = pd.read_parquet if args.synthetic.suffix == ".parquet" else pd.read_csv
        synthetic = read(args.synthetic)
    else:
        synthetic = _train_and_sample(args.generator, train, len(holdout), args.budget, args.seed)
    groups = [[c.strip() for c in g.split(",") if c.strip()] for g in args.group]
    print(attribution(holdout, synthetic, groups, seed=args.seed).to_string(index=False, float_format="%.3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
