"""The benchmark harness: its metrics on tables with a known answer, and a --quick run end to end
(real subprocesses, real SDV peer) so that the harness cannot rot unnoticed. The TabularARGN peer
needs its own venv (benchmarks/setup_peer.sh), which CI does not build: these tests never depend
on it, and check that it is skipped with a message when it is absent."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from synthpipe.benchmarks import (
    c2st_attribution,
    datasets,
    gpu_check,
    metrics,
    peers,
    report,
    run,
    scale,
    snapshots,
)
from synthpipe.benchmarks.systems import unavailable_reason
from synthpipe.generators import GENERATORS, get_generator_class


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


def test_attribution_finds_a_joint_pattern_that_no_column_alone_shows():
    real, other = _table(600, 0), _table(600, 1)
    # every marginal as in the real table, but z no longer follows x: only the pair tells
    broken = other.assign(z=np.random.default_rng(3).permutation(other["z"].to_numpy()))
    table = c2st_attribution.attribution(real, broken, groups=[["x", "z"]]).set_index(["test", "columns"])["auc"]
    assert table["all", "*"] > 0.85
    assert table["group", "x,z"] > 0.85
    assert max(table["alone", c] for c in real.columns) < 0.65
    assert table["without", "z"] < 0.65 < table["without", "city"]
    with pytest.raises(SystemExit, match="unknown column"):
        c2st_attribution.attribution(real, broken, groups=[["x", "nope"]])


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


def test_param_values_parse_as_json_or_text_and_bad_ones_are_refused(capsys):
    args = run.parse_args(["--param", "n_bins=96", "--param", "hidden_dims=[64, 64]", "--param", "device=cpu"])
    assert args.params == {"n_bins": 96, "hidden_dims": [64, 64], "device": "cpu"}
    with pytest.raises(SystemExit):
        run.parse_args(["--param", "n_bins"])
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_split_is_seeded_and_disjoint():
    df = pd.DataFrame({"a": np.arange(100)})
    train, holdout = datasets.split(df, seed=0)
    again, _ = datasets.split(df, seed=0)
    other, _ = datasets.split(df, seed=1)
    assert len(train) == 80 and len(holdout) == 20
    assert set(train["a"]).isdisjoint(holdout["a"])
    assert train.equals(again) and not train.equals(other)


def test_peer_is_skipped_with_a_message_when_its_venv_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "PEER_VENV", tmp_path / "no-venv")
    reason = unavailable_reason("mostly-tabularargn")
    assert reason is not None and "setup_peer.sh" in reason and str(tmp_path / "no-venv") in reason


def test_snapshots_save_loadable_models_at_the_marks_of_one_run(acs12, tmp_path):
    cls = get_generator_class("vae")
    table = acs12.drop(columns=["person_id"]).head(300)
    model = cls(epochs=3, batch_size=100, patience=0, device="cpu", progress=False, seed=0)
    taker = snapshots.BudgetSnapshots([1e-9, 1e9], tmp_path / "snaps")
    with snapshots.attach(model, taker) as kwargs:
        model.fit(table, **kwargs)
    assert "_record" not in vars(model) and "_train" not in vars(model)  # the class's methods again
    taker.finish(model, model.fit_seconds_, len(model.history_["epoch"]))
    by_mark = {t["mark_s"]: t for t in taker.taken}
    assert set(by_mark) == {1e-9, 1e9}
    assert by_mark[1e-9]["reached"] and by_mark[1e-9]["epochs_run"] == 1  # saved after the first epoch
    assert not by_mark[1e9]["reached"] and by_mark[1e9]["epochs_run"] == 3  # training ended sooner
    for snap in taker.taken:
        rows = cls.load(snap["path"], device="cpu").sample(50, seed=1)
        assert list(rows.columns) == list(table.columns) and len(rows) == 50
    with pytest.raises(ValueError, match="positive"):
        snapshots.BudgetSnapshots([0], tmp_path)


def test_datasets_targets_exist_and_flights_drops_time_hour():
    loans = datasets.load_table("loans")
    spec = datasets.DATASETS["loans"]
    assert {spec.target, spec.target2} <= set(loans.columns) and len(loans) == 10_000
    flights = datasets.load_table("flights")
    assert "time_hour" not in flights.columns and flights.shape == (datasets.DEFAULT_MAX_ROWS, 18)
    assert flights.attrs["n_rows_source"] == 336_776 and flights["arr_delay"].isna().any()
    assert datasets.load_table("flights").equals(flights)  # the same fixed subsample every time


def test_gpu_check_scores_and_flags_mismatches(acs12):
    real = acs12.drop(columns=["person_id"])
    assert gpu_check.shape_score(real, real) == pytest.approx(1.0)
    shuffled = real.apply(lambda c: c.sample(frac=1.0, random_state=0).to_numpy())
    assert gpu_check.shape_score(real, shuffled) == pytest.approx(1.0)  # marginals only
    constant = real.assign(age=0, race="nobody")
    assert gpu_check.shape_score(real, constant) < gpu_check.shape_score(real, real) - 0.1
    cpu = {"columns": ["a", "b"], "dtypes": ["int64", "object"], "rows": 10, "quality": 0.9}
    assert gpu_check.compare(cpu, dict(cpu), 0.05) == []
    problems = gpu_check.compare(cpu, {**cpu, "dtypes": ["float64", "object"], "quality": 0.8}, 0.05)
    assert any("a: int64 vs float64" in p for p in problems) and any("quality differs" in p for p in problems)


def test_scale_tiles_and_measures_a_process_tree():
    import pyarrow as pa

    base = pa.table({"i": list(range(5))})
    assert scale._tile(base, 3, 9).column("i").to_pylist() == [3, 4, 0, 1, 2, 3, 4, 0, 1]
    # a child that holds ~200 MB, itself started by a shell: the monitor sees the grandchild
    code = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    result = scale.run_monitored(["sh", "-c", f'"{sys.executable}" -c "{code}"'], 60, scale.REPO)
    assert result["rc"] == 0 and result["processes"] >= 2
    assert result["peak_rss_mb"] >= 180
    timed_out = scale.run_monitored([sys.executable, "-c", "import time; time.sleep(30)"], 0.5, scale.REPO)
    assert timed_out["rc"] == "timeout"
    # a tree past its memory cap is killed before it can take the machine down (SDV CTGAN at 1M rows)
    hog = "import time; b = bytearray(400 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    capped = scale.run_monitored([sys.executable, "-c", hog], 60, scale.REPO, memory_cap_mb=200)
    assert capped["rc"] == "memory" and capped["wall_s"] < 30


@pytest.mark.slow
def test_quick_run_writes_csv_markdown_and_plot(tmp_path, monkeypatch, capsys):
    # a generator family that is not built must be skipped with a message, not crash the run
    monkeypatch.setitem(GENERATORS, "gan", "synthpipe.generators.not_built_yet:CTGAN")
    # so must the peer whose venv is absent (as in CI), whether or not this machine has one
    monkeypatch.setattr(peers, "PEER_VENV", tmp_path / "no-venv")
    systems = ["synthpipe-vae", "sdv-gaussiancopula", "synthpipe-gan", "mostly-tabularargn"]
    argv = [
        "--quick",
        "--comparisons",
        "equal_work",
        "equal_budget",
        "time_to_quality",
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
        "--param",
        "latent_dim=16",
        "--out",
        str(tmp_path / "out"),
        "--docs",
        str(tmp_path / "docs"),
        "--keep-tables",
        str(tmp_path / "tables"),
    ]
    csv_path = run.main(argv)
    out = capsys.readouterr().out
    assert "skipping synthpipe-gan" in out
    assert "skipping mostly-tabularargn" in out and "setup_peer.sh" in out

    rows = pd.read_csv(csv_path)
    reference = rows[rows["system"] == "real-rows"]
    rows = rows[rows["system"] != "real-rows"]
    # real train rows scored against the holdout once per cell: near-indistinguishable, and what
    # a second real sample scores (a generator on 2 epochs stays below it)
    assert len(reference) == 1 and reference["comparison"].eq("reference").all()
    assert reference["status"].eq("ok").all() and reference["c2st_auc"].between(0.35, 0.65).all()
    assert reference["quality"].iloc[0] > rows.loc[rows["system"] == "synthpipe-vae", "quality"].max()
    assert set(rows["comparison"]) == {"equal_work", "equal_budget", "time_to_quality"}
    assert set(rows["system"]) == {"synthpipe-vae", "sdv-gaussiancopula"}
    # 1 dataset x 2 systems x 1 seed x (2 comparisons + 2 time-to-quality marks)
    assert len(rows) == 8
    ttq = rows[rows["comparison"] == "time_to_quality"].set_index(["system", "mark_s"])
    assert sorted(ttq.index) == [(s, m) for s in ("sdv-gaussiancopula", "synthpipe-vae") for m in (1.0, 2.0)]
    vae_ttq = ttq.loc["synthpipe-vae"]
    assert (vae_ttq["snapshot_method"] == "one run, saved at each mark").all()
    assert vae_ttq["epochs_run"].is_monotonic_increasing and vae_ttq["c2st_auc"].between(0, 1).all()
    assert rows["utility2_ratio"].notna().all()  # cps1988's second target, parttime
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
    assert "latent_dim=16" in vae.loc["equal_work", "net"]  # --param wins over the matched width
    assert rows["n_train"].eq(480).all() and rows["cpu"].notna().all()

    # --keep-tables: the cell's split and every scored synthetic table, as the scores saw them
    kept = {p.name: pd.read_parquet(p) for p in (tmp_path / "tables").iterdir()}
    assert len(kept["cps1988-seed0-holdout.parquet"]) == 120 and len(kept["cps1988-seed0-train.parquet"]) == 480
    # GaussianCopula is fitted once and that one table serves every comparison, so it is kept once
    stem = "cps1988-seed0"
    assert set(kept) == {
        f"{stem}-{name}.parquet"
        for name in (
            "holdout",
            "train",
            "synthpipe-vae-equal_work",
            "synthpipe-vae-equal_budget",
            "synthpipe-vae-time_to_quality-1s",
            "synthpipe-vae-time_to_quality-2s",
            "sdv-gaussiancopula-equal_work",
        )
    }
    assert list(kept["cps1988-seed0-synthpipe-vae-equal_work.parquet"].columns) == list(
        kept["cps1988-seed0-holdout.parquet"].columns)

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
        "### Time to quality",
        "real repeat rate",
        "*Real rows*: the train rows scored against the holdout",
    ):
        assert needle in md
    assert (tmp_path / "docs" / "benchmarks-cps1988.png").stat().st_size > 1_000
    assert (tmp_path / "docs" / "benchmarks-ttq-cps1988.png").stat().st_size > 1_000

    # the report regenerates the same markdown from the CSV alone
    (tmp_path / "docs" / "BENCHMARKS.md").unlink()
    report.main([str(csv_path), "--docs", str(tmp_path / "docs")])
    assert (tmp_path / "docs" / "BENCHMARKS.md").read_text() == md


def test_report_takes_a_run_found_in_several_csvs_from_the_first_and_says_where_others_come_from(tmp_path):
    """Combining a new run of one system with an older CSV must not count a seed twice."""
    base = {"date": "2026-12-02", "git": "new", "dataset": "cps1988", "comparison": "equal_budget", "seed": 0}
    new = pd.DataFrame([{**base, "system": "mostly-tabularargn", "c2st_auc": 0.7}])
    old = pd.DataFrame(
        [
            {**base, "git": "old", "system": "mostly-tabularargn", "c2st_auc": 0.9},
            {**base, "git": "old", "system": "synthpipe-vae", "c2st_auc": 0.8},
        ]
    )
    new.to_csv(tmp_path / "new.csv", index=False)
    old.to_csv(tmp_path / "old.csv", index=False)
    runs = report.load([tmp_path / "new.csv", tmp_path / "old.csv"])
    assert sorted(zip(runs["system"], runs["c2st_auc"], strict=True)) == [
        ("mostly-tabularargn", 0.7),
        ("synthpipe-vae", 0.8),
    ]
    assert report.provenance(runs) == ["- `synthpipe-vae` equal_budget figures come from git `old` (2026-12-02), not the run above"]


def test_codec_oracle_keeps_tokens_and_redraws_values_within_their_bins(acs12):
    """The oracle is the table a perfect model of the tokens would emit: every cell re-encodes
    to the token of its source cell, while continuous values move within the bin."""
    from synthpipe.benchmarks.codec_oracle import oracle_table
    from synthpipe.generators.ar_codec import TokenCodec
    from synthpipe.generators.schema import infer_schema

    table = oracle_table(acs12, n_bins=16, seed=0, censor=False)
    assert list(table.columns) == list(acs12.columns) and len(table) == len(acs12)
    codec = TokenCodec(n_bins=16, min_category_count=5).fit(acs12, infer_schema(acs12), 0)
    np.testing.assert_array_equal(codec.encode(table).tokens, codec.encode(acs12).tokens)
    income = acs12["income"].notna()
    assert (table["income"][income] != acs12["income"][income]).mean() > 0.5
