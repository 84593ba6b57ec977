"""Named seed streams: every random choice in a run draws from one stream of the run's seed.

Why: a magic number per call site (7, 11, 1000 + i, ...) makes two unrelated choices share a
stream the day someone picks the same number twice, and nobody can tell from a seed which rows it
drew. Here each consumer names its stream, and `derive_seed(seed, stream, *parts)` gives it an
independent seed (numpy's SeedSequence), so adding a stream never changes the others.

Sampling is row-addressable: the rows of a sample are cut into blocks of `SAMPLE_BLOCK_ROWS`,
and block k of a run is drawn from `derive_seed(seed, SeedStream.SAMPLE_BLOCK, k)` alone. So the
rows emitted for a seed are the same however they are chunked, sharded or spread over workers.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

# Rows per independently seeded block of a sample (see the module docstring).
SAMPLE_BLOCK_ROWS = 8192


class SeedStream(IntEnum):
    """One stream per kind of random choice in a run. Never renumber: values are part of the
    reproducibility contract (same seed, same rows)."""

    VALIDATION_SPLIT = 1  # the generator's own early-stopping rows
    HOLDOUT_SPLIT = 2  # rows the generator never sees (privacy, concept shift, likelihood)
    ENCODER_FIT = 3  # subsamples that fit mixtures, quantile bins and tokenisers
    TRAIN_TORCH = 4  # torch weights initialisation, batch order and training noise
    VALIDATION_NOISE = 5  # noise of the validation score
    SAMPLE_BLOCK = 6  # block k of a sample: model noise
    SAMPLE_DECODE = 7  # block k of a sample: decode-time draws (folded categories, IDs)
    EMIT_SPLIT = 8  # per output split (train/val/test) of a fine-tuning dataset
    RESERVOIR_TRAIN = 9  # training rows drawn while scanning a large source
    RESERVOIR_HOLDOUT = 10  # holdout rows drawn while scanning a large source
    BALANCE = 11  # per-row class plan of --balance
    VALIDATE = 12  # subsamples and bootstrap draws of the validation suite


def derive_seed(seed: int, stream: int, *parts: int) -> int:
    """An independent seed for `stream` (and e.g. block or shard `parts`) of run seed `seed`."""
    return int(np.random.SeedSequence([int(seed), int(stream), *map(int, parts)]).generate_state(1)[0])


def numpy_rng(seed: int, stream: int, *parts: int) -> np.random.Generator:
    """A numpy Generator on its own stream; never the global one."""
    return np.random.default_rng(derive_seed(seed, stream, *parts))
