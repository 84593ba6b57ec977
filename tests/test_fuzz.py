"""Fuzzing: random small tables through fit -> sample -> write -> validate, for every generator
(issue 14, point 8). Every case ends in valid output or a SynthpipeError, never another exception
type, and no validation check crashes (a crash would become a failed check with an "error").

Tables mix every kind the schema knows (floats, ints, nullable ints, booleans, strings,
categoricals, datetimes with and without zones), nulls, unicode and CSV-style duplicate names,
constant columns, extremes (+-1e308, denormals, ints beyond 2**53, inf) and mixed types in object
columns. Examples are derandomised, so a failure reproduces; SYNTHPIPE_FUZZ_EXAMPLES raises the
count for a local soak run (e.g. SYNTHPIPE_FUZZ_EXAMPLES=500).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthpipe.flows.io import write_parquet
from synthpipe.generators import get_generator_class
from synthpipe.generators.errors import SynthpipeError
from synthpipe.validators import run_validation

EXAMPLES = int(os.environ.get("SYNTHPIPE_FUZZ_EXAMPLES", "10"))  # per generator
TINY: dict[str, dict[str, Any]] = {
    "vae": {"hidden_dims": (8,), "latent_dim": 4},
    "gan": {"generator_dims": (8,), "discriminator_dims": (8,), "embedding_dim": 4, "pac": 2},
    "autoregressive": {"d_model": 8, "n_heads": 2, "n_layers": 1, "n_bins": 8},
}
COMMON = {"batch_size": 16, "progress": False, "device": "cpu", "max_fit_rows": 500}
# the validation suite, cut to what a 40-row table can support quickly
VALIDATION = {"cv_folds": 2, "bootstrap_reps": 20, "max_rows": 200, "privacy_max_rows": 200}

BENIGN_FLOATS = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.0, 1e150, -1e150, float("nan")]
EXTREME_FLOATS = [1e308, -1e308, float("inf"), float("-inf")]
SPECIAL_INTS = [0, 1, -1, 2**53 + 1, -(2**53) - 1, 2**62, -(2**63), 2**63 - 1]
NAMES = [
    "a",
    "a.1",
    "",
    " ",
    "x y",
    "名前",
    "é",
    "<b>",
    "=1+1",
    "../x",
    "a\x00b",
    "\u202e",
    "NaN",
    "None",
    "0",
]


def _floats(n: int) -> st.SearchStrategy:
    """Mostly ordinary columns (denormals, NaN, +-1e150 included); a third with +-1e308 or inf."""
    plain = st.one_of(st.sampled_from(BENIGN_FLOATS), st.floats(-1e12, 1e12))
    extreme = st.one_of(plain, st.sampled_from(EXTREME_FLOATS), st.floats(allow_nan=False))
    values = st.one_of(st.lists(plain, min_size=n, max_size=n), st.lists(plain, min_size=n, max_size=n),
                       st.lists(extreme, min_size=n, max_size=n))  # fmt: skip
    return values.map(lambda v: pd.Series(v, dtype="float64"))


def _ints(n: int) -> st.SearchStrategy:
    value = st.one_of(st.sampled_from(SPECIAL_INTS), st.integers(-5, 5), st.integers(-(2**63), 2**63 - 1))
    return st.lists(value, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="int64"))


def _nullable_ints(n: int) -> st.SearchStrategy:
    value = st.one_of(st.none(), st.sampled_from(SPECIAL_INTS), st.integers(-3, 3))
    return st.lists(value, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="Int64"))


def _bools(n: int) -> st.SearchStrategy:
    plain = st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="bool"))
    nullable = st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n).map(
        lambda v: pd.Series(v, dtype="boolean")
    )
    return st.one_of(plain, nullable)


def _strings(n: int) -> st.SearchStrategy:
    value = st.one_of(st.none(), st.sampled_from(["x", "y", "<script>", "=cmd|' /C calc'!A0", "", "\x00"]),
                      st.text(max_size=6))  # fmt: skip
    return st.lists(value, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype=object))


def _categoricals(n: int) -> st.SearchStrategy:
    return st.lists(st.sampled_from(["lo", "mid", "hi", None]), min_size=n, max_size=n).map(
        lambda v: pd.Series(pd.Categorical(v, categories=["lo", "mid", "hi"], ordered=True))
    )


def _datetimes(n: int) -> st.SearchStrategy:
    stamp = st.one_of(
        st.none(),
        st.datetimes(min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
                     max_value=pd.Timestamp("2250-01-01").to_pydatetime()),
        st.sampled_from([pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11"), pd.Timestamp("2024-03-31 02:30")]),
    )  # fmt: skip
    zone = st.sampled_from([None, "UTC", "Europe/Paris", "America/St_Johns", "Asia/Kathmandu"])

    def build(values: list, tz: str | None) -> pd.Series:
        s = pd.Series(pd.to_datetime(values))
        return s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT") if tz else s

    return st.builds(build, st.lists(stamp, min_size=n, max_size=n), zone)


def _mixed(n: int) -> st.SearchStrategy:
    value = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=3), st.booleans(),
                      st.just(pd.Timestamp("2024-01-01")))  # fmt: skip
    return st.lists(value, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype=object))


def _constant(n: int) -> st.SearchStrategy:
    return st.sampled_from([1.5, 7, "same", True, None, float("inf")]).map(lambda v: pd.Series([v] * n))


# ordinary kinds twice as often as mixed-type object and constant columns
KINDS = [_floats, _ints, _nullable_ints, _bools, _strings, _categoricals, _datetimes] * 2 + [
    _mixed,
    _constant,
]


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(2, 40))  # 0 and 1 rows: a DataError, tested in test_vae and below
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    names = draw(st.lists(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), min_size=len(kinds),
                          max_size=len(kinds), unique=True))  # fmt: skip
    if (
        len(names) > 1 and draw(st.integers(0, 7)) == 0
    ):  # now and then a repeated name, as a CSV header can have
        names[-1] = names[0]
    columns = [draw(kind(n)).reset_index(drop=True) for kind in kinds]
    frame = pd.concat(columns, axis=1, ignore_index=True)
    frame.columns = names
    return frame


def run_case(name: str, table: pd.DataFrame, out: Path, seed: int = 0) -> None:
    """fit -> sample -> write -> validate; raises whatever the pipeline raises."""
    model = get_generator_class(name)(**TINY[name], **COMMON, epochs=2, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(table)
        synthetic = model.sample(max(len(table), 2), seed=seed)
        assert list(synthetic.columns) == list(table.columns)
        assert len(synthetic) == max(len(table), 2)
        write_parquet(out / "synthetic", [synthetic], schema=model.schema_.to_dict(), metadata={"fuzz": True})
        checks = run_validation(table, synthetic, model.schema_, config=VALIDATION)
    crashed = [f"{c.name}: {c.extra['error']}" for c in checks if "error" in c.extra]
    assert not crashed, crashed


@pytest.mark.parametrize("name", list(TINY))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(table=tables())
def test_random_tables_end_in_output_or_a_synthpipe_error(tmp_path_factory: pytest.TempPathFactory, name: str,
                                                         table: pd.DataFrame) -> None:  # fmt: skip
    out = tmp_path_factory.mktemp("fuzz")
    try:
        run_case(name, table, out)
    except SynthpipeError as exc:
        assert str(exc).strip(), "a SynthpipeError must say what is wrong"
        assert not (out / "synthetic").exists() or (out / "synthetic" / "_synthpipe.json").exists()


def test_table_strategy_draws_every_kind() -> None:
    """The strategy reaches what it promises (a fuzz test that never drew a datetime would pass vacuously)."""
    seen: set[str] = set()

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(table=tables())
    def collect(table: pd.DataFrame) -> None:
        for _, column in table.items():
            seen.add(str(column.dtype).split("[")[0])
        if table.columns.duplicated().any():
            seen.add("duplicate-names")

    collect()
    assert {"float64", "int64", "Int64", "bool", "boolean", "object", "category", "datetime64"} <= seen, seen
    assert "duplicate-names" in seen
    np.testing.assert_(any(s.startswith("datetime64") for s in seen))


# ----------------------------------------------------------------------------------------------
# failure classes the fuzzer found, kept as plain regression tests
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TINY))
def test_values_near_the_float_limit_are_a_data_error_naming_the_column(tmp_path: Path, name: str) -> None:
    """Found by the fuzzer: +-1e308 made the VAE train on NaN (sampling died in torch.multinomial)
    and the GAN's layout overflow (OverflowError); validation crashed on them too."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"big": np.r_[1e308, -1e308, rng.normal(size=28)], "k": rng.choice(["a", "b"], 30)})
    with pytest.raises(
        SynthpipeError, match=r"column 'big': 2 value\(s\) such as 1e\+308 are infinite or beyond"
    ):
        run_case(name, table, tmp_path)


@pytest.mark.parametrize("name", list(TINY))
def test_infinite_values_never_reach_a_model(tmp_path: Path, name: str) -> None:
    """inf in a numeric column: a DataError naming the column, or (once infinities are read as
    nulls, issue 14 point 1) a synthetic table without any."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": np.r_[np.inf, -np.inf, rng.normal(size=38)], "k": rng.choice(["a", "b"], 40)})
    try:
        run_case(name, table, tmp_path)
    except SynthpipeError as exc:
        assert "'x'" in str(exc)
    else:
        synthetic = pd.read_parquet(tmp_path / "synthetic")
        assert np.isfinite(synthetic["x"].dropna()).all()


@pytest.mark.parametrize("rows", [0, 1])
def test_tables_too_small_to_train_on_are_a_data_error(tmp_path: Path, rows: int) -> None:
    table = pd.DataFrame({"x": np.arange(rows, dtype=float), "k": ["a"] * rows})
    for name in TINY:
        with pytest.raises(SynthpipeError, match=rf"cannot train on a table with {rows} row"):
            run_case(name, table, tmp_path)
