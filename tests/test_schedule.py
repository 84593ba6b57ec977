"""Scheduled runs: a real Prefect server on loopback, `serve` in a subprocess, one triggered run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from services import free_port

from synthpipe.flows.schedule import build_deployment, cron_schedule, deployment_parameters, server_healthy
from synthpipe.generators.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _write_config(tmp_path: Path, **extra) -> Path:
    config = {
        "source": str(EXAMPLES / "acs12.csv"),
        "generator": "vae",
        "params": {"epochs": 2, "batch_size": 500},
        "rows": 200,
        "out": str(tmp_path / "out"),
        "seed": 0,
        "progress": False,
        "schema": {"person_id": {"kind": "id"}},
        **extra,
    }
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _stop(proc: subprocess.Popen | None) -> None:
    """Stop a process we started, and its children (it leads its own session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass


def test_deployment_is_built_from_the_config(tmp_path):
    deployment, env = build_deployment(str(_write_config(tmp_path)), "0 2 * * *", timezone="Europe/Oslo")
    assert deployment.name == "nightly" and deployment.entrypoint == "synthpipe.flows.pipeline.synthpipe_run"
    assert deployment.schedules[0].schedule.cron == "0 2 * * *"
    assert deployment.schedules[0].schedule.timezone == "Europe/Oslo"
    config = deployment.parameters["config"]
    assert config["source"]["path"] == str(EXAMPLES / "acs12.csv") and config["params"]["epochs"] == 2
    assert config["out"] == str(tmp_path / "out") and env == {}


def test_bad_cron_and_config_are_usage_errors(tmp_path):
    with pytest.raises(ConfigError, match="expected five fields"):
        cron_schedule("every night")
    with pytest.raises(ConfigError, match="'61 2 \\* \\* \\*'"):
        cron_schedule("61 2 * * *")
    with pytest.raises(ConfigError, match="does not exist"):
        build_deployment(str(tmp_path / "missing.yaml"), "0 2 * * *")


def test_database_password_stays_out_of_deployment_parameters():
    config = {"source": {"path": "postgresql://etl:Sup3rS3cret@db.internal:5432/sales", "table": "orders"}}
    params, env = deployment_parameters(config)
    assert "Sup3rS3cret" not in json.dumps(params) and env == {"PGPASSWORD": "Sup3rS3cret"}
    assert params["source"] == {"path": "postgresql://etl@db.internal:5432/sales", "table": "orders"}
    assert deployment_parameters({"source": {"path": "postgresql://etl@h/d"}}) == (
        {"source": {"path": "postgresql://etl@h/d"}},
        {},
    )
    with pytest.raises(ConfigError, match=r"mysql://etl:\*\*\*@h/d has a password in its URL"):
        deployment_parameters({"source": {"path": "mysql://etl:pw@h/d"}})


@pytest.mark.slow
@pytest.mark.prefect_server
@pytest.mark.postgres
def test_served_deployment_runs_on_a_real_prefect_server(tmp_path, pg_url):
    """The nightly job end to end: a cron deployment served against a real Prefect server reads a
    PostgreSQL table, trains and registers a model (run 1), reuses it on the same data (run 2),
    and retrains after the table's distribution changes (run 3); each run is versioned and
    `latest` moves atomically to it."""
    import pandas as pd

    from synthpipe.flows.sql import create_engine

    table = f"nightly_{os.getpid()}"
    engine = create_engine(pg_url)
    people = pd.read_csv(EXAMPLES / "acs12.csv")
    people.to_sql(table, engine, if_exists="replace", index=False)

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)  # SQLite under PREFECT_HOME
    config_path = _write_config(
        tmp_path,
        source={"path": pg_url, "table": table},
        registry=str(tmp_path / "registry"),
        versioned=True,
        keep_runs=5,
    )
    server = served = None
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("server", "serve")}
    started = time.monotonic()
    try:
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=logs["server"], stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        _wait_for(
            lambda: server_healthy(api_url, timeout_s=2),
            240,
            "the Prefect server to answer",
            server,
            tmp_path,
        )
        print(f"[timing] server answered after {time.monotonic() - started:.0f}s")
        serve_code = (
            "import torch; torch.set_num_threads(1)\n"
            "from synthpipe.flows.schedule import serve\n"
            f"serve({str(config_path)!r}, '0 2 * * *', name='nightly-test')\n"
        )
        served = subprocess.Popen(
            [sys.executable, "-c", serve_code], cwd=tmp_path,
            env=env, stdout=logs["serve"], stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import DeploymentFilter
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        out = tmp_path / "out"
        with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:

            def registered():
                found = client.read_deployments(deployment_filter=DeploymentFilter())
                return next((d for d in found if d.name == "nightly-test"), None)

            deployment = _wait_for(registered, 180, "the deployment to be registered", served, tmp_path)
            assert deployment.schedules[0].schedule.cron == "0 2 * * *"
            assert deployment.parameters["config"]["params"]["epochs"] == 2
            assert "synthpipe:synthpipe@" not in json.dumps(deployment.parameters)  # no password stored
            print(f"[timing] deployment registered after {time.monotonic() - started:.0f}s")

            def trigger_and_wait() -> dict:
                flow_run = run_deployment("synthpipe-run/nightly-test", timeout=0)

                def finished():
                    state = client.read_flow_run(flow_run.id).state
                    return state if state is not None and state.is_final() else None

                state = _wait_for(finished, 400, "the triggered run to finish", served, tmp_path)
                assert state.is_completed(), f"flow run ended {state.type}: {state.message}\n{_tail(tmp_path)}"
                print(f"[timing] flow run finished after {time.monotonic() - started:.0f}s")
                return json.loads((out / "latest" / "report.json").read_text())

            first = trigger_and_wait()
            first_run = (out / "latest").resolve()
            assert first["model"]["reused"] is False and first["model"]["id"]
            assert pq.ParquetDataset(out / "latest" / "synthetic").read().num_rows == 200
            assert (out / "latest" / "model" / "model.safetensors").is_file()

            second = trigger_and_wait()
            assert second["model"]["reused"] is True and second["model"]["id"] == first["model"]["id"]
            assert (out / "latest").resolve() != first_run  # a new versioned run, latest moved

            shifted = people.assign(income=people["income"] * 4 + 50_000, age=(people["age"] + 30).clip(upper=99))
            shifted.to_sql(table, engine, if_exists="replace", index=False)
            third = trigger_and_wait()
            assert third["model"]["reused"] is False and "shift" in third["model"]["reason"]
            assert len(list((out / "runs").iterdir())) == 3
    finally:
        _stop(served)
        _stop(server)
        for fh in logs.values():
            fh.close()
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
        engine.dispose()


def _wait_for(probe, timeout_s: float, what: str, proc: subprocess.Popen, tmp_path: Path):
    """Poll `probe` until it returns something truthy; fail early if `proc` died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception:  # the server is still starting
            value = None
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) while waiting for {what}\n{_tail(tmp_path)}")
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}\n{_tail(tmp_path)}")


def _tail(tmp_path: Path, n: int = 3000) -> str:
    parts = []
    for name in ("server", "serve"):
        path = tmp_path / f"{name}.log"
        if path.exists():
            parts.append(f"--- {name}.log ---\n{path.read_text()[-n:]}")
    return "\n".join(parts)
