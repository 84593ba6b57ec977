"""Seeded, uniform samples of a table drawn while it streams past, in bounded memory.

How: every row gets a random key from its own position (row-addressable: the keys of block b of
`KEY_BLOCK_ROWS` rows come from `derive_seed(seed, stream, b)`), and a reservoir keeps the rows
with the k smallest keys. That is a uniform sample of k rows without replacement, and because a
row's key depends on its position only, the sample does not depend on how the source was cut into
batches. Per batch the work is vectorised: keys for the batch, a comparison with the current
k-th smallest key, and a `take` of the few rows below it; the pool is compacted to k rows when it
reaches twice that.

Two reservoirs split a large table: the holdout keeps the `holdout` smallest keys of stream
RESERVOIR_HOLDOUT; the training reservoir keeps the `train + holdout` smallest keys of stream
RESERVOIR_TRAIN, so that after the holdout's rows are removed at least `train` rows remain, and
the `train` smallest of them are a uniform sample of the rows outside the holdout. A table with
at most `train + holdout` rows is held whole and split exactly as `split_positions` says.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from synthpipe.generators import splits
from synthpipe.generators.seeding import SeedStream, derive_seed

KEY_BLOCK_ROWS = 65_536


def row_keys(seed: int, stream: int, start: int, n: int) -> np.ndarray:
    """Uniform keys in [0, 1) for rows start .. start+n of a source (row-addressable)."""
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    first, last = start // KEY_BLOCK_ROWS, (start + n - 1) // KEY_BLOCK_ROWS
    written = 0
    for block in range(first, last + 1):
        keys = np.random.default_rng(derive_seed(seed, stream, block)).random(KEY_BLOCK_ROWS)
        lo = max(start, block * KEY_BLOCK_ROWS) - block * KEY_BLOCK_ROWS
        hi = min(start + n, (block + 1) * KEY_BLOCK_ROWS) - block * KEY_BLOCK_ROWS
        out[written : written + hi - lo] = keys[lo:hi]
        written += hi - lo
    return out


class Reservoir:
    """The `capacity` rows with the smallest keys among all rows offered (a uniform sample)."""

    def __init__(self, capacity: int, seed: int, stream: int):
        self.capacity = max(0, int(capacity))
        self.seed = seed
        self.stream = stream
        self.threshold = np.inf
        self._tables: list[pa.Table] = []
        self._keys: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []
        self._pooled = 0

    def offer(self, batch: pa.RecordBatch, start: int) -> None:
        """Consider the rows of `batch`, which are rows start .. start+len of the source."""
        if self.capacity == 0 or batch.num_rows == 0:
            return
        keys = row_keys(self.seed, self.stream, start, batch.num_rows)
        chosen = np.flatnonzero(keys < self.threshold)
        if not len(chosen):
            return
        if len(chosen) * 2 > batch.num_rows:  # most rows qualify: keep the batch, skip a copy
            chosen = np.arange(batch.num_rows)  # (rows above the threshold never win a place)
            self._tables.append(pa.Table.from_batches([batch]))
        else:
            self._tables.append(pa.Table.from_batches([batch.take(pa.array(chosen))]))
        self._keys.append(keys[chosen])
        self._positions.append(chosen + start)
        self._pooled += len(chosen)
        if self._pooled >= 2 * self.capacity:
            self._compact()

    def _compact(self) -> None:
        keys = np.concatenate(self._keys)
        positions = np.concatenate(self._positions)
        table = _concat(self._tables)
        if len(keys) > self.capacity:
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            keep.sort()
            keys, positions, table = keys[keep], positions[keep], table.take(pa.array(keep))
            self.threshold = float(keys.max())
        self._tables, self._keys, self._positions, self._pooled = [table], [keys], [positions], len(keys)

    def result(self) -> tuple[pa.Table | None, np.ndarray, np.ndarray]:
        """(rows, their source positions, their keys), in source order; None rows when empty."""
        if not self._tables:
            return None, np.empty(0, dtype=np.int64), np.empty(0)
        self._compact()
        table, positions, keys = self._tables[0], self._positions[0], self._keys[0]
        order = np.argsort(positions, kind="stable")
        return table.take(pa.array(order)), positions[order], keys[order]


def split_positions(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and holdout positions (sorted) of a table of `n` rows held whole: the one seeded
    split of generators/splits.py on stream HOLDOUT_SPLIT."""
    return splits.split_positions(n, fraction, seed, SeedStream.HOLDOUT_SPLIT)


def holdout_capacity(max_train_rows: int, fraction: float) -> int:
    """Holdout rows kept of a large table: what `fraction` gives a table of max_train_rows/(1-f)."""
    return int(round(max_train_rows * fraction / (1.0 - fraction))) if fraction > 0 else 0


class TrainHoldoutSampler:
    """Both reservoirs of a scan; `result()` gives (train, holdout) tables with their positions."""

    def __init__(self, max_train_rows: int, holdout_fraction: float, seed: int):
        self.max_train_rows = int(max_train_rows)
        self.fraction = float(holdout_fraction)
        self.seed = seed
        self.holdout_rows = holdout_capacity(self.max_train_rows, self.fraction)
        self.train = Reservoir(self.max_train_rows + self.holdout_rows, seed, SeedStream.RESERVOIR_TRAIN)
        self.holdout = Reservoir(self.holdout_rows, seed, SeedStream.RESERVOIR_HOLDOUT)
        self.rows = 0

    @property
    def whole_table_limit(self) -> int:
        """Tables with at most this many rows are held whole (the small-table path)."""
        return self.train.capacity

    def offer(self, batch: pa.RecordBatch) -> None:
        self.train.offer(batch, self.rows)
        self.holdout.offer(batch, self.rows)
        self.rows += batch.num_rows

    def result(self) -> tuple[tuple[pa.Table | None, np.ndarray], tuple[pa.Table | None, np.ndarray]]:
        table, positions, keys = self.train.result()
        if table is None:
            return (None, positions), (None, positions)
        if self.rows <= self.whole_table_limit:  # the whole table: today's exact split
            train_at, holdout_at = split_positions(self.rows, self.fraction, self.seed)
            return (table.take(pa.array(train_at)), train_at), (table.take(pa.array(holdout_at)), holdout_at)
        held, held_positions, _ = self.holdout.result()
        outside = ~np.isin(positions, held_positions)
        candidates = np.flatnonzero(outside)
        keep = candidates[np.argsort(keys[candidates], kind="stable")[: self.max_train_rows]]
        keep.sort()
        return (table.take(pa.array(keep)), positions[keep]), (held, held_positions)


def _concat(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")
