"""Shared test set-up: one CPU thread per test process, and small tables the project makes or ships."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
