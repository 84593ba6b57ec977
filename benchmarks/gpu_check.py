"""The CUDA path against the CPU path, for every generator: `bash benchmarks/gpu_check.sh`.

Each generator trains the same number of epochs on the same rows (the shipped acs12 demo table,
resampled to --rows for a measurable throughput) once on the CPU and once on CUDA with mixed
precision, then samples. The check fails (exit 1) when the two runs disagree on the columns or
their dtypes, or when their quality differs by more than --tolerance; it prints both throughputs
and their ratio. With --cpu-only (a machine without a GPU) the CUDA half is skipped, and said to
be, and the CPU half is checked against the source table's columns.

Quality here needs no sdmetrics (a CUDA image may lack it): the mean over columns of 1 - the
Kolmogorov-Smirnov distance (numbers, datetimes) or 1 - the total variation distance (categories,
nulls as a category), the same idea as sdmetrics' column-shapes score, plus the harness's
C2ST AUC (scikit-learn), each against held-out real rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "examples" / "acs12.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/gpu_check.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-only", action="store_true", help="skip the CUDA half (no GPU here)")
    p.add_argument("--generators", nargs="+", default=None, help="default: every registered one")
    p.add_argument("--rows", type=int, default=20_000, help="training rows (acs12 resampled)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--sample-rows", type=int, default=5_000)
    p.add_argument("--tolerance", type=float, default=0.05, help="largest allowed |quality CUDA - CPU|")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    return p.parse_args(argv)


def load_tables(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): holdout is 20% of acs12 as it is; train resamples the rest to `rows`."""
    df = pd.read_csv(TABLE).drop(columns=["person_id"])  # a row id says nothing about fidelity
    perm = np.random.default_rng(0).permutation(len(df))
    n_holdout = len(df) // 5
    holdout = df.iloc[perm[:n_holdout]].reset_index(drop=True)
    rest = df.iloc[perm[n_holdout:]].reset_index(drop=True)
    pick = np.random.default_rng(1).choice(len(rest), rows, replace=rows > len(rest))
    return rest.iloc[pick].reset_index(drop=True), holdout


def shape_score(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Mean per-column similarity in [0, 1]: 1 - KS for numbers, 1 - TVD for categories."""
    scores = []
    for name in real.columns:
        r, s = real[name], synthetic[name]
        if pd.api.types.is_numeric_dtype(r) and pd.api.types.is_numeric_dtype(s):
            a, b = np.sort(r.dropna().to_numpy(float)), np.sort(s.dropna().to_numpy(float))
            null_gap = abs(r.isna().mean() - s.isna().mean())
            if len(a) == 0 or len(b) == 0:
                scores.append(1.0 - max(null_gap, float(len(a) != len(b))))
                continue
            grid = np.concatenate([a, b])
            ks = np.max(
                np.abs(
                    np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)
                )
            )
            scores.append(1.0 - max(ks, null_gap))
        else:
            p = r.astype("object").where(r.notna(), "\x00null").astype(str).value_counts(normalize=True)
            q = s.astype("object").where(s.notna(), "\x00null").astype(str).value_counts(normalize=True)
            tvd = 0.5 * p.subtract(q, fill_value=0.0).abs().sum()
            scores.append(1.0 - float(tvd))
    return float(np.mean(scores))


def run_one(
    name: str, device: str, train: pd.DataFrame, holdout: pd.DataFrame, args: argparse.Namespace
) -> dict[str, Any]:
    import torch

    from synthpipe.benchmarks.metrics import c2st_auc
    from synthpipe.generators import get_generator_class

    cls = get_generator_class(name)
    model = cls(
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=0,
        device=device,
        mixed_precision=True,
        seed=0,
        progress=False,
    )
    start = time.perf_counter()
    model.fit(train)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = model.sample(args.sample_rows, seed=1)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    sample_s = time.perf_counter() - start
    train_s = float(getattr(model, "fit_seconds_", fit_s))
    return {
        "generator": name,
        "device": device,
        "columns": list(synthetic.columns),
        "dtypes": [str(t) for t in synthetic.dtypes],
        "rows": len(synthetic),
        "train_rows_per_s": getattr(model, "n_train_", len(train)) * args.epochs / max(train_s, 1e-9),
        "sample_rows_per_s": len(synthetic) / max(sample_s, 1e-9),
        "fit_s": fit_s,
        "quality": shape_score(holdout, synthetic),
        "c2st_auc": c2st_auc(holdout, synthetic, folds=3),
    }


def compare(cpu: dict[str, Any], gpu: dict[str, Any], tolerance: float) -> list[str]:
    """Mismatches between the CPU and CUDA runs of one generator (empty = they agree)."""
    problems = []
    if cpu["columns"] != gpu["columns"]:
        problems.append(f"columns differ: CPU {cpu['columns']} vs CUDA {gpu['columns']}")
    elif cpu["dtypes"] != gpu["dtypes"]:
        diff = [f"{c}: {a} vs {b}" for c, a, b in zip(cpu["columns"], cpu["dtypes"], gpu["dtypes"]) if a != b]
        problems.append(f"dtypes differ (CPU vs CUDA): {', '.join(diff)}")
    if gpu["rows"] != cpu["rows"]:
        problems.append(f"row counts differ: CPU {cpu['rows']} vs CUDA {gpu['rows']}")
    gap = abs(gpu["quality"] - cpu["quality"])
    if not np.isfinite(gap) or gap > tolerance:
        problems.append(
            f"quality differs by {gap:.3f} > {tolerance} (CPU {cpu['quality']:.3f}, CUDA {gpu['quality']:.3f})"
        )
    return problems


def check_against_source(run: dict[str, Any], source: pd.DataFrame) -> list[str]:
    """The CPU-only check: the synthetic table has the source's columns, in order, and rows."""
    problems = []
    if run["columns"] != list(source.columns):
        problems.append(f"columns {run['columns']} are not the source's {list(source.columns)}")
    if not np.isfinite(run["quality"]):
        problems.append("quality is not a number")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from synthpipe.generators import GENERATORS
    from synthpipe.generators.errors import ConfigError

    has_cuda = torch.cuda.is_available()
    if not args.cpu_only and not has_cuda:
        print(
            "gpu_check: no CUDA device is visible to torch; run with --cpu-only to check the CPU half alone"
        )
        return 2
    devices = ["cpu"] if args.cpu_only else ["cpu", "cuda"]
    gpu_name = torch.cuda.get_device_name(0) if has_cuda else "none"
    print(
        f"gpu_check: torch {torch.__version__}, GPU {gpu_name}, {args.threads} CPU threads; "
        f"{args.rows:,} training rows (acs12 resampled), {args.epochs} epochs, batch {args.batch_size}"
    )
    if args.cpu_only:
        print("gpu_check: --cpu-only: the CUDA half is SKIPPED; only the CPU runs are checked")
    train, holdout = load_tables(args.rows)
    failures: list[str] = []
    results: list[dict[str, Any]] = []
    for name in args.generators or list(GENERATORS):
        runs = {}
        for device in devices:
            try:
                runs[device] = run_one(name, device, train, holdout, args)
            except ConfigError as exc:  # a family not in this build
                print(f"  {name}: skipped ({exc})")
                break
            except Exception as exc:  # a crash on one device is a failed check, not a crashed script
                failures.append(f"{name} on {device}: {type(exc).__name__}: {exc}")
                break
        results.extend(runs.values())
        if "cpu" in runs and "cuda" in runs:
            failures += [f"{name}: {p}" for p in compare(runs["cpu"], runs["cuda"], args.tolerance)]
        elif "cpu" in runs and args.cpu_only:
            failures += [f"{name}: {p}" for p in check_against_source(runs["cpu"], train)]
    print_table(results)
    if failures:
        print("gpu_check: FAILED")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("gpu_check: OK" + (" (CPU half only; CUDA half skipped)" if args.cpu_only else ""))
    return 0


def print_table(results: list[dict[str, Any]]) -> None:
    head = f"  {'generator':16s} {'device':6s} {'train rows/s':>13s} {'sample rows/s':>14s} {'quality':>8s} {'C2ST AUC':>9s}"
    print(head)
    by_name: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        by_name.setdefault(r["generator"], {})[r["device"]] = r
        print(
            f"  {r['generator']:16s} {r['device']:6s} {r['train_rows_per_s']:13,.0f} {r['sample_rows_per_s']:14,.0f} "
            f"{r['quality']:8.3f} {r['c2st_auc']:9.3f}"
        )
    for name, runs in by_name.items():
        if "cpu" in runs and "cuda" in runs:
            cpu, gpu = runs["cpu"], runs["cuda"]
            print(
                f"  {name}: GPU/CPU throughput: training {gpu['train_rows_per_s'] / cpu['train_rows_per_s']:.2f}x, "
                f"sampling {gpu['sample_rows_per_s'] / cpu['sample_rows_per_s']:.2f}x"
            )


if __name__ == "__main__":
    sys.exit(main())
