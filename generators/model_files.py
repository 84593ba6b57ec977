"""Checks on saved model files and checkpoints, so that a directory someone edited is refused
with a `ModelError` naming the file and the field, before anything large is allocated.

Why a module of its own: `BaseGenerator.load` and checkpoint resumption read files that may come
from anywhere (a shared registry, a copied output directory). Nothing in them is ever executed
(JSON, safetensors, `torch.load(weights_only=True)`), but plain data can still do harm: a width of
10**9 is a memory bomb, a wrong shape or a NaN surfaces as a torch traceback at sampling time, a
symlinked weights file reads someone else's file, a time-zone name can be a path. The order of the
checks is what keeps allocation bounded:

1. `read_model_meta`: model.json is a regular file inside the directory and below
   `MAX_MODEL_JSON_BYTES`; its keys, the generator's parameters (types from its Config dataclass,
   finite numbers, `PARAM_BOUNDS`) and the codec's and model's saved state are checked
   (format 2: "codec"; format 1, gan and vae only: "encoder").
2. `read_weights`: the modules are built on torch's "meta" device (shapes, no memory) to learn
   which tensors the parameters imply and how many parameters that is (`MAX_PARAMETERS`); the
   safetensors header (8-byte little-endian length, then JSON) is checked against them (names,
   shapes, dtypes, byte offsets, file size) before any tensor data is read; the tensors read must
   be finite.
3. `read_checkpoint` / `check_checkpoint_fits`: the same for `checkpoint.pt`, read with
   `torch.load(weights_only=True)` (a pickle that would run code is refused), and compared with
   the modules and optimisers it is about to be loaded into.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthpipe.generators.errors import ConfigError, ModelError
from synthpipe.generators.schema import ColumnKind, ColumnSchema
from synthpipe.generators.tokenize import MAX_SUPPORT
from synthpipe.generators.transforms import DISCRETE_MAX_VALUES, OTHER

MODEL_JSON, WEIGHTS = "model.json", "model.safetensors"
MAX_MODEL_JSON_BYTES = 256 * 2**20  # model.json holds categories and bins, never data
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on its JSON header
MAX_PARAMETERS = 2**30  # weights a saved model may have (4 GiB in float32)
MAX_WIDTH = 2**16  # any one layer width or embedding size
MAX_CHECKPOINT_BYTES = 16 * 2**30

META_KEYS = {"format_version", "generator", "params", "codec", "history", "extra"}
# format 1 named the codec's state "encoder" (a ModeSpecificCodec state; gan and vae only)
CODEC_KEY = {1: "encoder", 2: "codec"}

ADDED_PARAMS = frozenset({"min_category_count"})

# (low, high) for integer parameters, by field name, wherever a Config has that field; each
# bound is far above any sensible tabular model and far below what would exhaust memory
PARAM_BOUNDS: dict[str, tuple[int, int]] = {
    "epochs": (1, 10**7),
    "batch_size": (2, 10**7),
    "eval_every": (1, 10**7),
    "patience": (0, 10**7),
    "checkpoint_every": (1, 10**7),
    "max_categories": (1, 100_000),
    "min_category_count": (1, 10**9),
    "max_modes": (1, 1_000),
    "max_fit_rows": (1, 10**9),
    "seed": (-(2**63), 2**64 - 1),
    "latent_dim": (1, MAX_WIDTH),
    "hidden_dims": (1, MAX_WIDTH),
    "embedding_dim": (1, MAX_WIDTH),
    "generator_dims": (1, MAX_WIDTH),
    "discriminator_dims": (1, MAX_WIDTH),
    "d_model": (1, MAX_WIDTH),
    "n_layers": (1, 256),
    "n_heads": (1, 1024),
    "n_bins": (2, 100_000),
    "pac": (1, 1024),
    "discriminator_steps": (1, 1_000),
    "monitor_rows": (1, 10**7),
    "max_rejection_rounds": (0, 10**6),
    "min_steps_per_pass": (1, 10**7),
}
MAX_LAYERS = 64  # entries of a list of layer widths (hidden_dims, generator_dims, ...)
_DEVICE = re.compile(r"^(auto|cpu|cuda|mps)(:\d{1,3})?$")
# IANA names ("Europe/Paris", "Etc/GMT+5") and fixed offsets ("UTC+01:00"): no dots, no leading
# slash, so a zone name can never be a path (pandas resolves "dateutil/<name>" through files)
_TIMEZONE = re.compile(r"^(UTC[+-]\d{2}:\d{2}(:\d{2})?|[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*)$")
_DATETIME_UNITS = (None, "D", "s", "ms", "us")
_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# model.json
# ----------------------------------------------------------------------------------------------


def read_model_meta(path: Path, cls: type) -> tuple[type, dict[str, Any]]:
    """(generator class, checked model.json content) for the model directory `path`.

    `cls` is the class `load` was called on; BaseGenerator means "whichever model it holds".
    The returned params have `checkpoint_dir` cleared: it was the training run's scratch
    directory, and a path read from a file must never decide where a later fit writes.
    """
    from synthpipe.generators import GENERATORS, get_generator_class
    from synthpipe.generators.base import FORMAT_VERSION, BaseGenerator
    from synthpipe.generators.mode_codec import ModeSpecificCodec

    meta_path = path / MODEL_JSON
    if not all(os.path.lexists(path / name) for name in (MODEL_JSON, WEIGHTS)):
        raise ModelError(f"{path}: not a saved synthpipe model (expected {MODEL_JSON} and {WEIGHTS})")
    contained_file(path, MODEL_JSON)
    contained_file(path, WEIGHTS)
    size = meta_path.stat().st_size
    if size > MAX_MODEL_JSON_BYTES:
        raise ModelError(
            f"{meta_path}: {size} bytes, above the {MAX_MODEL_JSON_BYTES}-byte limit for model metadata"
        )
    try:
        meta = json.loads(meta_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{meta_path}: corrupt model metadata ({_short(exc)})") from None
    _require(isinstance(meta, dict), meta_path, "(top level)", "must be a JSON object")
    version = meta.get("format_version", FORMAT_VERSION)
    if _is_int(version) and version > FORMAT_VERSION:
        raise ModelError(
            f"{meta_path}: format_version {version} is newer than this synthpipe reads ({FORMAT_VERSION}); "
            "upgrade synthpipe"
        )
    _require(
        _is_int(version) and version in CODEC_KEY,
        meta_path,
        "format_version",
        f"is {_show(version)}; this synthpipe reads versions 1 to {FORMAT_VERSION}",
    )
    key = CODEC_KEY[version]
    _check_keys(meta, META_KEYS - {"codec"} | {key}, meta_path, "", optional={"history", "extra"})
    name = meta["generator"]
    _require(
        isinstance(name, str) and name in GENERATORS,
        meta_path,
        "generator",
        f"is {_show(name)}; expected one of {sorted(GENERATORS)}",
    )
    if cls is BaseGenerator:
        cls = get_generator_class(name)
    elif name != cls.name:
        raise ModelError(f"{path} holds a {name!r} model, not {cls.name!r}")
    if version == 1 and cls.Codec is not ModeSpecificCodec:
        raise ModelError(
            f"{meta_path}: format_version 1 {name} models are no longer read (their codec changed); train again"
        )
    params = check_params(meta["params"], cls.Config, meta_path)
    try:
        cls(**params)._validate_config()
    except ConfigError as exc:
        raise ModelError(f"{meta_path}: params: {exc}") from None
    codec = meta[key]
    check_codec_state(cls, codec, meta_path, key)
    history = meta.get("history", {})
    check_history(history, meta_path, "history")
    extra = meta.get("extra", {})
    check_extra_state(name, extra, codec, params, meta_path, "extra")
    meta = {k: v for k, v in meta.items() if k != key} | {"codec": codec}
    return cls, {**meta, "params": {**params, "checkpoint_dir": None}, "history": history, "extra": extra}


def check_params(params: Any, config_cls: type, file: Path) -> dict[str, Any]:
    """The saved generator parameters, checked against the Config dataclass field by field."""
    _require(isinstance(params, dict), file, "params", "must be a JSON object")
    hints = typing.get_type_hints(config_cls)
    known = {f.name for f in fields(config_cls)}
    # fields added since format 2 was written: a model saved before them loads with the default
    _check_keys(params, known, file, "params.", optional=ADDED_PARAMS & known)
    for key, value in params.items():
        field = f"params.{key}"
        if key == "checkpoint_dir":  # cleared by read_model_meta; only its type matters
            _require(value is None or isinstance(value, str), file, field, "must be a string or null")
            continue
        _require_finite(value, file, field)
        _require(
            _conforms(value, hints[key]), file, field, f"is {_show(value)}; expected {_type_name(hints[key])}"
        )
        if key in PARAM_BOUNDS:
            low, high = PARAM_BOUNDS[key]
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list):
                _require(
                    len(value) <= MAX_LAYERS,
                    file,
                    field,
                    f"has {len(value)} layers, above the limit {MAX_LAYERS}",
                )
            for item in items:
                if isinstance(item, int) and not low <= item <= high:
                    raise ModelError(
                        f"{file}: {field} is {_show(item)}, outside the allowed range [{low}, {high}]"
                    )
        if key == "device":
            _require(
                isinstance(value, str) and bool(_DEVICE.match(value)),
                file,
                field,
                f"is {_show(value)}; expected auto, cpu, cuda or cuda:N",
            )
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


# ----------------------------------------------------------------------------------------------
# the encoder's state (TableEncoder.state_dict) and each model's extra state
# ----------------------------------------------------------------------------------------------


def check_history(history: Any, file: Path, where: str) -> None:
    """Training history: named lists of numbers, and the optional "stop" record (why and where
    training ended: a reason string and numbers or true/false)."""
    _require(isinstance(history, dict), file, where, "must map names to lists of numbers")
    for key, series in history.items():
        if key == "stop":
            _require(
                isinstance(series, dict)
                and all(
                    isinstance(v, str) and len(v) <= 100 or _is_number(v) or isinstance(v, bool) or v is None
                    for v in series.values()
                ),
                file,
                f"{where}.stop",
                "must be a JSON object of plain values",
            )
            continue
        _require(
            isinstance(series, list) and all(_is_number(v, finite=False) for v in series),
            file,
            f"{where}.{key}",
            "must be a list of numbers",
        )


def check_codec_state(cls: type, state: Any, file: Path, where: str) -> None:
    """The generator family's row codec state (its Codec's state_dict)."""
    from synthpipe.generators.ar_codec import TokenCodec

    if cls.Codec is TokenCodec:
        check_token_codec_state(state, file, where)
    else:
        check_encoder_state(state, file, where)


def _check_codec_params(params: Any, keys: set[str], file: Path, where: str) -> None:
    """A codec's own parameters: exactly `keys`, each an integer within PARAM_BOUNDS."""
    _require(isinstance(params, dict), file, f"{where}.params", "must be a JSON object")
    _check_keys(params, keys, file, f"{where}.params.")
    for key, value in params.items():
        low, high = PARAM_BOUNDS[key]
        _require(
            _is_int(value) and low <= value <= high,
            file,
            f"{where}.params.{key}",
            f"is {_show(value)}; expected an integer in [{low}, {high}]",
        )


def check_token_codec_state(state: Any, file: Path, where: str) -> None:
    """TokenCodec.state_dict(): parameters, the schema, bins of each continuous column and the
    vocabulary of each categorical or boolean column."""
    _require(isinstance(state, dict), file, where, "must be a JSON object")
    _check_keys(state, {"params", "schema", "binned", "categories"}, file, f"{where}.")
    params = state["params"]
    _check_codec_params(params, {"n_bins", "max_categories", "max_fit_rows"}, file, where)
    kinds = _check_schema(state["schema"], file, where)
    continuous = {
        n for n, k in kinds.items() if k in (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME)
    }
    discrete = {n for n, k in kinds.items() if k in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)}
    for key, names in (("binned", continuous), ("categories", discrete)):
        entries = state[key]
        _require(isinstance(entries, dict), file, f"{where}.{key}", "must be a JSON object")
        _require(
            set(entries) == names,
            file,
            f"{where}.{key}",
            f"names {_show(sorted(set(entries) ^ names))} do not match the schema's columns",
        )
    limit = 2 * params["n_bins"] + 2
    for name, binned in state["binned"].items():
        _check_binned(binned, file, f"{where}.binned[{name!r}]", limit)
    for name, column in state["categories"].items():
        field = f"{where}.categories[{name!r}]"
        _require(isinstance(column, dict), file, field, "must be a JSON object")
        _check_categorical({"type": "categorical", **column}, file, field, params["max_categories"])


def _check_schema(schema: Any, file: Path, where: str) -> dict[str, ColumnKind]:
    _require(
        isinstance(schema, dict) and isinstance(schema.get("columns"), list),
        file,
        f"{where}.schema.columns",
        "must be a list of columns",
    )
    _check_keys(schema, {"columns"}, file, f"{where}.schema.")
    kinds: dict[str, ColumnKind] = {}
    for i, column in enumerate(schema["columns"]):
        name, kind = check_column_schema(column, file, f"{where}.schema.columns[{i}]")
        _require(name not in kinds, file, f"{where}.schema.columns[{i}].name", f"{_show(name)} appears twice")
        kinds[name] = kind
    return kinds


def check_encoder_state(state: Any, file: Path, where: str) -> None:
    """TableEncoder.state_dict(): encoder parameters, the schema and each column's encoding."""
    _require(isinstance(state, dict), file, where, "must be a JSON object")
    _check_keys(state, {"params", "schema", "columns"}, file, f"{where}.")
    enc_params = state["params"]
    _check_codec_params(enc_params, {"max_modes", "max_categories", "max_fit_rows", "seed"}, file, where)
    kinds = _check_schema(state["schema"], file, where)
    columns = state["columns"]
    _require(isinstance(columns, dict), file, f"{where}.columns", "must be a JSON object")
    modelled = {n for n, k in kinds.items() if k not in (ColumnKind.ID, ColumnKind.CONSTANT)}
    _require(
        set(columns) == modelled,
        file,
        f"{where}.columns",
        f"names {_show(sorted(set(columns) ^ modelled))} do not match the schema's modelled columns",
    )
    for name, column in columns.items():
        field = f"{where}.columns[{name!r}]"
        _require(isinstance(column, dict), file, field, "must be a JSON object")
        if kinds[name] in (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME):
            _check_continuous(column, file, field, enc_params["max_modes"])
        else:
            _check_categorical(column, file, field, enc_params["max_categories"])


def check_column_schema(column: Any, file: Path, field: str) -> tuple[str, ColumnKind]:
    """One ColumnSchema.to_dict(): known fields, plain types, no path-like or unbounded values."""
    _require(isinstance(column, dict), file, field, "must be a JSON object")
    known = {f.name for f in fields(ColumnSchema)}
    _check_keys(column, known, file, f"{field}.", optional=known - {"name", "kind", "dtype"})
    name, kind, dtype = column["name"], column["kind"], column["dtype"]
    _require(isinstance(name, str), file, f"{field}.name", f"is {_show(name)}; expected a string")
    _require(
        isinstance(kind, str) and kind in {k.value for k in ColumnKind},
        file,
        f"{field}.kind",
        f"is {_show(kind)}; expected one of {[k.value for k in ColumnKind]}",
    )
    kind = ColumnKind(kind)
    _require(
        isinstance(dtype, str) and 0 < len(dtype) <= 200 and "\x00" not in dtype,
        file,
        f"{field}.dtype",
        f"is {_show(dtype)}; expected a dtype name",
    )
    for key in ("nullable", "ordered"):
        _require(isinstance(column.get(key, False), bool), file, f"{field}.{key}", "must be true or false")
    null_fraction = column.get("null_fraction", 0.0)
    _require(
        _is_number(null_fraction) and 0 <= null_fraction <= 1,
        file,
        f"{field}.null_fraction",
        f"is {_show(null_fraction)}; expected a number in [0, 1]",
    )
    for key in ("min", "max"):
        value = column.get(key)
        if kind == ColumnKind.DATETIME:
            _require(
                value is None or _is_timestamp(value),
                file,
                f"{field}.{key}",
                f"is {_show(value)}; expected an ISO timestamp",
            )
        else:  # an infinite bound is a (degenerate) bound; NaN is none
            _require(
                value is None or _is_number(value, finite=False) and not math.isnan(value),
                file,
                f"{field}.{key}",
                f"is {_show(value)}; expected a number",
            )
    categories = column.get("categories")
    _require(
        categories is None or isinstance(categories, list) and all(map(_is_scalar, categories)),
        file,
        f"{field}.categories",
        "must be a list of plain values",
    )
    decimals = column.get("decimals")
    _require(
        decimals is None or _is_int(decimals) and 0 <= decimals <= 15,
        file,
        f"{field}.decimals",
        f"is {_show(decimals)}; expected an integer in [0, 15]",
    )
    timezone = column.get("timezone")
    _require(
        timezone is None or isinstance(timezone, str) and bool(_TIMEZONE.match(timezone)),
        file,
        f"{field}.timezone",
        f"is {_show(timezone)}; expected a time-zone name such as 'Europe/Paris'",
    )
    _require(
        _is_scalar(column.get("constant_value")), file, f"{field}.constant_value", "must be a plain value"
    )
    id_format = column.get("id_format")
    if kind == ColumnKind.ID or id_format is not None:
        _check_id_format(id_format, file, f"{field}.id_format")
    return name, kind


def _check_id_format(fmt: Any, file: Path, field: str) -> None:
    _require(
        isinstance(fmt, dict) and fmt.get("type") in ("integer", "uuid", "pattern", "text"),
        file,
        f"{field}.type",
        "expected one of integer, uuid, pattern, text",
    )
    allowed = {"integer": {"next"}, "uuid": set(), "pattern": {"prefix", "width", "next"}, "text": {"length"}}
    _check_keys(fmt, allowed[fmt["type"]] | {"type"}, file, f"{field}.")
    if "next" in fmt:
        _require(
            _is_int(fmt["next"]) and abs(fmt["next"]) < 2**63,
            file,
            f"{field}.next",
            "must be a 64-bit integer",
        )
    if "width" in fmt:
        _require(
            _is_int(fmt["width"]) and 0 <= fmt["width"] <= 64,
            file,
            f"{field}.width",
            f"is {_show(fmt['width'])}; expected an integer in [0, 64]",
        )
    if "prefix" in fmt:
        _require(
            isinstance(fmt["prefix"], str) and len(fmt["prefix"]) <= 1_000,
            file,
            f"{field}.prefix",
            "must be a string of at most 1000 characters",
        )
    if "length" in fmt:
        _require(
            _is_int(fmt["length"]) and 0 <= fmt["length"] <= 10**7,
            file,
            f"{field}.length",
            f"is {_show(fmt['length'])}; expected an integer in [0, 10000000]",
        )


def _check_continuous(column: dict, file: Path, field: str, max_modes: int) -> None:
    _check_keys(
        column, {"type", "weights", "means", "stds", "datetime_unit", "discrete"}, file, f"{field}.", {"discrete"}
    )
    _require(
        column["type"] == "continuous",
        file,
        f"{field}.type",
        f"is {_show(column['type'])}; expected 'continuous'",
    )
    discrete = column.get("discrete", False)
    _require(isinstance(discrete, bool), file, f"{field}.discrete", f"is {_show(discrete)}; expected true or false")
    if discrete:  # one mode per support value (transforms.DISCRETE_MAX_VALUES)
        max_modes = DISCRETE_MAX_VALUES
    for key in ("weights", "means", "stds"):
        values = column[key]
        _require(
            isinstance(values, list) and 1 <= len(values) <= max_modes,
            file,
            f"{field}.{key}",
            f"must be a list of 1 to {max_modes} numbers",
        )
        _require(all(_is_number(v) for v in values), file, f"{field}.{key}", "must hold finite numbers")
    _require(
        len(column["weights"]) == len(column["means"]) == len(column["stds"]),
        file,
        f"{field}.weights",
        "weights, means and stds must have the same length",
    )
    _require(
        all(v >= 0 for v in column["weights"]) and sum(column["weights"]) > 0,
        file,
        f"{field}.weights",
        "must be non-negative with a positive sum",
    )
    _require(all(v > 0 for v in column["stds"]), file, f"{field}.stds", "must be positive")
    means = column["means"]  # a discrete column's mode is found by searching its values
    _require(
        not discrete or all(a < b for a, b in zip(means, means[1:])),
        file,
        f"{field}.means",
        "must be strictly ascending for a discrete column",
    )
    _require(
        column["datetime_unit"] in _DATETIME_UNITS,
        file,
        f"{field}.datetime_unit",
        f"is {_show(column['datetime_unit'])}; expected one of {list(_DATETIME_UNITS)}",
    )


def _check_categorical(column: dict, file: Path, field: str, max_categories: int) -> None:
    _check_keys(
        column,
        {"type", "categories", "tail", "tail_probs", "tail_protected", "fallback_probs"},
        file,
        f"{field}.",
        optional={"tail_protected", "fallback_probs"},
    )
    _require(
        column["type"] == "categorical",
        file,
        f"{field}.type",
        f"is {_show(column['type'])}; expected 'categorical'",
    )
    categories, tail, probs = column["categories"], column["tail"], column["tail_probs"]
    limit = max_categories + 2  # the kept classes, the folded "other" bucket and null
    _require(
        isinstance(categories, list) and 1 <= len(categories) <= limit,
        file,
        f"{field}.categories",
        f"must be a list of 1 to {limit} values (max_categories + 2), got "
        f"{len(categories) if isinstance(categories, list) else _show(categories)}",
    )
    _require(all(map(_is_scalar, categories)), file, f"{field}.categories", "must hold plain values")
    _require(
        isinstance(tail, list) and all(map(_is_scalar, tail)),
        file,
        f"{field}.tail",
        "must be a list of plain values",
    )
    _require(
        isinstance(probs, list) and len(probs) == len(tail),
        file,
        f"{field}.tail_probs",
        "must be a list as long as tail",
    )
    _require(
        all(_is_number(p) and p >= 0 for p in probs),
        file,
        f"{field}.tail_probs",
        "must hold finite non-negative numbers",
    )
    if tail:
        _require(abs(sum(probs) - 1) < 1e-6, file, f"{field}.tail_probs", f"sum to {sum(probs)!r}, not 1")
    protected = column.get("tail_protected", 0)
    _require(
        _is_int(protected) and 0 <= protected <= len(tail),
        file,
        f"{field}.tail_protected",
        f"is {_show(protected)}; expected an integer from 0 to the tail's length ({len(tail)})",
    )
    fallback = column.get("fallback_probs", [])
    kept = [c for c in categories if c is not None and c != OTHER]
    _require(
        isinstance(fallback, list)
        and (not fallback or len(fallback) == len(kept))
        and all(_is_number(p) and p >= 0 for p in fallback)
        and (not fallback or abs(sum(fallback) - 1) < 1e-6),
        file,
        f"{field}.fallback_probs",
        f"must be empty or {len(kept)} finite non-negative shares (one per kept category) that sum to 1",
    )


def check_extra_state(
    generator: str, extra: Any, codec: dict, params: Mapping[str, Any], file: Path, where: str
) -> None:
    """Each model family's own saved state (`_extra_state`), against the codec it belongs to."""
    _require(isinstance(extra, dict), file, where, "must be a JSON object")
    if generator == "gan":
        _check_keys(
            extra,
            {"category_counts", "warnings"},
            file,
            f"{where}.",
            optional={"category_counts", "warnings"},
        )
        counts = extra.get("category_counts", [])
        columns = codec["columns"]
        expected = sum(len(c["categories"]) for c in columns.values() if c["type"] == "categorical")
        _require(
            isinstance(counts, list) and len(counts) in (0, expected),
            file,
            f"{where}.category_counts",
            f"must list {expected} counts, one per category of the conditional columns",
        )
        _require(
            all(_is_int(c) and 0 <= c < 2**63 for c in counts),
            file,
            f"{where}.category_counts",
            "must hold non-negative integers",
        )
        warnings = extra.get("warnings", [])
        _require(
            isinstance(warnings, list) and all(isinstance(w, str) for w in warnings),
            file,
            f"{where}.warnings",
            "must be a list of strings",
        )
    else:  # vae and autoregressive keep everything in their codec
        _check_keys(extra, set(), file, f"{where}.")


def _check_binned(state: Any, file: Path, field: str, limit: int) -> None:
    _require(isinstance(state, dict), file, field, "must be a JSON object")
    support_keys = {"support", "support_weight", "rest"}
    protect_keys = {"protect_lo", "protect_hi"}
    _check_keys(state, {"lo", "hi", "grid", "unit_ns", "scale"} | support_keys | protect_keys, file, f"{field}.",
                support_keys | protect_keys)
    if protect_keys & set(state):
        ends = [state.get(k) for k in ("protect_lo", "protect_hi")]
        _require(all(_is_number(v) for v in ends) and ends[0] <= ends[1], file, f"{field}.protect_hi",
                 "protect_lo and protect_hi must both be finite numbers, protect_lo <= protect_hi")
    lo, hi = state["lo"], state["hi"]
    for key, values in (("lo", lo), ("hi", hi)):
        _require(
            isinstance(values, list) and 1 <= len(values) <= limit and all(_is_number(v) for v in values),
            file,
            f"{field}.{key}",
            f"must be a list of 1 to {limit} finite numbers (2 n_bins + 2)",
        )
    _require(
        len(lo) == len(hi) and all(a <= b for a, b in zip(lo, hi)),
        file,
        f"{field}.hi",
        "must be as long as lo, and every hi >= its lo",
    )
    _require(isinstance(state["grid"], bool), file, f"{field}.grid", "must be true or false")
    _require(
        _is_int(state["unit_ns"]) and 0 <= state["unit_ns"] <= 86_400 * 10**9,
        file,
        f"{field}.unit_ns",
        "must be an integer number of nanoseconds up to a day",
    )
    _require(
        _is_number(state["scale"]) and state["scale"] > 0, file, f"{field}.scale", "must be a positive number"
    )
    present = support_keys & set(state)
    if present:
        _check_support(state, file, field, present == support_keys)


def _check_support(state: dict[str, Any], file: Path, field: str, complete: bool) -> None:
    """A grid column's support: sorted grid values inside multi-point bins, their shares of the
    bin, and per bin the uniform rest; each bin's shares sum to 1 (sampling relies on it)."""
    _require(complete, file, f"{field}.support", "support, support_weight and rest come together")
    _require(state["grid"] is True, file, f"{field}.support", "is only meaningful on a grid column")
    lo, hi = np.asarray(state["lo"], np.float64), np.asarray(state["hi"], np.float64)
    support, weight, rest = state["support"], state["support_weight"], state["rest"]
    _require(
        isinstance(support, list) and 1 <= len(support) <= MAX_SUPPORT and all(_is_number(v) for v in support),
        file,
        f"{field}.support",
        f"must be a list of 1 to {MAX_SUPPORT} finite numbers",
    )
    values = np.asarray(support, np.float64)
    _require(
        bool(np.all(np.diff(values) > 0) and np.all(values == np.round(values))),
        file,
        f"{field}.support",
        "must hold strictly increasing grid values",
    )
    where = np.clip(np.searchsorted(lo, values, side="right") - 1, 0, len(lo) - 1)
    _require(
        bool(np.all((values >= lo[where]) & (values <= hi[where]) & (hi[where] > lo[where]))),
        file,
        f"{field}.support",
        "must lie inside bins of more than one point",
    )
    for key, entries, length in (("support_weight", weight, len(values)), ("rest", rest, len(lo))):
        _require(
            isinstance(entries, list)
            and len(entries) == length
            and all(_is_number(v) and 0 < v <= 1 for v in entries),
            file,
            f"{field}.{key}",
            f"must be a list of {length} numbers in (0, 1]",
        )
    totals = np.asarray(rest, np.float64) + np.bincount(where, weights=np.asarray(weight, np.float64), minlength=len(lo))
    _require(bool(np.allclose(totals, 1.0, atol=1e-9)), file, f"{field}.rest", "each bin's shares must sum to 1")


# ----------------------------------------------------------------------------------------------
# model.safetensors
# ----------------------------------------------------------------------------------------------


def read_weights(path: Path, model: Any) -> dict[str, torch.Tensor]:
    """The tensors of `path/model.safetensors`, on the model's device, after checking the header
    against the tensors that the model's parameters imply. Call before `model._build()`."""
    from safetensors.torch import load_file

    weights_path = contained_file(path, WEIGHTS)
    expected = expected_tensors(model, path / MODEL_JSON)
    header = read_safetensors_header(weights_path)
    check_tensor_specs(header, expected, weights_path, "file")
    try:
        tensors = load_file(weights_path, device=str(model.device_))
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise ModelError(f"{weights_path}: cannot read weights ({_short(exc)})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"{weights_path}: tensor {name!r} holds NaN or infinite values")
    return tensors


def expected_tensors(model: Any, meta_path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """{name: (shape, dtype)} of every saved tensor, from building the modules on torch's meta
    device (shapes only, no memory); refuses more than MAX_PARAMETERS weights."""
    device = model.device_
    model.device_ = torch.device("meta")
    try:
        with torch.device("meta"):
            model._build()
        modules = model._modules()
        specs = {
            f"{module_name}.{key}": (tuple(value.shape), value.dtype)
            for module_name, module in modules.items()
            for key, value in module.state_dict().items()
        }
        count = sum(p.numel() for module in modules.values() for p in module.parameters())
    except ModelError:
        raise
    except Exception as exc:  # the saved state does not describe a model this code can build
        raise ModelError(
            f"{meta_path}: its state does not describe a {model.name} model ({_short(exc)})"
        ) from None
    finally:
        model.device_ = device
    if count > MAX_PARAMETERS:
        raise ModelError(
            f"{meta_path}: params imply {count:,} weights, above the limit of {MAX_PARAMETERS:,} "
            "(model_files.MAX_PARAMETERS)"
        )
    return specs


def read_safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """The tensor entries of a safetensors file's JSON header, with offsets checked against the
    file's size, reading nothing but the header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ModelError(f"{path}: truncated weights file ({size} bytes, no header)")
        length = int.from_bytes(prefix, "little")
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise ModelError(
                f"{path}: header length {length} does not fit the file ({size} bytes): truncated or corrupt"
            )
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{path}: corrupt weights header ({_short(exc)})") from None
    _require(isinstance(header, dict), path, "header", "must be a JSON object")
    data_size = size - 8 - length
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    spans = []
    for name, entry in entries.items():
        field = f"tensor {name!r}"
        _require(
            isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"},
            path,
            field,
            "must have exactly dtype, shape and data_offsets",
        )
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        _require(dtype in _SAFETENSORS_DTYPES, path, f"{field} dtype", f"is {_show(dtype)}")
        _require(
            isinstance(shape, list) and all(_is_int(d) and 0 <= d < 2**48 for d in shape),
            path,
            f"{field} shape",
            f"is {_show(shape)}",
        )
        _require(
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(map(_is_int, offsets))
            and 0 <= offsets[0] <= offsets[1] <= data_size,
            path,
            f"{field} data_offsets",
            f"are {_show(offsets)}, outside the file's {data_size} data bytes (truncated?)",
        )
        itemsize = torch.empty((), dtype=_SAFETENSORS_DTYPES[dtype]).element_size()
        _require(
            offsets[1] - offsets[0] == math.prod(shape) * itemsize,
            path,
            f"{field} data_offsets",
            f"span {offsets[1] - offsets[0]} bytes, but shape {shape} of {dtype} needs {math.prod(shape) * itemsize}",
        )
        spans.append((offsets[0], offsets[1]))
    end = 0
    for begin, stop in sorted(spans):
        _require(begin == end, path, "data_offsets", "tensors overlap or leave gaps")
        end = stop
    _require(
        end == data_size,
        path,
        "data_offsets",
        f"cover {end} of the file's {data_size} data bytes (truncated?)",
    )
    return entries


def check_tensor_specs(
    found: Mapping[str, Any],
    expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
    file: Path,
    what: str,
) -> None:
    """Names, shapes and dtypes of saved tensors against what the model needs. `found` holds
    safetensors header entries or tensors."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing:
        raise ModelError(
            f"{file}: tensor(s) {_show(missing)} that the model needs are missing from the {what}"
        )
    if extra:
        raise ModelError(f"{file}: the {what} holds tensor(s) {_show(extra)} that the model does not have")
    for name, (shape, dtype) in expected.items():
        entry = found[name]
        if isinstance(entry, torch.Tensor):
            got_shape, got_dtype = tuple(entry.shape), entry.dtype
        else:
            got_shape, got_dtype = tuple(entry["shape"]), _SAFETENSORS_DTYPES[entry["dtype"]]
        if got_shape != shape:
            raise ModelError(
                f"{file}: tensor {name!r} has shape {list(got_shape)}, but the params imply {list(shape)}"
            )
        if got_dtype != dtype:
            raise ModelError(f"{file}: tensor {name!r} is {got_dtype}, but the model needs {dtype}")


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------

CHECKPOINT_KEYS = {
    "next_epoch",
    "next_step",
    "partial",
    "modules",
    "optimizers",
    "history",
    "rng",
    "torch_rng",
    "cuda_rng",
    "best",
    "codec",
    "extra",
    "generator",
}
BEST_KEYS = {"score", "epoch", "stale", "modules"}


def read_checkpoint(path: Path, model: Any) -> dict[str, Any]:
    """A resumable checkpoint, read with `torch.load(weights_only=True)` (tensors and plain data
    only: a pickle that would call anything is refused) and checked field by field; its encoder
    and extra state come back parsed."""
    _require(path.is_file(), path, "(file)", "is not a regular file")
    size = path.stat().st_size
    _require(
        size <= MAX_CHECKPOINT_BYTES,
        path,
        "(file)",
        f"is {size} bytes, above the {MAX_CHECKPOINT_BYTES}-byte limit",
    )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: refused: the checkpoint holds something other than tensors and plain data "
            f"(torch.load weights_only=True: {first[:200]})"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        raise ModelError(f"{path}: cannot read checkpoint ({_short(exc)})") from None
    _require(isinstance(state, dict), path, "(top level)", "must be a dict")
    _check_keys(state, CHECKPOINT_KEYS, path, "")
    if state["generator"] != model.name:
        raise ModelError(f"{path} is a {_show(state['generator'])} checkpoint, not {model.name!r}")
    for key in ("next_epoch", "next_step"):
        _require(
            _is_int(state[key]) and 0 <= state[key] <= 10**9,
            path,
            key,
            f"is {_show(state[key])}; expected a step or epoch number",
        )
    for key in ("modules", "optimizers"):
        _require(isinstance(state[key], dict), path, key, "must be a dict")
    partial = state["partial"]
    _require(
        partial is None
        or isinstance(partial, torch.Tensor)
        and partial.dim() == 1
        and partial.is_floating_point()
        and bool(torch.isfinite(partial).all()),
        path,
        "partial",
        "must be null or a 1-D tensor of finite loss sums",
    )
    for key in ("rng", "torch_rng", "cuda_rng"):
        value = state[key]
        _require(
            (isinstance(value, torch.Tensor) and value.dtype == torch.uint8)
            or (key == "cuda_rng" and value is None),
            path,
            key,
            "must be a uint8 tensor (a random generator's state)",
        )
    best = state["best"]
    _require(isinstance(best, dict), path, "best", "must be a dict")
    _check_keys(best, BEST_KEYS, path, "best.")
    _require(
        _is_number(best["score"], finite=False),
        path,
        "best.score",
        f"is {_show(best['score'])}; expected a number",
    )
    _require(
        best["epoch"] is None or _is_int(best["epoch"]) and 0 <= best["epoch"] <= 10**7,
        path,
        "best.epoch",
        f"is {_show(best['epoch'])}; expected an epoch number or null",
    )
    _require(
        _is_int(best["stale"]) and 0 <= best["stale"] <= 10**7,
        path,
        "best.stale",
        f"is {_show(best['stale'])}; expected a count",
    )
    _require(
        best["modules"] is None or isinstance(best["modules"], dict),
        path,
        "best.modules",
        "must be a dict or null",
    )
    parsed = {}
    for key in ("history", "codec", "extra"):
        _require(isinstance(state[key], str), path, key, "must be a JSON string")
        try:
            parsed[key] = json.loads(state[key])
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ModelError(f"{path}: {key} is not valid JSON ({_short(exc)})") from None
    check_history(parsed["history"], path, "history")
    check_codec_state(type(model), parsed["codec"], path, "codec")
    check_extra_state(model.name, parsed["extra"], parsed["codec"], vars(model.config), path, "extra")
    del parsed["history"]  # _restore_checkpoint parses it (checked here)
    return {**state, **parsed}


def _check_module_weights(
    saved_modules: Mapping[str, Any], modules: Mapping[str, Any], path: Path, field: str, which: str
) -> None:
    """Each module's saved weights (the last ones, or the best ones: `which`) are finite tensors
    of the names, shapes and dtypes of the built module's."""
    for name, module in modules.items():
        saved = saved_modules[name]
        _require(
            isinstance(saved, dict) and all(isinstance(v, torch.Tensor) for v in saved.values()),
            path,
            f"{field}.{name}",
            "must map names to tensors",
        )
        want = {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}
        check_tensor_specs(saved, want, path, f"checkpoint's {which}{name!r} weights")
        _check_finite_tensors(saved, path, f"{field}.{name}")


def check_checkpoint_fits(state: Mapping[str, Any], model: Any, path: Path) -> None:
    """The checkpoint's module weights, optimiser states and random-generator states have the
    names and shapes of the freshly built model they are about to be loaded into."""
    modules, optimizers = model._modules(), model._optimizers()
    _require(
        set(state["modules"]) == set(modules),
        path,
        "modules",
        f"are {_show(sorted(state['modules']))}; the model has {sorted(modules)}",
    )
    _check_module_weights(state["modules"], modules, path, "modules", "")
    best = state["best"]["modules"]
    if best is not None:
        _require(
            set(best) == set(modules),
            path,
            "best.modules",
            f"are {_show(sorted(best))}; the model has {sorted(modules)}",
        )
        _check_module_weights(best, modules, path, "best.modules", "best ")
    partial = state["partial"]
    if partial is not None and model.loss_names:
        _require(
            tuple(partial.shape) == (len(model.loss_names),),
            path,
            "partial",
            f"has shape {list(partial.shape)}; the model has {len(model.loss_names)} losses {list(model.loss_names)}",
        )
    from synthpipe.generators.base import BaseGenerator

    if hasattr(model, "n_train_") and type(model)._train_step is not BaseGenerator._train_step:
        steps = model._steps_per_epoch()
        _require(
            state["next_step"] < max(steps, 1),
            path,
            "next_step",
            f"is {state['next_step']}; an epoch of this run has {steps} steps",
        )
    _require(
        set(state["optimizers"]) == set(optimizers),
        path,
        "optimizers",
        f"are {_show(sorted(state['optimizers']))}; the model has {sorted(optimizers)}",
    )
    for name, opt in optimizers.items():
        _check_optimizer(state["optimizers"][name], opt, path, f"optimizers.{name}")
    for key, current in (("rng", model.rng_.get_state()), ("torch_rng", torch.get_rng_state())):
        _require(
            state[key].shape == current.shape,
            path,
            key,
            f"has {state[key].numel()} bytes; a generator state has {current.numel()}",
        )


def _check_finite_tensors(tensors: Mapping[str, torch.Tensor], path: Path, field: str) -> None:
    for key, value in tensors.items():
        _require(
            not value.is_floating_point() or bool(torch.isfinite(value).all()),
            path,
            f"{field}.{key}",
            "holds NaN or infinite values",
        )


def _check_optimizer(saved: Any, opt: torch.optim.Optimizer, path: Path, field: str) -> None:
    _require(
        isinstance(saved, dict) and set(saved) == {"state", "param_groups"},
        path,
        field,
        "must hold state and param_groups",
    )
    groups = saved["param_groups"]
    _require(
        isinstance(groups, list) and len(groups) == len(opt.param_groups),
        path,
        f"{field}.param_groups",
        f"must list {len(opt.param_groups)} parameter group(s)",
    )
    shapes: dict[int, tuple[int, ...]] = {}
    current = opt.state_dict()["param_groups"]
    for i, (group, mine) in enumerate(zip(groups, current)):
        _require(
            isinstance(group, dict)
            and isinstance(group.get("params"), list)
            and len(group["params"]) == len(mine["params"]),
            path,
            f"{field}.param_groups[{i}].params",
            f"must list {len(mine['params'])} parameters",
        )
        for saved_id, my_id, param in zip(group["params"], mine["params"], opt.param_groups[i]["params"]):
            _require(
                _is_int(saved_id) and saved_id == my_id,
                path,
                f"{field}.param_groups[{i}].params",
                "parameter ids do not match the model",
            )
            shapes[my_id] = tuple(param.shape)
    per_param = saved["state"]
    _require(
        isinstance(per_param, dict) and set(per_param) <= set(shapes),
        path,
        f"{field}.state",
        "refers to parameters the model does not have",
    )
    for pid, entry in per_param.items():
        _require(isinstance(entry, dict), path, f"{field}.state[{pid}]", "must be a dict")
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                _require(
                    tuple(value.shape) == shapes[pid],
                    path,
                    f"{field}.state[{pid}].{key}",
                    f"has shape {list(value.shape)}; its parameter has {list(shapes[pid])}",
                )
                _require(
                    bool(torch.isfinite(value).all()),
                    path,
                    f"{field}.state[{pid}].{key}",
                    "holds NaN or infinite values",
                )


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def contained_file(directory: Path, name: str) -> Path:
    """directory/name, refused when it (or a symlink on the way) leads outside the directory or
    is not a regular file: a model directory never reads someone else's files."""
    target = directory / name
    root = directory.resolve()
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, or a symlink loop
        raise ModelError(f"{target}: cannot be opened ({_short(exc)})") from None
    if not resolved.is_relative_to(root):
        raise ModelError(f"{target}: points outside the model directory (to {resolved}); refused")
    if not resolved.is_file():
        raise ModelError(f"{target}: is not a regular file")
    return target


def _check_keys(
    data: Mapping[str, Any],
    known: set[str],
    file: Path,
    prefix: str,
    optional: set[str] | frozenset = frozenset(),
) -> None:
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise ModelError(f"{file}: unknown field(s) {_show([prefix + str(k) for k in unknown])}")
    missing = sorted(known - set(data) - set(optional))
    if missing:
        raise ModelError(f"{file}: missing field(s) {_show([prefix + k for k in missing])}")


def _require(ok: bool, file: Path, field: str, what: str) -> None:
    if not ok:
        raise ModelError(f"{file}: {field} {what}")


def _require_finite(value: Any, file: Path, field: str) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            raise ModelError(f"{file}: {field} is {item}, not a finite number")


def _conforms(value: Any, tp: Any) -> bool:
    """Does a JSON value fit a dataclass field's annotation (int, float, str, bool, None, unions,
    tuples/lists of those)?"""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _is_int(value)
    if tp is float:
        return _is_number(value)
    if tp is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(tp)
        if not args:
            return True
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
    return False


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if typing.get_origin(tp) is None else str(tp).replace("typing.", "")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any, finite: bool = True) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not finite or math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _is_timestamp(value: Any) -> bool:
    import pandas as pd

    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _show(value: Any, limit: int = 120) -> str:
    """A value for an error message: its repr, cut short (a field may hold megabytes)."""
    text = repr(value) if not isinstance(value, np.ndarray) else f"array{list(value.shape)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
