"""Model registry: atomic, locked registration; lookup; the reuse-or-retrain decision."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from forked import run_together

from synthpipe.flows.registry import (
    ModelRegistry,
    decide_reuse,
    default_shift_test,
    frame_fingerprint,
    make_config_key,
)
from synthpipe.generators.errors import ModelError
from synthpipe.generators.schema import infer_schema


@pytest.fixture
def halves(acs12):
    """Two random halves of the shipped table: two snapshots of one distribution."""
    shuffled = acs12.sample(frac=1.0, random_state=1).reset_index(drop=True)
    return shuffled.iloc[:1000].reset_index(drop=True), shuffled.iloc[1000:].reset_index(drop=True)


def _fake_model(path, text="weights"):
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.json").write_text(json.dumps({"generator": "vae", "text": text}))
    (path / "model.safetensors").write_bytes(b"\x00" * 64)
    return path


def _register(registry, tmp_path, df, key="k1", fingerprint="fp1", text="weights"):
    return registry.register(
        _fake_model(tmp_path / f"model-{text}", text),
        config_key=key,
        fingerprint=fingerprint,
        metrics={"quality": np.float64(0.83), "passed": True},
        fit_seconds=12.5,
        snapshot_df=df,
        schema_dict=infer_schema(df).to_dict(),
    )


def test_register_and_lookup(tmp_path, acs12):
    registry = ModelRegistry(tmp_path / "reg", sample_rows=500)
    assert registry.lookup("k1") is None
    first = _register(registry, tmp_path, acs12, text="one")
    second = _register(registry, tmp_path, acs12, fingerprint="fp2", text="two")
    other = _register(registry, tmp_path, acs12.head(100), key="k2", text="three")
    latest = registry.lookup("k1")
    assert latest.id == second.id and latest.fingerprint == "fp2" and first.id != second.id
    assert registry.lookup("k2").id == other.id
    assert [e.id for e in registry.entries("k1")] == [first.id, second.id]
    # The model folder was copied in, byte for byte, and the profile is a bounded sample.
    assert json.loads((latest.model_dir / "model.json").read_text())["text"] == "two"
    assert latest.model_dir.is_relative_to(tmp_path / "reg")
    snapshot = latest.snapshot()
    assert len(snapshot) == 500 and list(snapshot.columns) == list(acs12.columns)
    assert snapshot["age"].dtype == acs12["age"].dtype
    assert (
        latest.rows == 2000
        and latest.fit_seconds == 12.5
        and latest.metrics == {"quality": 0.83, "passed": True}
    )
    assert latest.schema["columns"][1]["name"] == "income" and latest.data_hash == frame_fingerprint(acs12)
    assert registry.get(first.id).to_dict() == first.to_dict()
    # Entries survive a fresh registry object (the JSON index is the source of truth).
    assert ModelRegistry(tmp_path / "reg").lookup("k1").to_dict() == latest.to_dict()


def test_failed_registration_leaves_no_entry(tmp_path, acs12):
    registry = ModelRegistry(tmp_path / "reg")
    good = _register(registry, tmp_path, acs12.head(200), text="good")
    broken = _fake_model(tmp_path / "broken")
    os.symlink(tmp_path / "does-not-exist", broken / "dangling")  # copying it fails mid-way
    with pytest.raises(OSError):
        registry.register(
            broken, "k1", "fpX", {}, 1.0, acs12.head(200), infer_schema(acs12.head(200)).to_dict()
        )
    assert registry.lookup("k1").id == good.id and len(registry.entries()) == 1
    assert sorted(p.name for p in (tmp_path / "reg" / "models").iterdir()) == [good.id]
    assert not list((tmp_path / "reg" / "entries").glob(".*"))
    with pytest.raises(ModelError, match="not a saved model directory"):
        registry.register(tmp_path / "nope", "k1", "fp", {}, 1.0, acs12, {})


def test_corrupt_entry_is_reported(tmp_path, acs12):
    registry = ModelRegistry(tmp_path / "reg")
    entry = _register(registry, tmp_path, acs12.head(50))
    (tmp_path / "reg" / "entries" / f"{entry.id}.json").write_text("{not json")
    with pytest.raises(ModelError, match=f"registry entry .*{entry.id}.json is corrupt"):
        registry.lookup("k1")


def _register_many(root, tmp, worker, n):
    registry = ModelRegistry(root)
    df = pd.DataFrame({"x": np.arange(50) + worker, "c": ["a", "b"] * 25})
    for i in range(n):
        model = _fake_model(tmp / f"w{worker}-{i}", f"{worker}-{i}")
        registry.register(model, "shared", f"fp{worker}-{i}", {"i": i}, 0.1, df, infer_schema(df).to_dict())


def test_concurrent_registrations_are_all_kept(tmp_path):
    workers = [(tmp_path / "reg", tmp_path, w, 5) for w in range(3)]
    assert run_together(_register_many, workers, timeout_s=120) == [0, 0, 0]
    entries = ModelRegistry(tmp_path / "reg").entries("shared")
    assert len(entries) == 15 and len({e.id for e in entries}) == 15
    for entry in entries:
        expected = entry.fingerprint[2:]
        assert json.loads((entry.model_dir / "model.json").read_text())["text"] == expected
        assert len(entry.snapshot()) == 50


def test_reuse_decisions(tmp_path, halves):
    old, new = halves
    registry = ModelRegistry(tmp_path / "reg", sample_rows=1000)
    assert decide_reuse(None, new) == (False, "no registered model for this configuration")
    entry = _register(registry, tmp_path, old, fingerprint="sha-old")

    assert decide_reuse(entry, new, fingerprint="sha-old") == (True, "same data")
    assert registry.decide_reuse(entry, old.copy()) == (True, "same data")  # same content, no fingerprint

    reused, reason = decide_reuse(entry, new, fingerprint="sha-new")
    assert reused and reason.startswith("no shift:") and "none shifted" in reason

    richer = new.assign(income=new["income"] * 1.6)
    reused, reason = decide_reuse(entry, richer, fingerprint="sha-richer")
    assert not reused and reason.startswith("distribution shift:") and "income (KS" in reason

    men = pd.concat([new[new["gender"] == "male"]] * 2, ignore_index=True)
    reused, reason = decide_reuse(entry, men)
    assert not reused and "gender (chi-squared" in reason

    reused, reason = decide_reuse(entry, new.drop(columns=["lang"]).assign(extra=1))
    assert not reused and reason == "columns changed: added ['extra'], removed ['lang']"

    reused, reason = decide_reuse(entry, new.assign(age=new["age"].astype("float64")))
    assert not reused and reason == "column types changed: age int64 -> float64"


def test_injected_shift_function_decides(tmp_path, halves):
    old, new = halves
    entry = _register(ModelRegistry(tmp_path / "reg", sample_rows=300), tmp_path, old)
    seen = {}

    def shift_fn(reference, current, schema):
        seen.update(reference=len(reference), current=len(current), columns=len(schema["columns"]))
        return True, "covariate shift AUC 0.71 > 0.6"

    assert decide_reuse(entry, new, shift_fn, sample_rows=300) == (
        False,
        "distribution shift: covariate shift AUC 0.71 > 0.6",
    )
    assert seen == {"reference": 300, "current": 300, "columns": 14}


def test_default_shift_test_handles_nulls_datetimes_and_booleans():
    rng = np.random.default_rng(0)
    n = 800

    def table(null_rate, days, p_true):
        return pd.DataFrame(
            {
                "x": np.where(rng.random(n) < null_rate, np.nan, rng.normal(0, 1, n)),
                "t": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, days, n), "D"),
                "b": rng.random(n) < p_true,
            }
        )

    base = table(0.1, 100, 0.5)
    schema = infer_schema(base).to_dict()
    shifted, summary = default_shift_test(base, table(0.1, 100, 0.5), schema)
    assert not shifted and "none shifted" in summary
    shifted, summary = default_shift_test(base, table(0.4, 100, 0.5), schema)
    assert shifted and "x (null rate" in summary
    shifted, summary = default_shift_test(base, table(0.1, 300, 0.5), schema)
    assert shifted and "t (KS" in summary
    shifted, summary = default_shift_test(base, table(0.1, 100, 0.8), schema)
    assert shifted and "b (chi-squared" in summary


def test_tiny_but_significant_differences_do_not_retrain():
    rng = np.random.default_rng(1)
    a = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    b = pd.DataFrame({"x": rng.normal(0.03, 1, 200_000)})  # p << alpha at this size, effect ~0.012
    shifted, summary = default_shift_test(a, b, infer_schema(a).to_dict())
    assert not shifted and "smallest p=" in summary


def test_config_key_and_fingerprint_are_stable(acs12):
    assert make_config_key({"b": 1, "a": [1, 2]}) == make_config_key({"a": [1, 2], "b": 1})
    assert make_config_key({"a": 1}) != make_config_key({"a": 2}) and len(make_config_key({})) == 16
    assert frame_fingerprint(acs12) == frame_fingerprint(acs12.copy())
    changed = acs12.copy()
    changed.loc[5, "income"] += 1
    assert frame_fingerprint(changed) != frame_fingerprint(acs12)
    assert frame_fingerprint(acs12.astype({"age": "float64"})) != frame_fingerprint(acs12)


@pytest.mark.slow
def test_registered_generator_loads_and_samples(tmp_path, acs12):
    from synthpipe.generators.base import BaseGenerator
    from synthpipe.generators.vae import TVAE

    data = acs12.head(300)
    model = TVAE(epochs=2, batch_size=100, progress=False, seed=3).fit(data)
    model.save(tmp_path / "trained")
    entry = ModelRegistry(tmp_path / "reg").register(
        tmp_path / "trained", "k", "fp", {"quality": 0.7}, 1.0, data, model.schema_.to_dict()
    )
    restored = BaseGenerator.load(entry.model_dir)
    assert restored.sample(20, seed=5).equals(model.sample(20, seed=5))


def _profile(df):
    """The whole-table profile ingest would compute for `df` (in batches, as a scan feeds it)."""
    import pyarrow as pa

    from synthpipe.generators.profile import ProfileAccumulator

    accumulator = ProfileAccumulator()
    for batch in pa.Table.from_pandas(df, preserve_index=False).to_batches(max_chunksize=300):
        accumulator.update(batch)
    return accumulator.result()


def test_the_drift_check_compares_whole_table_profiles(tmp_path, halves):
    old, new = halves
    registry = ModelRegistry(tmp_path / "reg", sample_rows=200)  # a small snapshot: the profile counts every row
    entry = registry.register(
        _fake_model(tmp_path / "m"), "k1", "fp-old", {}, 1.0, old, infer_schema(old).to_dict(), profile=_profile(old)
    )
    assert entry.profile_path.name == "profile.json" and entry.rows == 1000
    stored = registry.lookup("k1")
    assert stored.profile().to_dict() == _profile(old).to_dict() and stored.to_dict() == entry.to_dict()

    reused, reason = registry.decide_reuse(entry, new, profile=_profile(new))
    assert reused and reason.startswith("no shift: whole-table profiles (1,000 -> 1,000 rows)"), reason
    assert "chi-squared (whole table)" not in reason.split(":")[1]  # none shifted
    ranges_note = reason

    men = pd.concat([new[new["gender"] == "male"]] * 2, ignore_index=True)
    reused, reason = registry.decide_reuse(entry, men, profile=_profile(men))
    assert not reused and "gender (chi-squared (whole table)" in reason, reason

    # 40% nulls in a column the sample snapshot would test on 200 rows: counted on every row
    holes = new.assign(hrs_work=new["hrs_work"].where(np.random.default_rng(0).random(len(new)) > 0.4))
    reused, reason = registry.decide_reuse(entry, holes, profile=_profile(holes))
    assert not reused and "hrs_work (null rate (whole table)" in reason, reason

    # values a model fitted on `old` may emit and the new table lacks are named (two halves of one
    # table rarely share their extremes, so this alone does not retrain)
    assert "ranges changed: income range [0.0, 450000.0] is not within the new table's [0.0, 399000.0]" in ranges_note
    no_asians = new[new["race"] != "asian"].reset_index(drop=True)  # 4% of the rows: below min_effect
    reused, reason = registry.decide_reuse(entry, no_asians, profile=_profile(no_asians))
    assert reused and "race categories 'asian' are no longer in the table" in reason, reason


def test_an_entry_without_a_profile_is_compared_on_its_snapshot(tmp_path, halves):
    """Entries registered before profiles were kept still decide, on the sample snapshot, and say so."""
    old, new = halves
    registry = ModelRegistry(tmp_path / "reg", sample_rows=1000)
    entry = _register(registry, tmp_path, old)
    path = tmp_path / "reg" / "entries" / f"{entry.id}.json"
    record = json.loads(path.read_text())
    assert record.pop("profile_path") is None
    path.write_text(json.dumps(record))  # the entry format before this change
    legacy = registry.lookup("k1")
    assert legacy.profile_path is None and legacy.profile() is None
    reused, reason = registry.decide_reuse(legacy, new, profile=_profile(new))
    assert reused and reason.endswith("(sample snapshot only: the entry has no whole-table profile)"), reason
    richer = new.assign(income=new["income"] * 1.6)
    reused, reason = registry.decide_reuse(legacy, richer, profile=_profile(richer))
    assert not reused and "income (KS" in reason


def test_profile_counts_keep_the_rows_a_cut_list_leaves_out():
    from synthpipe.generators.profile import ColumnProfile
    from synthpipe.validators import drift

    full = ColumnProfile("c", "string", nulls=5, frequencies=[["a", 50], ["b", 30], ["c", 15]])
    cut = ColumnProfile("c", "string", nulls=10, frequencies=[["a", 60], ["d", 20]], frequencies_truncated=True)
    # "b" and "c" are unknown in the cut list (they are in its "other" rows); "d" is known absent from the full one
    a, b = drift.profile_counts((full, 100), (cut, 100))
    assert a.tolist() == [50, 0, 5, 45] and b.tolist() == [60, 20, 10, 10]
    assert drift.profile_counts((full, 100), (ColumnProfile("c", "string", distinct_capped=True), 100)) is None
    tests = drift.column_tests(pd.DataFrame(), pd.DataFrame(), [{"name": "c", "kind": "categorical"}],
                               (_table_profile(full, 100), _table_profile(cut, 100)))
    assert [t.test for t in tests] == ["chi-squared (whole table)"] and tests[0].effect == pytest.approx(0.35)  # (0.1 + 0.2 + 0.05 + 0.35) / 2


def _table_profile(column, rows):
    from synthpipe.generators.profile import TableProfile

    return TableProfile(rows=rows, columns=[column])
