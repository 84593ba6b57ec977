"""`synthpipe sample --condition`: exact conditional sampling from saved GAN and autoregressive
models, from the command line, with typed values and clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from synthpipe.flows.cli import main
from synthpipe.flows.conditions import parse_condition
from synthpipe.generators.autoregressive import AutoregressiveTransformer
from synthpipe.generators.gan import CTGAN


@pytest.fixture(scope="module")
def saved_models(acs12, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    small = acs12.iloc[:600]
    CTGAN(epochs=2, batch_size=100, progress=False).fit(small).save(root / "gan")
    AutoregressiveTransformer(epochs=2, progress=False).fit(small).save(root / "ar")
    return root


def test_parse_condition_forms():
    assert parse_condition("race=white") == ("race", "white")
    assert parse_condition("age=30..40") == ("age", ("30", "40"))
    assert parse_condition("age=65..") == ("age", ("65", None))
    assert parse_condition("note=a=b") == ("note", "a=b")


def _sample(model_dir: Path, rows: int, out: Path, *conditions: str) -> int:
    """`synthpipe sample` of `rows` rows under each `--condition`; its exit code."""
    flags = [arg for condition in conditions for arg in ("--condition", condition)]
    return main(["sample", str(model_dir), "--rows", str(rows), "--out", str(out), *flags])


def _sampled(model_dir: Path, out: Path, *conditions: str) -> pd.DataFrame:
    """The 300 rows `synthpipe sample` writes under these conditions (it must exit 0)."""
    assert _sample(model_dir, 300, out, *conditions) == 0
    table = pd.read_parquet(out / "synthetic")
    assert len(table) == 300
    return table


def test_gan_sample_with_a_category_condition(saved_models, tmp_path):
    table = _sampled(saved_models / "gan", tmp_path / "g", "race=asian", "gender=female")
    assert (table["race"] == "asian").all() and (table["gender"] == "female").all()


def test_autoregressive_sample_with_a_numeric_range_and_a_category(saved_models, tmp_path):
    table = _sampled(saved_models / "ar", tmp_path / "a", "age=30..40", "married=yes")
    assert table["age"].between(30, 40).all() and (table["married"] == "yes").all()
    assert str(table["age"].dtype) == "int64"


def test_unseen_value_is_a_usage_error_listing_known_values(saved_models, tmp_path, capsys):
    code = _sample(saved_models / "gan", 10, tmp_path / "x", "race=martian")
    err = capsys.readouterr().err
    assert code == 2 and "martian" in err and "white" in err
    assert not (tmp_path / "x").exists()


def test_a_numeric_range_on_the_gan_points_to_the_autoregressive_model(saved_models, tmp_path, capsys):
    code = _sample(saved_models / "gan", 10, tmp_path / "y", "age=30..40")
    assert code == 2 and "autoregressive" in capsys.readouterr().err
