"""Identifier columns: learn the format, then mint fresh values that never occur in the source.

IDs carry no distribution worth learning and copying them would leak which real rows exist, so
generators skip them and this module makes new ones in the same format.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import pandas as pd

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
MAX_TEXT_ID_LENGTH = 64
_PREFIX_DIGITS = re.compile(r"^(\D*?)(\d+)$")


def learn_id_format(values: pd.Series) -> dict[str, Any]:
    """Describe how the IDs look: integers, UUIDs, prefix + zero-padded number, or opaque text."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return {"type": "integer", "next": int(values.max()) + 1}
    text = values.astype(str)
    if text.str.match(_UUID).all():
        return {"type": "uuid"}
    parts = text.str.extract(_PREFIX_DIGITS)
    if parts[1].notna().all() and parts[0].nunique() == 1:
        widths = parts[1].str.len()
        return {
            "type": "pattern",
            "prefix": str(parts[0].iloc[0]),
            "width": int(widths.min()) if widths.nunique() == 1 else 0,
            "next": int(parts[1].astype("int64").max()) + 1,
        }
    return {"type": "text", "length": int(text.str.len().median())}


def generate_ids(id_format: dict[str, Any], n: int, start_index: int, rng: np.random.Generator) -> list[Any]:
    """Mint `n` IDs; `start_index` is the row's position in the whole emitted table.

    Counter-based formats continue past the source's largest ID, so they never collide with a
    real one and shards that start at different indices never collide with each other.
    """
    kind = id_format["type"]
    if kind == "integer":
        return list(range(id_format["next"] + start_index, id_format["next"] + start_index + n))
    if kind == "pattern":
        width = id_format["width"]
        first = id_format["next"] + start_index
        return [f"{id_format['prefix']}{i:0{width}d}" for i in range(first, first + n)]
    if kind == "uuid":
        raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        return [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]
    # long enough to make collisions negligible, short enough that 10 MB source cells do not
    # make every minted ID 10 MB
    length = min(max(int(id_format.get("length", 12)), 12), MAX_TEXT_ID_LENGTH)
    alphabet = np.array(list("0123456789abcdefghijklmnopqrstuvwxyz"))
    chars = alphabet[rng.integers(0, len(alphabet), size=(n, length))]
    return ["".join(row) for row in chars]
