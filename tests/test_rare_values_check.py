"""privacy_rare_values: rare training values replayed by the synthetic table are found and gated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.transforms import PROTECTED_VALUE
from synthpipe.validators import run_check
from synthpipe.validators.rare_values import wilson_interval


def _table(n: int, seed: int, rare: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["Oslo", "Lima", "Pune"], n).astype(object)
    city[: len(rare)] = rare
    return pd.DataFrame({"city": city, "age": rng.integers(18, 90, n)})


def test_replayed_rare_value_fails_and_is_named():
    train = _table(400, 0, ["Riga", "Riga", "Baku"])
    synthetic = _table(300, 1, ["Riga"])
    result = run_check("privacy_rare_values", train, synthetic, config={"bootstrap_reps": 0})
    assert result.passed is False and result.score == pytest.approx(1 / 300)
    assert result.extra["rare_values"] == 2 and result.extra["replayed_values"] == 1
    row = result.details.set_index("column").loc["city"]
    assert row["synthetic rows carrying them"] == 1 and "'Riga'" in row["examples replayed"]
    assert result.interval[0] < result.score < result.interval[1]


def test_protected_output_passes_and_holdout_rate_is_reported_not_gated():
    train = _table(400, 0, ["Riga", "Riga", "Baku"])
    synthetic = _table(300, 1, [PROTECTED_VALUE] * 4)
    holdout = _table(100, 2, ["Baku"])
    result = run_check("privacy_rare_values", train, synthetic, holdout=holdout, config={"bootstrap_reps": 0})
    assert result.passed is True and result.score == 0.0
    assert result.extra["natural_rate"] == pytest.approx(0.01)
    assert result.interval[0] == 0.0 and 0 < result.interval[1] < 0.02


def test_threshold_follows_the_configured_rarity():
    train = _table(400, 0, ["Riga"] * 6)
    synthetic = _table(300, 1, ["Riga"])
    assert run_check("privacy_rare_values", train, synthetic).passed is None  # 6 rows: not rare at 5
    assert run_check("privacy_rare_values", train, synthetic, config={"rare_value_min_count": 7}).passed is False
    numbers_only = train.drop(columns="city")
    result = run_check("privacy_rare_values", numbers_only, synthetic.drop(columns="city"))
    assert result.passed is None and "no categorical" in result.summary


def test_streamed_dataset_checks_every_row(tmp_path):
    train = _table(400, 0, ["Riga", "Baku"])
    synthetic = _table(4_000, 1, [])
    synthetic.loc[3_999, "city"] = "Baku"  # the last row of the last part file
    (tmp_path / "synthetic").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(synthetic)), 4)):
        synthetic.iloc[part].to_parquet(tmp_path / "synthetic" / f"part-{i}.parquet")
    result = run_check("privacy_rare_values", train, synthetic.head(100), synthetic_path=tmp_path / "synthetic",
                       config={"stream_batch_rows": 1_000})
    assert result.passed is False and result.extra["carrying_rows"] == 1 and result.extra["rows_seen"] == 4_000


def test_wilson_interval_brackets_the_share():
    lo, hi = wilson_interval(5, 100, 0.95)
    assert lo < 0.05 < hi and wilson_interval(0, 0, 0.95) is None


@pytest.mark.parametrize("name", ["vae", "autoregressive"])
def test_a_synthpipe_generator_keeps_the_promise(name):
    from synthpipe.generators import get_generator_class

    train = _table(600, 0, ["Riga", "Riga", "Baku", "Kyiv", "Kyiv", "Kyiv"])
    model = get_generator_class(name)(epochs=2, batch_size=200, seed=0, progress=False).fit(train)
    result = run_check("privacy_rare_values", train, model.sample(3_000, seed=1), config={"bootstrap_reps": 0})
    assert result.extra["rare_values"] == 3
    assert result.passed is True and result.extra["carrying_rows"] == 0, result.details
