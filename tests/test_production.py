"""A nightly job against PostgreSQL: versioned outputs, the model registry's reuse-or-retrain
decision after a distribution change, and fine-tuning exports, through the real pipeline flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synthpipe.flows.config import RunConfig
from synthpipe.flows.sql import create_engine

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "acs12.csv"


@pytest.fixture
def pg_table(request, pg_url):
    """The shipped table loaded into a fresh PostgreSQL table; dropped afterwards."""
    name = f"people_{request.node.name[-20:].replace('[', '_').replace(']', '_')}".lower()
    engine = create_engine(pg_url)
    df = pd.read_csv(EXAMPLE)
    df.to_sql(name, engine, if_exists="replace", index=False)
    yield name, engine, df
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()


def _run(config: dict) -> dict:
    from synthpipe.flows.pipeline import synthpipe_run

    return synthpipe_run(RunConfig.model_validate(config).model_dump(by_alias=True))


@pytest.mark.postgres
@pytest.mark.slow
def test_nightly_runs_reuse_then_retrain_after_drift(prefect_harness, pg_table, pg_url, tmp_path):
    name, engine, df = pg_table
    out, registry = tmp_path / "out", tmp_path / "registry"
    config = {
        "source": {"path": pg_url, "table": name},
        "generator": "vae",
        "params": {"epochs": 2, "progress": False},
        "rows": 300,
        "out": str(out),
        "registry": str(registry),
        "versioned": True,
        "keep_runs": 2,
    }
    first = _run(config)
    assert first["model"]["reused"] is False and first["model"]["id"]
    assert ":***@" in first["source"]["source"] and "synthpipe:synthpipe@" not in json.dumps(first)
    latest_first = (out / "latest").resolve()

    second = _run(config)
    assert second["model"] == {"reused": True, "reason": second["model"]["reason"], "id": first["model"]["id"]}
    assert second["model"]["reason"] == "same data"
    latest_second = (out / "latest").resolve()
    assert latest_second != latest_first and (latest_second / "synthetic").is_dir()

    shifted = df.assign(income=df["income"] * 4 + 50_000, age=np.minimum(df["age"] + 30, 99))
    shifted.to_sql(name, engine, if_exists="replace", index=False)
    third = _run(config)
    assert third["model"]["reused"] is False and "shift" in third["model"]["reason"]
    assert third["model"]["id"] != first["model"]["id"]
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 2  # keep_runs prunes the oldest
    assert (out / "latest").resolve().name == runs[-1]
    report = json.loads((out / "latest" / "report.json").read_text())
    assert "synthpipe:synthpipe@" not in json.dumps(report)  # the password never reaches a report


@pytest.mark.slow
def test_fine_tuning_exports(prefect_harness, tmp_path):
    out = tmp_path / "ft"
    result = _run({
        "source": str(EXAMPLE),
        "generator": "gan",
        "params": {"epochs": 2, "progress": False},
        "rows": 400,
        "out": str(out),
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "balance": "race",
        "augment": True,
    })
    sizes = {name: len(pd.read_parquet(out / "synthetic" / name)) for name in ("train", "val", "test")}
    assert sizes == {"train": 200, "val": 100, "test": 100}
    everything = pd.concat([pd.read_parquet(out / "synthetic" / n) for n in sizes])
    counts = everything["race"].value_counts()
    assert counts.max() - counts.min() <= 1  # exactly balanced
    augmented = pd.read_parquet(out / "augmented")
    assert set(augmented["_synthpipe_source"]) == {"real", "synthetic"}
    assert (augmented["_synthpipe_source"] == "synthetic").sum() == 400
    assert result["output"]["splits"] == sizes
