"""Validation time and peak RSS on a large synthetic Parquet dataset directory (issue 12 point 5).

A script, not a test. Makes (once) a diamonds-based "synthetic" dataset of `--rows` rows as a
directory of part files (benchmarks/validation_speed.make_tables), then runs, in a fresh
process per mode so that peak RSS is the mode's own:

- `sample`: run_validation on the bounded in-memory sample only (what a run validated before);
- `loaded`: the whole output read into pandas and validated (full coverage without streaming);
- `streamed`: the bounded sample plus `synthetic_path=` (full-coverage checks stream the files).

    python benchmarks/validation_coverage.py --rows 1000000 --dir /tmp/val-1m [--mode all]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from synthpipe.validators.config import SYNTHETIC_SAMPLE_ROWS as SAMPLE_ROWS


def make_dataset(rows: int, directory: Path, part_rows: int = 100_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from validation_speed import make_tables

    if (directory / "done").exists():
        return
    train, synthetic, holdout = make_tables(rows)
    (directory / "synthetic").mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, rows, part_rows)):
        table = pa.Table.from_pandas(synthetic.iloc[start:start + part_rows], preserve_index=False)
        pq.write_table(table, directory / "synthetic" / f"part-{k:05d}.parquet")
    train.iloc[:50_000].to_parquet(directory / "train.parquet")
    holdout.to_parquet(directory / "holdout.parquet")
    (directory / "done").write_text("ok")


def run_mode(mode: str, directory: Path, reps: int) -> dict:
    import pandas as pd
    import pyarrow.dataset as ds

    from synthpipe.validators import run_validation

    train = pd.read_parquet(directory / "train.parquet")
    holdout = pd.read_parquet(directory / "holdout.parquet")
    dataset = ds.dataset(directory / "synthetic", format="parquet")
    start, cpu = time.perf_counter(), time.process_time()
    kwargs = {}
    if mode == "loaded":
        synthetic = dataset.to_table().to_pandas()
    else:
        synthetic = dataset.head(SAMPLE_ROWS).to_pandas()
        if mode == "streamed":
            kwargs["synthetic_path"] = directory / "synthetic"
    checks = run_validation(train, synthetic, holdout=holdout, target="cut",
                            config={"bootstrap_reps": reps}, **kwargs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seen = {c.name: c.extra.get("rows_seen") for c in checks}
    return {"mode": mode, "validate_s": round(seconds, 1), "cpu_s": round(cpu, 1), "peak_rss_mb": round(rss_mb),
            "load_avg": round(os.getloadavg()[0], 1), "rows_seen": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--mode", default="all", choices=["all", "sample", "loaded", "streamed"])
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    make_dataset(args.rows, args.dir)
    if args.mode != "all":
        print(json.dumps(run_mode(args.mode, args.dir, args.reps)))
        return
    for mode in ("sample", "loaded", "streamed"):
        out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--dir", str(args.dir),
                              "--mode", mode, "--reps", str(args.reps)], capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"{mode}: failed\n{out.stderr[-2000:]}")


if __name__ == "__main__":
    main()
