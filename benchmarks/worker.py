"""One training run in a fresh process: `python -m benchmarks.worker job.json`.

A fresh process per run means each system's peak resident memory is its own (no allocator state
or cached modules left over from another system) and a crash or hang costs one row, not the run.
The worker fits, samples, writes the synthetic rows next to the job file and its measurements
as JSON; the parent scores the rows.
"""

from __future__ import annotations

import json
import random
import re
import resource
import sys
import time
import traceback
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .systems import Job, make_system


def current_rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset_peak_rss() (VmHWM), else since process start."""
    hwm = _status_kb("VmHWM")
    if hwm:
        return hwm / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def reset_peak_rss() -> bool:
    """Start the peak-memory window here (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def warm_up() -> None:
    """Pay torch's one-time lazy imports (the first optimiser pulls in torch._dynamo, ~2 s) before
    any clock starts, so that no system's training time includes them."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([param])
    param.sum().backward()
    optimizer.step()


def run_job(job_path: str) -> dict[str, Any]:
    job = Job(**json.loads(Path(job_path).read_text()))
    torch.set_num_threads(job.threads)
    random.seed(job.seed)
    np.random.seed(job.seed)
    torch.manual_seed(job.seed)
    train = pd.read_pickle(job.train_path)
    warm_up()
    system = make_system(job.system)
    baseline = current_rss_mb()
    windowed = reset_peak_rss()
    timings = system.fit(train, job)
    peak_fit = peak_rss_mb()
    start = time.perf_counter()
    synthetic = system.sample(job.n_sample, seed=job.seed + 1)
    sample_s = time.perf_counter() - start
    synthetic.to_pickle(job.synth_path)
    if job.marks and hasattr(system, "snapshot_samples"):
        stem = str(Path(job.synth_path).with_suffix(""))
        timings["snapshots"] = system.snapshot_samples(job.n_sample, seed=job.seed + 1, stem=stem)
    epochs_run = timings.get("epochs_run")
    train_s = timings["train_s"]
    return {
        **timings,
        "status": "ok",
        "n_synth": len(synthetic),
        "sample_s": sample_s,
        "sample_rows_per_s": len(synthetic) / sample_s if sample_s > 0 else float("nan"),
        "train_rows_epochs_per_s": (
            timings["rows_per_epoch"] * epochs_run / train_s if epochs_run and train_s > 0 else float("nan")
        ),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_fit,
        "peak_rss_scope": "fit" if windowed else "process",
        "job": {k: v for k, v in asdict(job).items() if k != "metadata"},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_path = argv[0]
    result_path = Path(json.loads(Path(job_path).read_text())["result_path"])
    try:
        result = run_job(job_path)
        code = 0
    except Exception as exc:  # reported as a failed row by the parent, not a crashed run
        traceback.print_exc()
        result = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
        code = 1
    result_path.write_text(json.dumps(result, default=_json_default))
    return code


def _status_kb(field: str) -> int:
    try:
        match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore")  # SDV/RDT warn per column; the parent keeps stderr on failure
    sys.exit(main())
