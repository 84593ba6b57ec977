"""Shared test set-up: one CPU thread per test process, and small tables the project makes or ships."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from services import find_chromium, throwaway_postgres

torch.set_num_threads(1)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The README's bare `python -m pytest` must not write into the user's ~/.prefect: a private home
# per session unless one is given (set before anything imports prefect, which reads it once).
_OWN_PREFECT_HOME = None if "PREFECT_HOME" in os.environ else tempfile.mkdtemp(prefix="synthpipe-prefect-")
if _OWN_PREFECT_HOME:
    os.environ["PREFECT_HOME"] = _OWN_PREFECT_HOME

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PG_URL_VARIABLE = "SYNTHPIPE_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The PostgreSQL server the `postgres` tests use: SYNTHPIPE_TEST_PG_URL when set, otherwise a
    throwaway cluster started for this session (and exported, so subprocesses reach it too)."""
    if os.environ.get(PG_URL_VARIABLE):
        yield os.environ[PG_URL_VARIABLE]
        return
    with throwaway_postgres() as url:
        os.environ[PG_URL_VARIABLE] = url
        try:
            yield url
        finally:
            os.environ.pop(PG_URL_VARIABLE, None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium binary (installed with apt-get as root when missing; never skipped)."""
    return find_chromium()


@pytest.fixture(scope="module")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary Prefect server and home for one test module (flows run against it, not ~/.prefect)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # races the first migration
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def acs12() -> pd.DataFrame:
    """The shipped real table (US Census ACS 2012 sample via openintro, 2,000 rows)."""
    return pd.read_csv(EXAMPLES / "acs12.csv")


@pytest.fixture
def mixed_table() -> pd.DataFrame:
    """A small table with every column kind the schema knows, nulls included."""
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "amount": np.round(np.concatenate([rng.normal(50, 10, n // 2), rng.normal(200, 20, n - n // 2)]), 2),
            "count": rng.integers(0, 1000, n),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2024-01-01", tz="Europe/Paris") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
            "score": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "constant": "same",
        }
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OWN_PREFECT_HOME:
        shutil.rmtree(_OWN_PREFECT_HOME, ignore_errors=True)
