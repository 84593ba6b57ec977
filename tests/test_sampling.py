"""Row-addressable sampling: a seed's rows are one stream, cut into blocks seeded by position,
so any chunking, split or shard of a sample gives the same rows (GAN and VAE), conditions
included; and fitting leaves the caller's global RNG alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthpipe.generators.conditions import Conditions
from synthpipe.generators.gan import CTGAN
from synthpipe.generators.seeding import SAMPLE_BLOCK_ROWS
from synthpipe.generators.vae import TVAE

SMALL_GAN = {"batch_size": 100, "embedding_dim": 16, "generator_dims": (32, 32), "discriminator_dims": (32, 32)}
SMALL_VAE = {"batch_size": 100, "hidden_dims": (32, 32), "latent_dim": 16}


@pytest.fixture(scope="module", params=["gan", "vae"])
def model(request):
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "amount": rng.normal(50, 10, n).round(2),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n),
            "flag": rng.random(n) < 0.3,
        }
    )
    if request.param == "gan":
        return CTGAN(**SMALL_GAN, epochs=2, progress=False).fit(table)
    return TVAE(**SMALL_VAE, epochs=2, progress=False).fit(table)


def _chunked(model, rows: int, chunk_rows: int, conditions=None, seed: int = 7) -> pd.DataFrame:
    """What an emission shard does (flows/emit.py): consecutive slices of the one stream."""
    parsed = Conditions.parse(conditions, model.schema_, rows) if conditions is not None else None
    chunks = [
        model.sample(min(chunk_rows, rows - start), seed=seed, start_index=start,
                     conditions=parsed.rows(start, min(start + chunk_rows, rows)) if parsed is not None else None)
        for start in range(0, rows, chunk_rows)
    ]
    return pd.concat(chunks, ignore_index=True)


def test_the_same_rows_for_two_chunk_sizes(model):
    rows = 2 * SAMPLE_BLOCK_ROWS + 500  # three blocks, the last one partial
    whole = model.sample(rows, seed=7)
    pd.testing.assert_frame_equal(_chunked(model, rows, 3_000), whole)
    pd.testing.assert_frame_equal(_chunked(model, rows, 7_777), whole)
    assert whole["id"].is_unique  # IDs are minted by absolute row position


def test_a_sample_split_at_an_unaligned_start_index(model):
    start = SAMPLE_BLOCK_ROWS - 123
    whole = model.sample(start + 1_000, seed=11)
    tail = model.sample(1_000, seed=11, start_index=start)
    pd.testing.assert_frame_equal(tail, whole.iloc[start:].reset_index(drop=True))
    head = model.sample(start, seed=11)
    pd.testing.assert_frame_equal(pd.concat([head, tail], ignore_index=True), whole)
    assert not model.sample(1_000, seed=12, start_index=start).equals(tail)


def test_per_row_conditions_are_sliced_with_their_rows():
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"city": rng.choice(["Oslo", "Lima", "Pune"], 200), "x": rng.normal(size=200)})
    gan = CTGAN(**SMALL_GAN, epochs=1, progress=False).fit(table)
    rows = SAMPLE_BLOCK_ROWS + 300
    per_row = pd.DataFrame({"city": rng.choice(["Oslo", "Lima", None], rows)})
    whole = gan.sample(rows, conditions=per_row, seed=3)
    chunked = _chunked(gan, rows, 2_500, per_row, seed=3)
    pd.testing.assert_frame_equal(chunked, whole)
    given = per_row["city"].notna().to_numpy()
    assert (whole["city"].to_numpy()[given] == per_row["city"].to_numpy()[given]).all()


def test_fit_leaves_the_global_torch_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    table = pd.DataFrame({"a": np.linspace(0, 1, 120), "b": ["x", "y", "z"] * 40})
    model = TVAE(**SMALL_VAE, epochs=1, progress=False).fit(table)
    assert torch.equal(torch.get_rng_state(), before)
    assert isinstance(model.rng_, torch.Generator)
    again = TVAE(**SMALL_VAE, epochs=1, progress=False).fit(table)  # the global state plays no part
    pd.testing.assert_frame_equal(model.sample(50), again.sample(50))
