"""`synthpipe validate` goes the run's bounded way: the real table scanned (profile + sample), the
synthetic table streamed for the expectations, and report.json saying how many rows each check saw."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from synthpipe.flows.cli import main


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(10, 2, n).round(3),
        "k": rng.integers(0, 50, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
    })


def _report(path):
    report = json.loads((path / "report.json").read_text())
    return report, {c["name"]: c for c in report["checks"]}


def test_validate_streams_every_synthetic_row_and_samples_the_rest(tmp_path, monkeypatch):
    real = _table(3_000, 0)
    real.loc[7, "c"] = "rare"  # one row of a rare category
    real.loc[8, "x"] = 99.0  # and one extreme value
    real.to_csv(tmp_path / "real.csv", index=False)
    synthetic = _table(2_500, 1)
    synthetic.loc[3, "c"], synthetic.loc[4, "x"] = "rare", 98.0  # allowed: the whole real table has them
    (tmp_path / "syn").mkdir()
    synthetic.iloc[:1_200].to_parquet(tmp_path / "syn" / "part-0.parquet", index=False)
    synthetic.iloc[1_200:].to_parquet(tmp_path / "syn" / "part-1.parquet", index=False)
    monkeypatch.setattr("synthpipe.validators.config.SYNTHETIC_SAMPLE_ROWS", 500)  # a bounded synthetic sample

    checks_cfg = ["--real", str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "syn")]
    main(["validate", *checks_cfg, "--out", str(tmp_path / "v")])
    report, checks = _report(tmp_path / "v")
    assert report["rows"]["synthetic"] == 2_500 and report["rows"]["real"] == 3_000
    assert report["rows"]["samples"]["synthetic"] == 500
    expectations = checks["expectations"]
    assert expectations["extra"]["rows_seen"] == 2_500 and expectations["extra"]["coverage"] == "stream"
    assert expectations["passed"] is True, expectations["summary"]
    assert checks["quality"]["extra"]["rows_seen"] == 500  # a classifier check: the bounded sample
    assert all(c["extra"].get("rows_seen") is not None for c in checks.values() if c["passed"] is not None)

    bad = synthetic.assign(x=synthetic["x"].where(synthetic.index != 2_400, 150.0))  # beyond the whole table
    bad.to_csv(tmp_path / "bad.csv", index=False)  # a CSV synthetic table is streamed too
    main(["validate", "--real", str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "bad.csv"),
          "--out", str(tmp_path / "v2")])
    report, checks = _report(tmp_path / "v2")
    assert checks["expectations"]["extra"]["rows_seen"] == 2_500 and checks["expectations"]["passed"] is False
    assert "x" in checks["expectations"]["extra"]["failed_columns"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synthpipe-validate-")]  # the spool is gone
