"""Sharded emission: the same rows for every runner (in process, a local Dask cluster, an
existing one), the part files' layout and statistics, and no partial output when a shard fails."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthpipe.flows.config import RunnerConfig, load_config, runner_config
from synthpipe.flows.emit import (
    DatasetPlan,
    column_stats,
    merge_stats,
    plan_shards,
    read_preview,
    run_emission,
)
from synthpipe.flows.io import atomic_directory, read_parquet_dataset, read_parquet_metadata
from synthpipe.generators.errors import ConfigError


@pytest.fixture(scope="module")
def model_dir(acs12, tmp_path_factory):
    """A small VAE saved as the flow saves it (safetensors + JSON)."""
    from synthpipe.generators import get_generator_class

    model = get_generator_class("vae")(epochs=1, batch_size=200, progress=False, seed=0).fit(acs12.head(400))
    path = tmp_path_factory.mktemp("model") / "model"
    model.save(path)
    return path


def _plan(directory, rows, seed=7, metadata=None) -> DatasetPlan:
    return DatasetPlan(directory=str(directory), rows=rows, seed=seed, metadata=metadata or {"rows": rows})


def _parts(directory) -> pd.DataFrame:
    return pd.concat([pq.read_table(p).to_pandas() for p in sorted(directory.glob("part-*.parquet"))],
                     ignore_index=True)


# ---- planning and statistics ---------------------------------------------------------------------------


def test_plan_shards_covers_every_row_once():
    shards = plan_shards("d", 2_500, seed=3, shard_rows=1_000, condition_start=10)
    assert [(s.index, s.start, s.rows, s.condition_start) for s in shards] == [
        (0, 0, 1000, 10), (1, 1000, 1000, 1010), (2, 2000, 500, 2010)]
    assert all(s.seed == 3 for s in shards) and shards[2].path.name == "part-00002.parquet"
    assert [(s.start, s.rows) for s in plan_shards("d", 0, seed=0)] == [(0, 0)]  # one empty part


def test_stats_merge_exactly():
    import pyarrow as pa

    kinds = {"x": "numerical", "c": "categorical", "f": "boolean", "i": "id"}
    a = pa.table({"x": [1.5, None, 3.0], "c": ["a", "b", "a"], "f": [True, None, False], "i": ["1", "2", "3"]})
    b = pa.table({"x": [-2.0, 0.0, None], "c": ["c", None, "a"], "f": [True, True, None], "i": ["4", "5", "6"]})
    whole = column_stats(pa.concat_tables([a, b]), kinds)
    assert merge_stats([column_stats(a, kinds), column_stats(b, kinds)]) == whole
    assert whole["x"] == {"count": 4, "nulls": 2, "min": -2.0, "max": 3.0}
    assert whole["c"] == {"count": 5, "nulls": 1, "categories": {"a": 3, "b": 1, "c": 1}, "other": 0}
    assert whole["f"]["categories"] == {True: 3, False: 1} and whole["i"] == {"count": 6, "nulls": 0}
    capped = merge_stats([column_stats(a, kinds, cap=1), column_stats(b, kinds, cap=1)], cap=1)
    assert capped["c"]["categories"] == {"a": 3} and capped["c"]["other"] == 2


# ---- in process ----------------------------------------------------------------------------------------


def test_shards_write_one_dataset_with_one_schema(model_dir, tmp_path):
    """Parts carry the same Arrow schema and key-value metadata as io.write_parquet's, the sidecar
    lists them, the statistics count every row, and the preview is the first rows read back."""
    from synthpipe.generators.base import BaseGenerator

    directory = tmp_path / "synthetic"
    [result] = run_emission(str(model_dir), [_plan(directory, 230, metadata={"rows": 230, "split": None})],
                            None, None, shard_rows=100, chunk_rows=40, device="cpu", submit=False)
    files = sorted(p.name for p in directory.glob("part-*.parquet"))
    assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    schemas = {pq.read_schema(directory / f) for f in files}
    assert len(schemas) == 1
    assert [pq.ParquetFile(directory / f).metadata.num_row_groups for f in files] == [3, 3, 1]  # chunk = group
    meta = read_parquet_metadata(directory)
    assert meta["rows"] == 230 and meta["metadata"] == {"rows": 230, "split": None} and meta["schema"]["columns"]
    assert result["rows"] == 230 and result["files"] == 3 and [s["rows"] for s in result["shards"]] == [100, 100, 30]
    table = read_parquet_dataset(directory)
    assert len(table) == 230
    income = result["columns"]["income"]
    assert income["count"] + income["nulls"] == 230 and income["min"] == pytest.approx(table["income"].min())
    assert result["columns"]["gender"]["categories"] == table["gender"].value_counts().to_dict()
    model = BaseGenerator.load(model_dir)
    first = model.sample(40, seed=7)
    preview = read_preview([directory], 40)
    pd.testing.assert_frame_equal(preview, first)


def test_rows_do_not_depend_on_shard_size(model_dir, tmp_path):
    """Row-addressable sampling (the generator contract): shard and chunk sizes move no row."""
    runs = []
    for shard_rows, chunk_rows in ((100, 40), (64, 64), (1_000, 1_000)):
        directory = tmp_path / f"s{shard_rows}"
        run_emission(str(model_dir), [_plan(directory, 230)], None, None, shard_rows, chunk_rows, "cpu", submit=False)
        runs.append(read_parquet_dataset(directory))
    pd.testing.assert_frame_equal(runs[0], runs[1])
    pd.testing.assert_frame_equal(runs[0], runs[2])


# ---- runners -------------------------------------------------------------------------------------------


def test_runner_settings_from_flags_and_files(tmp_path):
    assert runner_config() == RunnerConfig()
    assert runner_config(workers=2).workers == 2
    with pytest.raises(ConfigError, match="cannot be combined"):
        runner_config(workers=2, dask_address="tcp://127.0.0.1:8786")
    with pytest.raises(ConfigError, match="not SCHEME://HOST:PORT"):
        runner_config(dask_address="127.0.0.1")
    with pytest.raises(ConfigError, match="greater than or equal to 1"):
        runner_config(workers=0)
    path = tmp_path / "run.yaml"
    path.write_text("source: x.csv\nrunner: {address: 'tcp://10.0.0.5:8786', shard_rows: 5000}\n")
    assert load_config(path).runner == RunnerConfig(address="tcp://10.0.0.5:8786", shard_rows=5000)
    flagged = load_config(path, workers=3).runner  # a flag replaces the file's cluster, keeps the rest
    assert flagged == RunnerConfig(workers=3, shard_rows=5000)
    with pytest.raises(ConfigError, match="runner.shard_rows"):
        path.write_text("source: x.csv\nrunner: {shard_rows: 0}\n")
        load_config(path)


@pytest.fixture(scope="module")
def cluster():
    """A Dask cluster started apart from synthpipe, as an operator would (scheduler on 127.0.0.1)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as running:
        yield running


def test_flow_on_two_local_workers_writes_the_in_process_rows(acs12, tmp_path, prefect_harness):
    """The whole flow with splits, --balance and --augment: a 2-worker local Dask cluster writes
    exactly the Parquet contents of the in-process run."""
    from synthpipe.flows.config import RunConfig
    from synthpipe.flows.pipeline import synthpipe_run

    source = tmp_path / "people.csv"
    acs12.head(300).to_csv(source, index=False)
    outputs = {}
    for name, runner in (("local", {}), ("dask", {"workers": 2})):
        config = {
            "source": str(source), "generator": "gan", "params": {"epochs": 1, "batch_size": 100, "progress": False},
            "rows": 450,
            "out": str(tmp_path / name), "split": {"train": 0.6, "test": 0.4}, "balance": "race",
            "augment": True, "chunk_rows": 70, "runner": {"shard_rows": 100, **runner},
        }
        report = synthpipe_run(RunConfig.model_validate(config).model_dump(by_alias=True))
        assert report["output"]["shards"] == 5 and report["output"]["splits"] == {"train": 270, "test": 180}
        outputs[name] = tmp_path / name
    assert report["output"]["runner"] == "local dask cluster, 2 worker process(es)"
    for part in ("synthetic/train", "synthetic/test", "augmented"):
        local, remote = _parts(outputs["local"] / part), _parts(outputs["dask"] / part)
        pd.testing.assert_frame_equal(local, remote)
    emitted = pd.concat([_parts(outputs["local"] / "synthetic" / split) for split in ("train", "test")])
    assert sorted(emitted["race"].value_counts()) == [112, 112, 113, 113]  # the plan balances the whole output
    assert not list(outputs["dask"].rglob(".emit-conditions.parquet"))


def test_cli_sample_on_an_existing_cluster_matches_in_process(model_dir, tmp_path, prefect_harness, cluster):
    """`synthpipe sample --dask-address` on a separately started cluster writes the same rows
    as the in-process sample."""
    from synthpipe.flows.cli import main

    assert main(["sample", str(model_dir), "--rows", "500", "--seed", "3", "--out", str(tmp_path / "local")]) == 0
    code = main(["sample", str(model_dir), "--rows", "500", "--seed", "3", "--out", str(tmp_path / "dask"),
                 "--dask-address", cluster.scheduler_address])
    assert code == 0
    local, remote = _parts(tmp_path / "local" / "synthetic"), _parts(tmp_path / "dask" / "synthetic")
    assert len(local) == 500
    pd.testing.assert_frame_equal(local, remote)
    assert read_parquet_metadata(tmp_path / "dask" / "synthetic")["metadata"]["seed"] == 3


def test_a_failing_shard_leaves_no_output_and_the_last_good_one(model_dir, tmp_path, prefect_harness, cluster):
    """Shard 2 of 4 cannot put its part in place (a directory holds its name); the run fails
    after every other shard has stopped, and the previous output is untouched."""
    from synthpipe.flows.emit import emit_shards
    from synthpipe.flows.runners import task_runner_for

    out = tmp_path / "out"
    (out / "synthetic").mkdir(parents=True)
    (out / "synthetic" / "part-00000.parquet").write_bytes(b"last good")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    flow = emit_shards.with_options(task_runner=task_runner_for(RunnerConfig(address=cluster.scheduler_address)))
    with pytest.raises(IsADirectoryError), atomic_directory(out) as stage:
        (stage / "synthetic" / "part-00002.parquet" / "blocker").mkdir(parents=True)
        plan = {"directory": str(stage / "synthetic"), "rows": 400, "seed": 1, "metadata": {}}
        flow(str(model_dir), [plan], shard_rows=100, chunk_rows=50, device="cpu")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (out / "synthetic" / "part-00000.parquet").read_bytes() == b"last good"


def test_a_served_schedule_carries_the_runner_settings(tmp_path):
    """The deployment's config parameter holds `runner:`, which the flow reads at run time."""
    from synthpipe.flows.config import RunConfig
    from synthpipe.flows.schedule import build_deployment

    path = tmp_path / "nightly.yaml"
    path.write_text("source: people.csv\nout: out\nrunner: {workers: 2, shard_rows: 50000}\n")
    deployment, _ = build_deployment(str(path), "0 2 * * *")
    config = deployment.parameters["config"]
    assert config["runner"] == {"workers": 2, "shard_rows": 50000}
    assert RunConfig.model_validate(config).runner == RunnerConfig(workers=2, shard_rows=50000)
