"""Entry point: train every system on every dataset and seed, under each comparison, score the
synthetic tables, write the CSV and regenerate docs/BENCHMARKS.md.

    python -m benchmarks.run --datasets diamonds cps1988 loans flights \
        --systems synthpipe-vae synthpipe-gan synthpipe-autoregressive mostly-tabularargn \
                  sdv-ctgan sdv-tvae sdv-gaussiancopula \
        --seeds 3 --budget 60 [--epochs 10] [--comparisons equal_work equal_budget time_to_quality]
        [--marks 15 30 60 120] [--max-rows 20000] [--quick] [--out benchmarks/results]

Equal work: every neural system trains exactly --epochs epochs at --batch-size with matched
network widths (synthpipe's early stopping is off). Equal budget: synthpipe trains under
`time_budget_s=--budget` (early stopping on, its own default batch size); SDV's CTGAN/TVAE epoch loop is ended once the
budget has passed (see systems.EpochLoop). GaussianCopula has no epochs: it is fitted once and
its row appears under both comparisons. Time to quality (opt-in): AUC and quality after each of
--marks seconds of training; synthpipe trains once and is saved at each mark (snapshots.py), the
peers are retrained with each mark as their budget. Every (dataset, seed) also scores its real
train rows against the holdout (system `real-rows`), what a second real sample scores;
`--comparisons reference` computes only that. mostly-tabularargn runs in its own venv
(`bash benchmarks/setup_peer.sh`) and is skipped with a message where that venv is absent.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets, environment, metrics
from .peers import peer_python
from .snapshots import DEFAULT_MARKS
from .systems import SYSTEMS, Job, snapshots_in_one_run, unavailable_reason

REPO = Path(__file__).resolve().parent.parent
COMPARISONS = ("equal_work", "equal_budget", "time_to_quality", "reference")
# every cell also scores real train rows against its holdout (system "real-rows", comparison
# "reference"): what a second real sample scores on that split; `--comparisons reference`
# alone computes only that row
REAL_ROWS = "real-rows"
DEFAULT_COMPARISONS = ("equal_work", "equal_budget")  # time to quality costs ~sum(marks) per peer
QUICK = {"max_rows": 1_000, "epochs": 2, "budget": 5.0, "seeds": 1, "job_timeout": 300, "marks": [1.0, 2.0]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["diamonds", "cps1988"], choices=list(datasets.DATASETS))
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (split, model init, sampling)")
    p.add_argument("--budget", type=float, default=300.0, help="training seconds per system (equal budget)")
    p.add_argument("--epochs", type=int, default=10, help="epochs for every neural system (equal work)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--comparisons", nargs="+", default=list(DEFAULT_COMPARISONS), choices=COMPARISONS)
    p.add_argument(
        "--marks", nargs="+", type=float, default=list(DEFAULT_MARKS), help="time-to-quality seconds"
    )
    p.add_argument(
        "--max-rows",
        type=int,
        default=datasets.DEFAULT_MAX_ROWS,
        help=f"fixed uniform subsample of each larger table (default {datasets.DEFAULT_MAX_ROWS:,}; 0 = all rows)",
    )
    p.add_argument(
        "--sample-rows", type=int, default=20_000, help="synthetic rows per run (capped at train size)"
    )
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch/BLAS threads per process")
    p.add_argument("--device", default="cpu", help="cpu | cuda (synthpipe device; SDV enable_gpu)")
    p.add_argument(
        "--job-timeout", type=float, default=None, help="seconds before a training process is killed"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a synthpipe Config field for every synthpipe system that has it (repeatable; VALUE is JSON, "
        "or a plain string); recorded in the CSV's net column",
    )
    p.add_argument("--quick", action="store_true", help=f"CI smoke: {QUICK} unless given explicitly")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="folder for the CSV")
    p.add_argument("--docs", type=Path, default=REPO / "docs", help="folder for BENCHMARKS.md and plots")
    p.add_argument("--keep-tables", type=Path, default=None,
                   help="also write each run's synthetic table, and each cell's holdout, as Parquet "
                        "here (for c2st_attribution.py and per-pair scores)")
    args = p.parse_args(argv)
    given = set(argv if argv is not None else sys.argv[1:])
    if args.quick:  # quick values apply where the user did not set the flag
        for key, value in QUICK.items():
            if f"--{key.replace('_', '-')}" not in given:
                setattr(args, key, value)
    args.params = parse_params(p, args.param)
    if args.max_rows == 0:
        args.max_rows = None
    if args.job_timeout is None:
        args.job_timeout = max(1800.0, 6 * max(args.budget, *args.marks))
    args.command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    return args


def parse_params(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, Any]:
    """`--param n_bins=96 --param dropout=0.2` -> {"n_bins": 96, "dropout": 0.2}."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            parser.error(f"--param {item!r}: expected KEY=VALUE with KEY a Config field name")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmark; returns the CSV path."""
    args = parse_args(argv)
    runnable = []
    for system in args.systems:
        reason = unavailable_reason(system)
        if reason:
            print(f"skipping {system}: {reason}", flush=True)
        else:
            runnable.append(system)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"date": dt.date.today().isoformat(), **environment.describe(REPO)}
    csv_path = fresh_path(args.out / f"{env['date']}-{env['host']}{'-quick' if args.quick else ''}.csv")
    tables = {name: datasets.load_table(name, args.max_rows) for name in args.datasets}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synthpipe-bench-") as tmp:
        # seeds outermost: a run stopped early still has every dataset, with fewer seeds
        for seed in range(args.seeds):
            for dataset, table in tables.items():
                for row in run_cell(args, env, runnable, dataset, table, seed, Path(tmp), started):
                    rows.append(row)
                    write_csv(rows, csv_path)
    from . import report

    md = report.generate([csv_path], args.docs)
    print(f"wrote {csv_path} and {md} in {time.perf_counter() - started:.0f}s", flush=True)
    return csv_path


def run_cell(
    args: argparse.Namespace,
    env: dict[str, str],
    systems: list[str],
    dataset: str,
    table: pd.DataFrame,
    seed: int,
    tmp: Path,
    started: float,
) -> Iterator[dict[str, Any]]:
    """Every system under every comparison on one (dataset, seed) split; yields CSV rows."""
    spec = datasets.DATASETS[dataset]
    metadata = datasets.sdv_metadata_dict(table)
    train, holdout = datasets.split(table, seed)
    train_path = tmp / f"{dataset}-{seed}-train.pkl"
    train.to_pickle(train_path)
    base = {
        **env,
        "threads": args.threads,
        "device": args.device,
        "quick": args.quick,
        "command": args.command,
        "dataset": dataset,
        "source": spec.source,
        "target": spec.target,
        "task": spec.task,
        "target2": spec.target2,
        "task2": spec.task2,
        "n_rows_source": table.attrs.get("n_rows_source", len(table)),
        "n_rows": len(table),
        "n_columns": table.shape[1],
        "n_train": len(train),
        "n_holdout": len(holdout),
        "seed": seed,
        "batch_size": args.batch_size,
        "budget_s": args.budget,
    }
    cell = _Cell(args, dataset, seed, spec, metadata, train, holdout, train_path, tmp, started)
    yield cell.reference({**base, "system": REAL_ROWS, "comparison": "reference", "budget_s": None})
    fitted_once: dict[str, dict[str, Any]] = {}
    for comparison in (c for c in args.comparisons if c != "reference"):
        for system in systems:
            row = {**base, "system": system, "comparison": comparison}
            name = f"{dataset}-{seed}-{comparison}-{system}"
            if system in fitted_once:  # GaussianCopula: one fit serves every comparison and mark
                if comparison != "time_to_quality":
                    yield {**fitted_once[system], "comparison": comparison}
                    continue
                for mark in args.marks:
                    yield {
                        **fitted_once[system],
                        "comparison": comparison,
                        "mark_s": mark,
                        "budget_s": mark,
                        "mark_reached": True,
                        "snapshot_method": "fitted once (no epochs)",
                    }
                continue
            if comparison == "time_to_quality":
                yield from cell.time_to_quality(row, system, name, args.marks)
                continue
            row["epochs_requested"] = args.epochs if comparison == "equal_work" else None
            job = cell.job(system, comparison, args.budget, name)
            row = cell.score(cell.train(row, job), job.synth_path)
            if row.get("status") == "ok":
                if comparison == "equal_work" and row.get("epochs_run"):
                    cell.epoch_seconds[system] = row["train_s"] / row["epochs_run"]
                if SYSTEMS[system][1] == "gaussiancopula":
                    fitted_once[system] = row
            yield row


class _Cell:
    """One (dataset, seed) split: builds jobs, runs them in workers, scores what they sampled."""

    def __init__(self, args, dataset, seed, spec, metadata, train, holdout, train_path, tmp, started):
        self.args, self.dataset, self.seed, self.spec, self.metadata = args, dataset, seed, spec, metadata
        self.train_rows, self.holdout, self.train_path, self.tmp = train, holdout, train_path, tmp
        self.started = started
        self.epoch_seconds: dict[str, float] = {}  # equal-work s/epoch, for SDV's budget epochs

    def reference(self, row: dict[str, Any]) -> dict[str, Any]:
        """Real train rows scored against the holdout as if they were synthetic. Quality and C2ST
        then measure how far two real samples of this table sit apart under these metrics (one
        real outlier moves sdmetrics' pair trends), the yardstick for a gap between systems;
        privacy and TSTR are left out, as they are trivially perfect or meaningless for train rows."""
        from threadpoolctl import threadpool_limits

        started = time.perf_counter()
        out = {**row, "status": "ok", "n_synth": len(self.train_rows)}
        with threadpool_limits(self.args.threads):
            try:
                out.update(metrics.quality_score(self.holdout, self.train_rows, self.metadata, seed=self.seed))
                out["c2st_auc"] = metrics.c2st_auc(self.holdout, self.train_rows, seed=self.seed)
            except Exception as exc:  # a failing metric must not stop the run
                out.update(status="error", message=f"{type(exc).__name__}: {exc}"[:300])
        out["metrics_s"] = time.perf_counter() - started
        print(f"[{time.perf_counter() - self.started:7.0f}s] {self.dataset} seed={self.seed} real rows: "
              f"quality={out.get('quality', float('nan')):.3g} c2st_auc={out.get('c2st_auc', float('nan')):.3g}",
              flush=True)
        return out

    def job(self, system: str, comparison: str, budget: float, name: str, **extra: Any) -> Job:
        args = self.args
        return Job(
            system=system,
            dataset=self.dataset,
            seed=self.seed,
            comparison=comparison,
            epochs=args.epochs,
            batch_size=args.batch_size,
            budget_s=budget,
            threads=args.threads,
            device=args.device,
            n_sample=min(args.sample_rows, len(self.train_rows)),
            train_path=str(self.train_path),
            synth_path=str(self.tmp / f"{name}.pkl"),
            result_path=str(self.tmp / f"{name}.json"),
            metadata=self.metadata,
            epoch_seconds=self.epoch_seconds.get(system),
            params=args.params or None,
            **extra,
        )

    def _log(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.0f}s] {text}", flush=True)

    def train(self, row: dict[str, Any], job: Job) -> dict[str, Any]:
        """Run the job's worker; the row gains its measurements (snapshots kept apart)."""
        mark = f" mark={row['mark_s']:g}s" if row.get("mark_s") is not None else ""
        self._log(f"{self.dataset} seed={self.seed} {row['comparison']} {row['system']}{mark} ...")
        row["load_avg_1m"] = os.getloadavg()[0]  # other work on the machine skews every timing
        result = run_worker(job, self.args.threads, self.args.job_timeout)
        row["load_avg_1m_after"] = os.getloadavg()[0]
        row.update({k: v for k, v in result.items() if k not in ("job", "snapshots")})
        self.last_snapshots = result.get("snapshots") or []
        return row

    def score(self, row: dict[str, Any], synth_path: str) -> dict[str, Any]:
        if row.get("status") == "ok":
            synthetic = pd.read_pickle(synth_path)
            row.update(
                score(
                    self.train_rows,
                    self.holdout,
                    synthetic,
                    self.spec,
                    self.metadata,
                    self.seed,
                    self.args.threads,
                )
            )
            self._keep(synthetic, row)
            os.unlink(synth_path)
        self._log(f"  -> {_summary(row)}")
        return row

    def _keep(self, synthetic: pd.DataFrame, row: dict[str, Any]) -> None:
        folder = self.args.keep_tables
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.dataset}-seed{self.seed}"
        holdout = folder / f"{stem}-holdout.parquet"
        if not holdout.exists():
            self.holdout.to_parquet(holdout)
            self.train_rows.to_parquet(folder / f"{stem}-train.parquet")
        mark = f"-{row['mark_s']:g}s" if row.get("mark_s") is not None else ""
        synthetic.to_parquet(folder / f"{stem}-{row['system']}-{row['comparison']}{mark}.parquet")

    def time_to_quality(
        self, row: dict[str, Any], system: str, name: str, marks: list[float]
    ) -> Iterator[dict[str, Any]]:
        """One row per mark: synthpipe trains once to the last mark and is scored at each
        snapshot; a peer without a snapshot hook is retrained with each mark as its budget."""
        if not snapshots_in_one_run(system):
            once = SYSTEMS[system][1] == "gaussiancopula"  # no epochs: one fit stands for every mark
            fitted = None
            for mark in marks:
                if fitted is not None:
                    yield {**fitted, "mark_s": mark, "budget_s": mark}
                    continue
                job = self.job(system, "equal_budget", mark, f"{name}-{mark:g}s")
                mark_row = {**row, "mark_s": mark, "budget_s": mark, "mark_reached": True}
                mark_row["snapshot_method"] = (
                    "fitted once (no epochs)" if once else "retrained with the mark as its budget"
                )
                out = self.score(self.train(mark_row, job), job.synth_path)
                if once and out.get("status") == "ok":
                    fitted = out
                yield out
            return
        job = self.job(system, "time_to_quality", max(marks), name, marks=list(marks))
        job.snapshot_dir = str(Path(job.result_path).with_suffix("")) + "-snapshots"
        run_row = self.train({**row, "mark_s": max(marks), "budget_s": max(marks)}, job)
        if os.path.exists(job.synth_path):
            os.unlink(job.synth_path)  # the final (best validated) model's rows are not a mark
        if run_row.get("status") != "ok" or not self.last_snapshots:
            if run_row.get("status") == "ok":
                run_row.update(status="error", message="the run took no time-to-quality snapshot")
            self._log(f"  -> {_summary(run_row)}")
            yield run_row
            return
        for snap in self.last_snapshots:
            mark_row = {
                **run_row,
                "mark_s": snap["mark_s"],
                "budget_s": snap["mark_s"],
                "train_s": snap["train_s"],
                "epochs_run": snap["epochs_run"],
                "mark_reached": snap["reached"],
                "snapshot_save_s": snap["save_s"],
                "sample_s": snap["sample_s"],
                "snapshot_method": "one run, saved at each mark",
            }
            yield self.score(mark_row, snap["synth_path"])


def run_worker(job: Job, threads: int, timeout: float) -> dict[str, Any]:
    """Train in a fresh interpreter; returns the worker's JSON (or an error row).

    synthpipe's and SDV's systems run under this interpreter; TabularARGN under its own venv's
    python (peers.py), as `-m benchmarks.worker` from the repository root, which needs no
    installed synthpipe."""
    job_path = Path(job.result_path).with_suffix(".job.json")
    job_path.write_text(json.dumps(asdict(job)))
    env = dict(os.environ)
    # LOKY_MAX_CPU_COUNT caps the joblib processes that CTGAN's DataTransformer.transform starts
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        env[var] = str(threads)
    env["PYTHONWARNINGS"] = "ignore"
    if SYSTEMS[job.system][0] == "mostlyai":
        command = [str(peer_python()), "-m", "benchmarks.worker", str(job_path)]
    else:
        command = [sys.executable, "-m", f"{__package__}.worker", str(job_path)]
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "message": f"timed out after {timeout:.0f}s"}
    result_path = Path(job.result_path)
    if not result_path.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {
            "status": "error",
            "message": f"worker exited {proc.returncode} without a result: {tail}"[:500],
        }
    result = json.loads(result_path.read_text())
    if result.get("status") != "ok":
        print("\n".join(proc.stderr.strip().splitlines()[-15:]), file=sys.stderr)
    return result


def score(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    spec: datasets.DatasetSpec,
    metadata: dict[str, Any],
    seed: int,
    threads: int,
) -> dict[str, Any]:
    """All quality and privacy metrics for one synthetic table (holdout = the real reference)."""
    from threadpoolctl import threadpool_limits

    missing = [c for c in train.columns if c not in synthetic.columns]
    if missing:
        return {"metric_error": f"synthetic table lacks columns {missing}"}
    out: dict[str, Any] = {}
    with threadpool_limits(threads):
        timers = {}
        for name, fn in (
            ("quality", lambda: metrics.quality_score(holdout, synthetic, metadata, seed=seed)),
            ("c2st", lambda: {"c2st_auc": metrics.c2st_auc(holdout, synthetic, seed=seed)}),
            (
                "utility",
                lambda: metrics.utility(train, holdout, synthetic, spec.target, spec.task, seed=seed),
            ),
            (
                "utility2",
                lambda: (
                    _prefixed(
                        "utility2_",
                        metrics.utility(train, holdout, synthetic, spec.target2, spec.task2, seed=seed),
                    )
                    if spec.target2
                    else {}
                ),
            ),
            ("dcr", lambda: metrics.dcr_ratio(train, holdout, synthetic, seed=seed)),
            (
                "copies",
                lambda: {
                    "exact_copy_rate": metrics.exact_copy_rate(train, synthetic),
                    "exact_copy_rate_holdout": metrics.exact_copy_rate(train, holdout),
                },
            ),
        ):
            start = time.perf_counter()
            try:
                out.update(fn())
            except Exception as exc:  # one failing metric must not lose the row
                out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:300]
            timers[name] = time.perf_counter() - start
    out["metrics_s"] = sum(timers.values())
    return out


def _prefixed(prefix: str, scores: dict[str, float]) -> dict[str, float]:
    """utility_real -> utility2_real etc. for the second target."""
    return {prefix + k.removeprefix("utility_"): v for k, v in scores.items()}


def _summary(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"FAILED: {row.get('message')}"
    keys = ("epochs_run", "train_s", "quality", "c2st_auc", "utility_ratio", "peak_rss_mb")
    return " ".join(
        f"{k}={row[k]:.3g}" if isinstance(row.get(k), float) else f"{k}={row.get(k)}" for k in keys
    )


def fresh_path(path: Path) -> Path:
    """`path`, or `stem-2.csv`, `stem-3.csv`... so that a second run on a day keeps the first's CSV."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Rewrite the whole CSV after every run, so an interrupted benchmark keeps what it measured."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
