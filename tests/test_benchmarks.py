"""The benchmark harness: its metrics on tables with a known answer, and a --quick run end to end
(real subprocesses, real SDV peer) so that the harness cannot rot unnoticed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.benchmarks import datasets, metrics, report, run
from synthpipe.generators import GENERATORS


def _table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 50, n),
            "city": rng.choice(["a", "b", "c"], n),
            "y": np.where(x + rng.normal(0, 0.5, n) > shift, "yes", "no"),
            "z": np.where(rng.random(n) < 0.1, np.nan, 2 * x + rng.normal(0, 0.1, n)),
        }
    )


def test_exact_copy_rate_ignores_dtype_and_null_representation():
    train = _table(200, 0)
    copies = train.iloc[:50].copy()
    copies["k"] = copies["k"].astype("float64")  # a generator may restore ints as floats
    copies["city"] = copies["city"].astype("category")
    fresh = _table(50, 1)
    assert metrics.exact_copy_rate(train, copies) == 1.0
    assert metrics.exact_copy_rate(train, fresh) == 0.0
    assert metrics.exact_copy_rate(train, pd.concat([copies, fresh])) == 0.5


def test_c2st_separates_shifted_data_and_not_same_distribution():
    real = _table(500, 0)
    same = metrics.c2st_auc(real, _table(500, 1), folds=3)
    shifted = metrics.c2st_auc(real, _table(500, 2, shift=3.0), folds=3)
    assert 0.4 < same < 0.6
    assert shifted > 0.95


def test_utility_ratio_is_one_when_synthetic_is_the_train_table():
    train, holdout = _table(800, 0), _table(300, 1)
    scores = metrics.utility(train, holdout, train, "y", "classification")
    assert scores["utility_ratio"] == pytest.approx(1.0)
    assert scores["utility_real"] > 0.8  # y depends on x, so real data predicts it well
    noise = train.assign(y=np.random.default_rng(3).permutation(train["y"].to_numpy()))
    assert metrics.utility(train, holdout, noise, "y", "classification")["utility_ratio"] < 0.8
    assert metrics.utility(train, holdout, train, "z", "regression")["utility_ratio"] == pytest.approx(1.0)


def test_dcr_ratio_flags_copies_and_passes_fresh_rows():
    train, holdout = _table(1_000, 0), _table(300, 1)
    assert metrics.dcr_ratio(train, holdout, train.iloc[:300])["dcr_ratio"] == 0.0
    fresh = metrics.dcr_ratio(train, holdout, _table(300, 2))["dcr_ratio"]
    assert 0.7 < fresh < 1.4


def test_split_is_seeded_and_disjoint():
    df = pd.DataFrame({"a": np.arange(100)})
    train, holdout = datasets.split(df, seed=0)
    again, _ = datasets.split(df, seed=0)
    other, _ = datasets.split(df, seed=1)
    assert len(train) == 80 and len(holdout) == 20
    assert set(train["a"]).isdisjoint(holdout["a"])
    assert train.equals(again) and not train.equals(other)


@pytest.mark.slow
def test_quick_run_writes_csv_markdown_and_plot(tmp_path, monkeypatch, capsys):
    # a generator family that is not built must be skipped with a message, not crash the run
    monkeypatch.setitem(GENERATORS, "gan", "synthpipe.generators.not_built_yet:CTGAN")
    systems = ["synthpipe-vae", "sdv-gaussiancopula", "synthpipe-gan"]
    argv = [
        "--quick",
        "--datasets",
        "cps1988",
        "--systems",
        *systems,
        "--max-rows",
        "600",
        "--budget",
        "2",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--docs",
        str(tmp_path / "docs"),
    ]
    csv_path = run.main(argv)
    assert "skipping synthpipe-gan" in capsys.readouterr().out

    rows = pd.read_csv(csv_path)
    assert set(rows["comparison"]) == {"equal_work", "equal_budget"}
    assert set(rows["system"]) == {"synthpipe-vae", "sdv-gaussiancopula"}
    assert len(rows) == 4  # 1 dataset x 2 systems x 1 seed x 2 comparisons
    assert (rows["status"] == "ok").all(), rows.get("message")
    assert rows[[c for c in rows.columns if c.endswith("_error")]].empty
    assert rows["quality"].between(0, 1).all() and rows["c2st_auc"].between(0, 1).all()
    assert (
        rows[["utility_ratio", "dcr_ratio", "exact_copy_rate", "peak_rss_mb", "sample_rows_per_s"]]
        .notna()
        .all()
        .all()
    )
    vae = rows[rows["system"] == "synthpipe-vae"].set_index("comparison")
    assert vae.loc["equal_work", "epochs_run"] == 2  # quick mode: 2 epochs, early stopping off
    assert vae.loc["equal_work", "train_rows_epochs_per_s"] > 0
    assert rows["n_train"].eq(480).all() and rows["cpu"].notna().all()

    md = (tmp_path / "docs" / "BENCHMARKS.md").read_text()
    for needle in (
        "## cps1988",
        "### Equal work",
        "### Equal budget",
        "`synthpipe-vae`",
        "`sdv-gaussiancopula`",
        "**synthpipe-vae / best peer**",
        "torch 2.",
        "quick smoke run",
    ):
        assert needle in md
    assert (tmp_path / "docs" / "benchmarks-cps1988.png").stat().st_size > 1_000

    # the report regenerates the same markdown from the CSV alone
    (tmp_path / "docs" / "BENCHMARKS.md").unlink()
    report.main([str(csv_path), "--docs", str(tmp_path / "docs")])
    assert (tmp_path / "docs" / "BENCHMARKS.md").read_text() == md
