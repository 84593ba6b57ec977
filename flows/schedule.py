"""`synthpipe serve CONFIG --cron "0 2 * * *"`: run the pipeline on a schedule through Prefect.

What to start (Prefect's ephemeral mode, which `synthpipe run` uses, has no scheduler, so a
schedule needs a real Prefect server that outlives any one run):

1. A Prefect server, once per machine or team:

       prefect server start --host 127.0.0.1 --port 4200

   It keeps its state in SQLite at `$PREFECT_HOME/prefect.db` (`~/.prefect/prefect.db`) by
   default, which is fine for one machine. For production, point it at PostgreSQL (14.9+, with
   the `pg_trgm` extension available) before starting it:

       export PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://prefect:PASSWORD@db-host:5432/prefect"
       prefect server start --host 0.0.0.0 --port 4200

2. In the shell (or service unit) that serves the deployment, tell Prefect where the server is:

       export PREFECT_API_URL=http://127.0.0.1:4200/api      # or: prefect config set PREFECT_API_URL=...
       synthpipe serve examples/acs12.yaml --cron "0 2 * * *"

   `serve` registers the deployment `synthpipe-run/<name>` with that cron schedule and then keeps
   running: it polls the server and executes each scheduled (or manually triggered) run in a
   subprocess. Stop it with Ctrl+C (the schedule is paused on shutdown). Trigger a run by hand with
   `prefect deployment run synthpipe-run/<name>`.

The configuration is loaded and validated when serving starts, so usage errors surface at once,
and the validated configuration becomes the deployment's `config` parameter. Deployment
parameters are stored by the Prefect server and shown in its UI, so a database password in the
source URL is not put there: for PostgreSQL it is moved into this process's PGPASSWORD (which the
flow-run subprocesses inherit and libpq reads); for other databases serving is refused until the
password is supplied another way (a driver-specific environment variable or option file).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from synthpipe.generators.errors import ConfigError

FLOW_ENTRYPOINT = "synthpipe.flows.pipeline.synthpipe_run"
FLOW_NAME = "synthpipe-run"


def serve(
    config_path: str,
    cron: str,
    *,
    name: str | None = None,
    timezone: str | None = None,
    limit: int = 1,
) -> None:
    """Register a cron-scheduled deployment of the pipeline for `config_path` and serve it (blocks).

    `limit` caps concurrent runs in this process (runs on one output directory also take its lock).
    """
    deployment, env = build_deployment(config_path, cron, name=name, timezone=timezone)
    api_url = require_server()
    os.environ.update(env)
    from prefect import serve as prefect_serve

    print(
        f"serving {FLOW_NAME}/{deployment.name} on {api_url} with cron {cron!r}; Ctrl+C to stop", flush=True
    )
    prefect_serve(deployment, limit=limit, print_starting_message=False)


def build_deployment(
    config_path: str, cron: str, *, name: str | None = None, timezone: str | None = None
) -> tuple[Any, dict[str, str]]:
    """The Prefect RunnerDeployment for `config_path` and the environment its runs need.

    Validates the config and the cron string up front (ConfigError, exit 2).
    """
    from synthpipe.flows.config import load_config

    cfg = load_config(config_path)
    schedule = cron_schedule(cron, timezone)
    config = _absolute_paths(cfg.model_dump(mode="json", by_alias=True, exclude_none=True))
    parameters, env = deployment_parameters(config)
    deployment_name = name or Path(config_path).stem
    from prefect.deployments.runner import EntrypointType

    from synthpipe.flows.pipeline import synthpipe_run

    deployment = synthpipe_run.to_deployment(
        name=deployment_name,
        schedules=[schedule],
        parameters={"config": parameters},
        description=f"synthpipe run of {Path(config_path).resolve()} on cron {cron!r}",
        tags=["synthpipe"],
        # Load the flow by module path in the run subprocess: works for editable and plain installs.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return deployment, env


def cron_schedule(cron: str, timezone: str | None = None) -> Any:
    """A Prefect CronSchedule, or a ConfigError naming what is wrong with the cron string."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    if not isinstance(cron, str) or len(cron.split()) not in (5, 6):
        raise ConfigError(f'--cron {cron!r}: expected five fields, e.g. "0 2 * * *" (02:00 every day)')
    try:
        return CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        reason = "; ".join(err["msg"] for err in exc.errors())
        raise ConfigError(f"--cron {cron!r} (timezone {timezone!r}): {reason}") from None


def deployment_parameters(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(config without any source password, environment variables that carry it instead)."""
    from sqlalchemy.engine import make_url

    from synthpipe.flows.sql import is_sql_source, mask_url, to_sqlalchemy_url

    source = dict(config.get("source") or {})
    path = source.get("path")
    if not path or "://" not in str(path) or not is_sql_source(str(path)):
        return config, {}
    url = make_url(to_sqlalchemy_url(str(path)))
    if url.password is None:
        return config, {}
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"source {mask_url(str(path))} has a password in its URL; the deployment would store it on "
            "the Prefect server. Remove it from the URL and give it to the driver another way"
        )
    source["path"] = url._replace(password=None).render_as_string(hide_password=False)  # set() keeps None
    return {**config, "source": source}, {"PGPASSWORD": str(url.password)}


def _absolute_paths(config: dict[str, Any]) -> dict[str, Any]:
    """Runs execute in subprocesses whose working directory is Prefect's business: pin every local
    path (source, out, registry, expectations) to the directory `serve` was started in."""
    config = dict(config)
    source = dict(config.get("source") or {})
    if source.get("path") and "://" not in str(source["path"]):
        source["path"] = str(Path(source["path"]).expanduser().absolute())
        config["source"] = source
    for key in ("out", "registry", "expectations"):
        if isinstance(config.get(key), str):
            config[key] = str(Path(config[key]).expanduser().absolute())
    return config


def require_server() -> str:
    """The configured PREFECT_API_URL, checked to answer; a ConfigError says what to start."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise ConfigError(
            "synthpipe serve needs a Prefect server (the ephemeral mode cannot run schedules). Start one "
            "with `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    if not server_healthy(api_url):
        raise ConfigError(
            f"no Prefect server answers at PREFECT_API_URL={api_url}; start it with `prefect server start` "
            "(or fix PREFECT_API_URL)"
        )
    return api_url


def server_healthy(api_url: str, timeout_s: float = 5.0) -> bool:
    """True when `GET <api_url>/health` answers `true`."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout_s) as response:
            return response.status == 200 and json.loads(response.read() or b"null") is True
    except (urllib.error.URLError, OSError, ValueError):
        return False
