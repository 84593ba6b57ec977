"""The flow's validate task checks every emitted row: the expectations stream the written dataset."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "acs12.csv"


def test_expectations_see_every_row_beyond_the_validation_sample(tmp_path, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    from synthpipe.flows.pipeline import VALIDATION_ROWS, synthpipe_run

    rows = VALIDATION_ROWS + 12_345  # more than the in-memory sample, across splits and part files
    out = tmp_path / "out"
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    with prefect_test_harness(server_startup_timeout=240):
        synthpipe_run({
            "source": str(EXAMPLE), "generator": "vae", "rows": rows, "out": str(out), "chunk_rows": 20_000,
            "params": {"epochs": 1, "progress": False}, "split": {"train": 0.7, "test": 0.3},
            "checks": {"checks": ["quality", "expectations"], "bootstrap_reps": 5},
        })
    report = json.loads((out / "report.json").read_text())
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["expectations"]["extra"]["rows_seen"] == rows
    assert by_name["expectations"]["extra"]["coverage"] == "stream"
    assert by_name["quality"]["extra"]["rows_seen"] <= 20_000  # model-based checks stay on bounded samples
    assert {d["rows_seen"] for d in by_name["expectations"]["details"]} == {rows}
