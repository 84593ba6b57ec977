"""Turning two or three tables into comparable numbers, the same way for every check.

Real and synthetic tables rarely share dtypes exactly (a nullable integer read back from
Parquet as float, booleans as objects, categories as strings or ints), so every comparison goes
through one canonical form per column kind: floats for numbers and datetimes (seconds since
the epoch, UTC), canonical string labels for categories and booleans. ID columns are left out
(they are minted fresh, never learned), and so are constant columns (nothing to compare).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthpipe.generators.row_keys import is_numeric, labels, numeric_values
from synthpipe.generators.schema import ColumnKind, ColumnSchema, TableSchema

LABEL_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)
OTHER_LABEL = "<other>"


def compared_columns(schema: TableSchema, *frames: pd.DataFrame) -> list[ColumnSchema]:
    """Schema columns present in every frame, minus IDs and constants, in schema order."""
    return [
        c
        for c in schema.columns
        if c.kind not in (ColumnKind.ID, ColumnKind.CONSTANT) and all(c.name in f.columns for f in frames)
    ]


@dataclass
class CategoryMap:
    """Shared integer codes of one categorical column across tables.

    Real categories are coded by descending real frequency, up to `max_codes`; the rest of
    the real categories and any category the real table lacks share the last code (`OTHER_LABEL`).
    """

    names: list[str]

    @classmethod
    def fit(cls, real_labels: np.ndarray, max_codes: int = 250) -> CategoryMap:
        counts = pd.Series(real_labels).value_counts(sort=True)
        names = [str(n) for n in counts.index[: max_codes - 1]]
        return cls(names + [OTHER_LABEL])

    def codes(self, values: np.ndarray) -> np.ndarray:
        index = {n: i for i, n in enumerate(self.names[:-1])}
        other = len(self.names) - 1
        mapped = pd.Series(values).map(index)
        return mapped.fillna(other).to_numpy(dtype=np.int64)


def ordinal_features(
    columns: list[ColumnSchema], reference: pd.DataFrame, *frames: pd.DataFrame, max_codes: int = 250
) -> tuple[list[np.ndarray], np.ndarray]:
    """Feature matrices for tree models: numbers as floats (NaN kept), categories as shared codes.

    Returns one matrix per frame (reference first) and the boolean mask of categorical features,
    as HistGradientBoosting's `categorical_features` expects (codes < 255, nulls as their own code).
    """
    all_frames = (reference, *frames)
    mats = [np.empty((len(f), len(columns)), dtype=float) for f in all_frames]
    categorical = np.zeros(len(columns), dtype=bool)
    for j, column in enumerate(columns):
        if is_numeric(column):
            for m, f in zip(mats, all_frames):
                m[:, j] = numeric_values(f[column.name], column)
        else:
            categorical[j] = True
            cmap = CategoryMap.fit(labels(reference[column.name]), max_codes)
            for m, f in zip(mats, all_frames):
                m[:, j] = cmap.codes(labels(f[column.name]))
    return mats, categorical


def distance_features(
    columns: list[ColumnSchema], reference: pd.DataFrame, *frames: pd.DataFrame, max_onehot: int = 50
) -> list[np.ndarray]:
    """A standardised encoding for nearest-neighbour distances, fitted on `reference`.

    Numbers become robust z-scores (median, IQR/1.349, clipped at +-10) with nulls at 0 and a
    null indicator; categories become one-hot vectors scaled by 1/sqrt(2), so two different
    categories are as far apart (1) as numbers one standard deviation apart.
    """
    all_frames = (reference, *frames)
    blocks: list[list[np.ndarray]] = [[] for _ in all_frames]
    for column in columns:
        if is_numeric(column):
            values = [numeric_values(f[column.name], column) for f in all_frames]
            ref = values[0][np.isfinite(values[0])]
            if len(ref) == 0:
                continue
            center = float(np.median(ref))
            q1, q3 = np.percentile(ref, [25, 75])
            scale = (q3 - q1) / 1.349 or float(np.std(ref)) or 1.0
            any_null = any(np.isnan(v).any() for v in values)
            for block, v in zip(blocks, values):
                z = np.clip((v - center) / scale, -10, 10)
                null = np.isnan(z)
                block.append(np.where(null, 0.0, z)[:, None])
                if any_null:
                    block.append(null.astype(float)[:, None])
        else:
            cmap = CategoryMap.fit(labels(reference[column.name]), max_onehot)
            eye = np.eye(len(cmap.names)) / np.sqrt(2)
            for block, f in zip(blocks, all_frames):
                block.append(eye[cmap.codes(labels(f[column.name]))])
    return [np.hstack(b) if b else np.zeros((len(f), 1)) for b, f in zip(blocks, all_frames)]


def subsample(frame: pd.DataFrame | None, n: int, rng: np.random.Generator) -> pd.DataFrame | None:
    """At most `n` rows, drawn uniformly without replacement (the frame itself when small enough)."""
    if frame is None or len(frame) <= n:
        return frame
    idx = np.sort(rng.choice(len(frame), n, replace=False))
    return frame.iloc[idx].reset_index(drop=True)
