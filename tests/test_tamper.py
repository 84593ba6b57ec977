"""The tamper corpus: model directories and checkpoints someone edited are refused with a
ModelError naming the file and the field, before anything large is allocated, and nothing in
them is ever executed (issue 14, point 5).

Each case copies a freshly saved model, edits one thing and loads it. Width bombs (d_model:
10**9 and the like) would need gigabytes if anything were built from them; the message names the
field, which only the checks in generators/model_files.py produce, and they run before any module
exists. Pickle payloads are real: a control load with weights_only=False does write the marker.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from synthpipe.generators import get_generator_class
from synthpipe.generators.base import BaseGenerator
from synthpipe.generators.errors import ModelError

TINY: dict[str, dict[str, Any]] = {
    "vae": {"hidden_dims": (8, 8), "latent_dim": 4},
    "gan": {"generator_dims": (8,), "discriminator_dims": (8,), "embedding_dim": 4, "pac": 2},
    "autoregressive": {"d_model": 8, "n_heads": 2, "n_layers": 1, "n_bins": 8},
}
COMMON = {"epochs": 1, "batch_size": 20, "progress": False, "seed": 0, "device": "cpu"}
GENERATORS = list(TINY)


def _table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "amount": np.round(rng.normal(50, 10, n), 2),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "count": rng.integers(0, 1000, n),
            "when": pd.Timestamp("2024-01-01", tz="Europe/Paris")
            + pd.to_timedelta(rng.integers(0, 90, n), "D"),
            "flag": rng.random(n) < 0.3,
            "code": [f"C{i:05d}" for i in range(n)],
            "score": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        }
    )


def _tiny(name: str, **params: Any) -> BaseGenerator:
    """An unfitted generator of the tiny test size (`params` on top)."""
    return get_generator_class(name)(**{**TINY[name], **COMMON, **params})


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    for name in GENERATORS:
        _tiny(name).fit(_table()).save(root / name)
    return {name: root / name for name in GENERATORS}


def _copy(saved: dict[str, Path], name: str, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(saved[name], target)
    return target


# ----------------------------------------------------------------------------------------------
# the corpus: (case id, generators it applies to, tampering, expected file, expected field text)
# ----------------------------------------------------------------------------------------------


def edit_json(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        path = model_dir / "model.json"
        meta = json.loads(path.read_text())
        fn(meta)
        path.write_text(json.dumps(meta))

    return apply


def edit_weights(fn: Callable[[dict[str, torch.Tensor]], Any]) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        path = model_dir / "model.safetensors"
        tensors = load_file(path)
        fn(tensors)
        save_file(tensors, path)

    return apply


def _set(*keys: Any, value: Any) -> Callable[[dict], None]:
    def fn(meta: dict) -> None:
        node = meta
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return fn


def _delete(*keys: Any) -> Callable[[dict], None]:
    def fn(meta: dict) -> None:
        node = meta
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return fn


def _first(tensors: dict[str, torch.Tensor], floating: bool = True) -> str:
    return next(
        k for k in sorted(tensors) if tensors[k].is_floating_point() == floating and tensors[k].dim() == 2
    )


def _reshape(tensors: dict[str, torch.Tensor]) -> None:
    key = _first(tensors)
    tensors[key] = torch.zeros(tensors[key].shape[0] + 1, tensors[key].shape[1])


def _retype(tensors: dict[str, torch.Tensor]) -> None:
    key = _first(tensors)
    tensors[key] = tensors[key].double()


def _add_tensor(tensors: dict[str, torch.Tensor]) -> None:
    tensors[f"{_first(tensors).split('.')[0]}.backdoor.weight"] = torch.zeros(4, 4)


def _drop_tensor(tensors: dict[str, torch.Tensor]) -> None:
    del tensors[_first(tensors)]


def _nan_weights(tensors: dict[str, torch.Tensor]) -> None:
    key = _first(tensors)
    tensors[key] = torch.full_like(tensors[key], math.nan)


def _truncate(keep: int | None = None, cut: int = 0) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        path = model_dir / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(data[:keep] if keep is not None else data[: len(data) - cut])

    return apply


def _header_length(value: int) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        path = model_dir / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(value.to_bytes(8, "little") + data[8:])

    return apply


def _garble_header(model_dir: Path) -> None:
    path = model_dir / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:12] = b"\xff\xfe{["
    path.write_bytes(bytes(data))


def _symlink_outside(filename: str) -> Callable[[Path], None]:
    """A valid-looking file that lives outside the model directory."""

    def apply(model_dir: Path) -> None:
        elsewhere = model_dir.parent / f"elsewhere-{filename}"
        shutil.copy(model_dir / filename, elsewhere)
        (model_dir / filename).unlink()
        (model_dir / filename).symlink_to(elsewhere)

    return apply


def _symlink_to(target: str, filename: str = "model.safetensors") -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        (model_dir / filename).unlink()
        (model_dir / filename).symlink_to(target)

    return apply


def _huge_json(model_dir: Path) -> None:
    with open(model_dir / "model.json", "r+b") as f:  # sparse: costs no disk
        f.truncate(300 * 2**20)


def _write(text: str, filename: str = "model.json") -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        (model_dir / filename).write_text(text)

    return apply


def _many_categories(meta: dict) -> None:
    columns = meta["codec"].get("columns") or meta["codec"]["categories"]  # mode codec / token codec
    columns["city"]["categories"] = [f"c{i}" for i in range(100_000)]


def _discrete_repeated_value(meta: dict) -> None:
    """A discrete column decodes a mode to its value by position, so its values must ascend."""
    meta["codec"]["columns"]["amount"].update(discrete=True, weights=[0.5, 0.5], means=[1.0, 1.0], stds=[1e-9, 1e-9])


def _column_field(field: str, value: Any, column: str = "when") -> Callable[[dict], None]:
    def fn(meta: dict) -> None:
        for col in meta["codec"]["schema"]["columns"]:
            if col["name"] == column:
                col[field] = value

    return fn


def _id_format(field: str, value: Any) -> Callable[[dict], None]:
    def fn(meta: dict) -> None:
        for col in meta["codec"]["schema"]["columns"]:
            if col["name"] == "code":
                col["id_format"][field] = value

    return fn


ALL = tuple(GENERATORS)
MODE = ("vae", "gan")  # the families with the mode-specific codec
J, W = "model.json", "model.safetensors"
WIDTH = {  # a consistent-looking edit within the bounds: the weights no longer match it
    "vae": ("latent_dim", 5),
    "gan": ("embedding_dim", 6),
    "autoregressive": ("d_model", 16),
}
BOMBS = {  # memory bombs: one width far beyond any model
    "vae": [("latent_dim", 10**9), ("hidden_dims", [10**9, 8])],
    "gan": [("embedding_dim", 10**9), ("generator_dims", [10**9]), ("discriminator_dims", [8, 10**9])],
    "autoregressive": [("d_model", 10**9), ("n_bins", 10**9), ("n_layers", 10**6), ("n_heads", 10**9)],
}
GIANT = {  # every width within bounds, but together billions of weights (the meta-device estimate)
    "vae": {"hidden_dims": [65_536, 65_536]},
    "gan": {"generator_dims": [65_536] * 4},
    "autoregressive": {"d_model": 65_536, "n_heads": 4, "n_layers": 64},
}

CASES: list[tuple[str, tuple[str, ...], Callable[[Path], None], str, str]] = [
    # model.json: structure
    ("json-unknown-top-key", ALL, edit_json(_set("evil", value=1)), J, r"unknown field.*'evil'"),
    ("json-missing-codec", ALL, edit_json(_delete("codec")), J, r"missing field.*'codec'"),
    (
        "json-format-1-with-codec",
        ALL,
        edit_json(_set("format_version", value=1)),
        J,
        r"unknown field.*'codec'|format_version 1",
    ),
    ("json-not-an-object", ALL, _write("[1, 2, 3]"), J, r"top level"),
    ("json-truncated", ALL, _write('{"format_version": 1, "generator": "g'), J, r"corrupt model metadata"),
    ("json-huge-file", ALL, _huge_json, J, r"above the \d+-byte limit"),
    ("json-format-version", ALL, edit_json(_set("format_version", value=99)), J, r"format_version"),
    ("json-format-version-type", ALL, edit_json(_set("format_version", value="2")), J, r"format_version"),
    (
        "json-unknown-generator",
        ALL,
        edit_json(_set("generator", value="pickle")),
        J,
        r"generator is 'pickle'",
    ),
    ("json-history-not-numbers", ALL, edit_json(_set("history", value={"loss": ["x"]})), J, r"history\.loss"),
    # model.json: params
    ("param-unknown", ALL, edit_json(_set("params", "exec", value="rm -rf /")), J, r"params\.exec"),
    ("param-missing", ALL, edit_json(_delete("params", "batch_size")), J, r"params\.batch_size"),
    ("param-str-for-int", ALL, edit_json(_set("params", "epochs", value="300")), J, r"params\.epochs"),
    (
        "param-bool-for-int",
        ALL,
        edit_json(_set("params", "batch_size", value=True)),
        J,
        r"params\.batch_size",
    ),
    (
        "param-str-for-bool",
        ALL,
        edit_json(_set("params", "mixed_precision", value="yes")),
        J,
        r"params\.mixed_precision",
    ),
    (
        "param-nan",
        ALL,
        edit_json(_set("params", "learning_rate", value=math.nan)),
        J,
        r"params\.learning_rate is nan",
    ),
    (
        "param-inf",
        ALL,
        edit_json(_set("params", "weight_decay", value=math.inf)),
        J,
        r"params\.weight_decay is inf",
    ),
    ("param-invalid-value", ALL, edit_json(_set("params", "val_fraction", value=5.0)), J, r"val_fraction"),
    ("param-device", ALL, edit_json(_set("params", "device", value="cuda; rm -rf /")), J, r"params\.device"),
    (
        "param-max-categories-bomb",
        ALL,
        edit_json(_set("params", "max_categories", value=10**9)),
        J,
        r"params\.max_categories",
    ),
    (
        "param-max-modes-bomb",
        ALL,
        edit_json(_set("params", "max_modes", value=10**9)),
        J,
        r"params\.max_modes",
    ),
    # model.json: the codec's state (mode-specific codec: gan, vae; token codec: autoregressive)
    (
        "codec-huge-category-list",
        ALL,
        edit_json(_many_categories),
        J,
        r"(columns|categories)\['city'\]\.categories",
    ),
    (
        "codec-nan-mean",
        MODE,
        edit_json(_set("codec", "columns", "amount", "means", 0, value=math.nan)),
        J,
        r"columns\['amount'\]\.means",
    ),
    (
        "codec-zero-std",
        MODE,
        edit_json(_set("codec", "columns", "amount", "stds", 0, value=0.0)),
        J,
        r"columns\['amount'\]\.stds",
    ),
    (
        "codec-modes-bomb",
        MODE,
        edit_json(_set("codec", "columns", "amount", "weights", value=[1.0] * 10**5)),
        J,
        r"columns\['amount'\]\.weights",
    ),
    (
        "codec-discrete-not-a-bool",
        MODE,
        edit_json(_set("codec", "columns", "amount", "discrete", value="yes")),
        J,
        r"columns\['amount'\]\.discrete",
    ),
    (
        "codec-discrete-values-not-ascending",
        MODE,
        edit_json(_discrete_repeated_value),
        J,
        r"columns\['amount'\]\.means",
    ),
    ("codec-missing-column", MODE, edit_json(_delete("codec", "columns", "city")), J, r"codec\.columns"),
    (
        "codec-params-bomb",
        ALL,
        edit_json(_set("codec", "params", "max_categories", value=10**12)),
        J,
        r"codec\.params\.max_categories",
    ),
    (
        "codec-ar-missing-category-column",
        ("autoregressive",),
        edit_json(_delete("codec", "categories", "city")),
        J,
        r"codec\.categories",
    ),
    (
        "codec-ar-tail-probs",
        ("autoregressive",),
        edit_json(_set("codec", "categories", "city", "tail_probs", value=[math.nan])),
        J,
        r"categories\['city'\]\.tail_probs",
    ),
    (
        "codec-ar-n-bins-bomb",
        ("autoregressive",),
        edit_json(_set("codec", "params", "n_bins", value=10**9)),
        J,
        r"codec\.params\.n_bins",
    ),
    ("schema-unknown-field", ALL, edit_json(_column_field("__class__", "os.system")), J, r"'.*__class__'"),
    ("schema-unknown-kind", ALL, edit_json(_column_field("kind", "pickle")), J, r"columns\[\d+\]\.kind"),
    ("schema-wrong-type-nullable", ALL, edit_json(_column_field("nullable", "no")), J, r"nullable"),
    ("schema-timezone-path", ALL, edit_json(_column_field("timezone", "../../etc/passwd")), J, r"timezone"),
    (
        "schema-timezone-dateutil-path",
        ALL,
        edit_json(_column_field("timezone", "dateutil//etc/passwd")),
        J,
        r"timezone",
    ),
    ("schema-bad-timestamp", ALL, edit_json(_column_field("min", "not a time")), J, r"\.min"),
    ("schema-id-width-bomb", ALL, edit_json(_id_format("width", 10**9)), J, r"id_format\.width"),
    (
        "schema-duplicate-name",
        ALL,
        edit_json(_column_field("name", "amount", column="count")),
        J,
        r"appears twice",
    ),
    # model.json: each family's extra state
    ("extra-vae-unknown", ("vae",), edit_json(_set("extra", "payload", value="x")), J, r"extra\.payload"),
    (
        "extra-gan-counts-length",
        ("gan",),
        edit_json(_set("extra", "category_counts", value=[1] * 10**4)),
        J,
        r"extra\.category_counts",
    ),
    (
        "extra-gan-warnings-type",
        ("gan",),
        edit_json(_set("extra", "warnings", value=[{"x": 1}])),
        J,
        r"extra\.warnings",
    ),
    (
        "extra-ar-unknown",
        ("autoregressive",),
        edit_json(_set("extra", "columns", value=["city"])),
        J,
        r"extra\.columns",
    ),
    (
        "codec-ar-bins-nan",
        ("autoregressive",),
        edit_json(_set("codec", "binned", "amount", "lo", 0, value=math.nan)),
        J,
        r"binned\['amount'\]\.lo",
    ),
    (
        "codec-ar-bins-bomb",
        ("autoregressive",),
        edit_json(_set("codec", "binned", "amount", "lo", value=list(range(10**5)))),
        J,
        r"binned\['amount'\]\.lo",
    ),
    (
        "codec-ar-bins-scale",
        ("autoregressive",),
        edit_json(_set("codec", "binned", "amount", "scale", value=0)),
        J,
        r"binned\['amount'\]\.scale",
    ),
    (
        "codec-ar-support-shares",
        ("autoregressive",),
        edit_json(_set("codec", "binned", "amount", "rest", value=[0.5] * 200)),
        J,
        r"binned\['amount'\]\.(rest|support)",
    ),
    (
        "codec-ar-support-off-grid",
        ("autoregressive",),
        edit_json(
            lambda m: m["codec"]["binned"]["amount"].update(
                support=[0.5], support_weight=[0.5], rest=[1.0] * len(m["codec"]["binned"]["amount"]["lo"])
            )
        ),
        J,
        r"binned\['amount'\]\.support.*grid values",
    ),
    (
        "format-1-autoregressive",
        ("autoregressive",),
        edit_json(lambda m: m.update(format_version=1, encoder=m.pop("codec"))),
        J,
        r"model\.json: format_version 1 autoregressive models",
    ),
    (
        "history-stop-object",
        ALL,
        edit_json(_set("history", "stop", value=[{"evil": {"nested": 1}}])),
        J,
        r"history\.stop",
    ),
    # model.safetensors
    ("weights-truncated", ALL, _truncate(cut=100), W, r"truncated"),
    ("weights-truncated-in-header", ALL, _truncate(keep=20), W, r"header length \d+ does not fit"),
    ("weights-no-header", ALL, _truncate(keep=4), W, r"truncated weights file"),
    ("weights-header-length-bomb", ALL, _header_length(2**60), W, r"header length \d+ does not fit"),
    ("weights-header-garbled", ALL, _garble_header, W, r"corrupt weights header"),
    ("weights-wrong-shape", ALL, edit_weights(_reshape), W, r"has shape \[.*\], but the params imply"),
    (
        "weights-wrong-dtype",
        ALL,
        edit_weights(_retype),
        W,
        r"is torch\.float64, but the model needs torch\.float32",
    ),
    ("weights-extra-tensor", ALL, edit_weights(_add_tensor), W, r"backdoor\.weight.*does not have"),
    ("weights-missing-tensor", ALL, edit_weights(_drop_tensor), W, r"missing"),
    ("weights-nan", ALL, edit_weights(_nan_weights), W, r"NaN or infinite"),
    # paths outside the directory
    ("weights-symlink-outside", ALL, _symlink_outside(W), W, r"points outside the model directory"),
    ("weights-symlink-dev-zero", ALL, _symlink_to("/dev/zero"), W, r"points outside the model directory"),
    ("json-symlink-outside", ALL, _symlink_outside(J), J, r"points outside the model directory"),
    ("json-symlink-etc-passwd", ALL, _symlink_to("/etc/passwd", J), J, r"points outside the model directory"),
]
for _name in GENERATORS:
    _field, _value = WIDTH[_name]
    CASES.append(
        (
            f"param-{_field}-changed",
            (_name,),
            edit_json(_set("params", _field, value=_value)),
            W,
            r"has shape .* but the params imply",
        )
    )
    for _field, _value in BOMBS[_name]:
        CASES.append(
            (
                f"bomb-{_field}",
                (_name,),
                edit_json(_set("params", _field, value=_value)),
                J,
                rf"params\.{_field}",
            )
        )
    CASES.append(
        (
            "bomb-billions-of-weights",
            (_name,),
            edit_json(lambda m, g=GIANT[_name]: m["params"].update(g)),
            J,
            r"params imply [\d,]+ weights, above the limit",
        )
    )

PARAMS = [
    pytest.param(name, tamper, file, field, id=f"{name}-{case}")
    for case, applies, tamper, file, field in CASES
    for name in applies
]


@pytest.mark.parametrize(("name", "tamper", "file", "field"), PARAMS)
def test_tampered_model_is_refused(
    saved: dict[str, Path], tmp_path: Path, name: str, tamper: Callable[[Path], None], file: str, field: str
) -> None:
    model_dir = _copy(saved, name, tmp_path)
    tamper(model_dir)
    with pytest.raises(ModelError) as refused:
        BaseGenerator.load(model_dir)
    message = str(refused.value)
    assert file in message, message
    assert "\n" not in message
    assert re.search(field, message), message
    # the class-specific entry point refuses it just the same
    with pytest.raises(ModelError):
        get_generator_class(name).load(model_dir)


@pytest.mark.parametrize("name", GENERATORS)
def test_untampered_copy_loads_and_samples(saved: dict[str, Path], tmp_path: Path, name: str) -> None:
    """The corpus's control: the same copy, unedited, loads and samples (the checks refuse
    tampering, not models)."""
    model_dir = _copy(saved, name, tmp_path)
    model = BaseGenerator.load(model_dir)
    assert len(model.sample(20, seed=1)) == 20


@pytest.mark.parametrize("name", MODE)
def test_format_1_copy_loads_and_samples(saved: dict[str, Path], tmp_path: Path, name: str) -> None:
    """A gan or vae directory as synthpipe wrote it before the codec rename still loads, with
    the same rows; its "encoder" state gets the same checks as a format-2 "codec"."""
    model_dir = _copy(saved, name, tmp_path)
    expected = BaseGenerator.load(model_dir).sample(20, seed=1)

    def downgrade(meta: dict) -> None:
        meta["format_version"], meta["encoder"] = 1, meta.pop("codec")

    edit_json(downgrade)(model_dir)
    pd.testing.assert_frame_equal(BaseGenerator.load(model_dir).sample(20, seed=1), expected)
    edit_json(_set("encoder", "columns", "amount", "stds", 0, value=0.0))(model_dir)
    with pytest.raises(ModelError, match=r"model\.json: encoder\.columns\['amount'\]\.stds"):
        BaseGenerator.load(model_dir)


def test_symlink_inside_the_directory_is_fine(saved: dict[str, Path], tmp_path: Path) -> None:
    model_dir = _copy(saved, "gan", tmp_path)
    (model_dir / "weights.bin").write_bytes((model_dir / W).read_bytes())
    (model_dir / W).unlink()
    (model_dir / W).symlink_to("weights.bin")
    assert len(BaseGenerator.load(model_dir).sample(5)) == 5


def test_loaded_model_forgets_the_saved_checkpoint_dir(saved: dict[str, Path], tmp_path: Path) -> None:
    """checkpoint_dir is a path read from the file: a later fit must not write where it says."""
    model_dir = _copy(saved, "vae", tmp_path)
    edit_json(_set("params", "checkpoint_dir", value="../../escape"))(model_dir)
    assert BaseGenerator.load(model_dir).config.checkpoint_dir is None


def test_wrong_generator_class_is_refused(saved: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="holds a 'vae' model, not 'gan'"):
        get_generator_class("gan").load(saved["vae"])


# ----------------------------------------------------------------------------------------------
# checkpoints: torch.load(weights_only=True), checked against the model they resume
# ----------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling calls open(marker, "w"): a harmless stand-in for running any code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def _evil_checkpoints(folder: Path, marker: Path) -> dict[str, Path]:
    folder.mkdir()
    out = {}
    out["top-level"] = folder / "top.pt"
    torch.save(_Payload(marker), out["top-level"])
    out["nested"] = folder / "nested.pt"
    torch.save({"generator": "vae", "next_epoch": 1, "history": {"loss": _Payload(marker)}}, out["nested"])
    out["legacy-format"] = folder / "legacy.pt"
    torch.save({"modules": _Payload(marker)}, out["legacy-format"], _use_new_zipfile_serialization=False)
    out["raw-pickle"] = folder / "raw.pt"
    out["raw-pickle"].write_bytes(pickle.dumps({"generator": _Payload(marker)}))
    return out


@pytest.mark.parametrize("kind", ["top-level", "nested", "legacy-format", "raw-pickle"])
def test_pickle_payload_in_checkpoint_is_refused(tmp_path: Path, kind: str) -> None:
    # control: the payload is live (loading it without weights_only runs it)
    control_marker = tmp_path / "control-ran"
    control = _evil_checkpoints(tmp_path / "control", control_marker)[kind]
    try:
        torch.load(control, weights_only=False)
    except Exception:  # the payload ran, then the structure around it may not rebuild
        pass
    assert control_marker.exists()

    marker = tmp_path / "payload-ran"
    evil = _evil_checkpoints(tmp_path / "evil", marker)[kind]
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    shutil.copy(evil, checkpoints / "checkpoint.pt")
    model = _tiny("vae", checkpoint_dir=str(checkpoints))
    with pytest.raises(
        ModelError, match=r"checkpoint\.pt: refused: the checkpoint holds something other than"
    ):
        model.fit(_table(), resume=True)
    assert not marker.exists()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real checkpoint of each generator (one epoch)."""
    root = tmp_path_factory.mktemp("checkpoints")
    for name in GENERATORS:
        _tiny(name, checkpoint_dir=str(root / name)).fit(_table())
    return {name: root / name / "checkpoint.pt" for name in GENERATORS}


def _resume(name: str, checkpoint: Path, tmp_path: Path, **params: Any) -> BaseGenerator:
    folder = tmp_path / "resume"
    folder.mkdir(exist_ok=True)
    if checkpoint != folder / "checkpoint.pt":
        shutil.copy(checkpoint, folder / "checkpoint.pt")
    return _tiny(name, **{"epochs": 2, **params}, checkpoint_dir=str(folder)).fit(_table(), resume=True)


def _edit_checkpoint(source: Path, tmp_path: Path, fn: Callable[[dict], Any]) -> Path:
    state = torch.load(source, weights_only=True)
    fn(state)
    target = tmp_path / "edited.pt"
    torch.save(state, target)
    return target


@pytest.mark.parametrize("name", GENERATORS)
def test_checkpoint_resumes_untampered(checkpoints: dict[str, Path], tmp_path: Path, name: str) -> None:
    model = _resume(name, checkpoints[name], tmp_path)
    assert len(model.history_["epoch"]) == 2


@pytest.mark.parametrize(
    ("owner", "reader"), [("gan", "vae"), ("vae", "autoregressive"), ("autoregressive", "gan")]
)
def test_checkpoint_of_another_generator_is_refused(
    checkpoints: dict[str, Path], tmp_path: Path, owner: str, reader: str
) -> None:
    with pytest.raises(ModelError, match=rf"is a '{owner}' checkpoint, not '{reader}'"):
        _resume(reader, checkpoints[owner], tmp_path)
    # relabelled as the reader's own: its weights still do not fit
    forged = _edit_checkpoint(checkpoints[owner], tmp_path, _set("generator", value=reader))
    with pytest.raises(ModelError, match=r"edited\.pt|checkpoint\.pt"):
        _resume(reader, forged, tmp_path)


@pytest.mark.parametrize("name", GENERATORS)
def test_checkpoint_with_other_widths_is_refused(
    checkpoints: dict[str, Path], tmp_path: Path, name: str
) -> None:
    field, value = WIDTH[name]
    with pytest.raises(ModelError, match=r"checkpoint\.pt: tensor .* has shape .* but the params imply"):
        _resume(name, checkpoints[name], tmp_path, **{field: value})


def _grow_first_weight(state: dict) -> None:
    module = next(iter(state["modules"].values()))
    key = next(k for k, v in module.items() if v.dim() == 2)
    module[key] = torch.zeros(module[key].shape[0] + 3, module[key].shape[1])


def _grow_optimizer_state(state: dict) -> None:
    opt = next(iter(state["optimizers"].values()))
    pid, entry = next(iter(opt["state"].items()))
    entry["exp_avg"] = torch.zeros(7, 7, 7)


CHECKPOINT_CASES = {
    "weight-shape": (_grow_first_weight, r"tensor .* has shape"),
    "optimizer-state-shape": (_grow_optimizer_state, r"optimizers\.\w+\.state\[\d+\]\.exp_avg has shape"),
    "missing-module": (lambda s: s["modules"].pop(next(iter(s["modules"]))), r"modules are"),
    "rng-size": (_set("rng", value=torch.zeros(3, dtype=torch.uint8)), r"rng has 3 bytes"),
    "rng-type": (_set("torch_rng", value=torch.zeros(3)), r"torch_rng must be a uint8 tensor"),
    "unknown-key": (_set("exec", value="x"), r"unknown field.*'exec'"),
    "codec-not-json": (_set("codec", value="{not json"), r"codec is not valid JSON"),
    "codec-params-bomb": (
        lambda s: s.update(
            codec=s["codec"].replace('"max_categories": ', '"max_categories": 1000000000000', 1)
        ),
        r"codec\.params\.max_categories",
    ),
    "history-not-json": (_set("history", value="[oops"), r"history is not valid JSON"),
    "history-values": (_set("history", value='{"loss": ["x"]}'), r"history\.loss"),
    "next-step-type": (_set("next_step", value=1.5), r"next_step"),
    "next-step-past-epoch": (_set("next_step", value=10**6), r"next_step"),
    "partial-nan": (_set("partial", value=torch.tensor([math.nan])), r"partial"),
    "partial-shape": (_set("partial", value=torch.zeros(9)), r"partial has shape"),
    "cuda-rng-type": (_set("cuda_rng", value="x"), r"cuda_rng must be a uint8 tensor"),
    "best-missing-key": (lambda s: s["best"].pop("stale"), r"missing field.*'best\.stale'"),
    "best-score-type": (lambda s: s["best"].update(score="low"), r"best\.score"),
    "best-modules-shape": (
        lambda s: s["best"].update(
            modules={k: {p: torch.zeros(9, 9, 9) for p in m} for k, m in s["modules"].items()}
        ),
        r"best .* weights|tensor .* has shape",
    ),
    "best-modules-nan": (
        lambda s: s["best"].update(
            modules={
                k: {p: torch.full_like(t, math.nan) if t.is_floating_point() else t for p, t in m.items()}
                for k, m in s["modules"].items()
            }
        ),
        r"best\.modules\.\w+\..* NaN",
    ),
    "weights-nan": (
        lambda s: [
            m.update({p: torch.full_like(t, math.nan)})
            for m in s["modules"].values()
            for p, t in list(m.items())[:1]
        ],
        r"modules\.\w+\..* NaN",
    ),
    "next-epoch-type": (_set("next_epoch", value="1"), r"next_epoch"),
}


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_tampered_checkpoint_is_refused(
    checkpoints: dict[str, Path], tmp_path: Path, name: str, case: str
) -> None:
    edit, field = CHECKPOINT_CASES[case]
    edited = _edit_checkpoint(checkpoints[name], tmp_path, edit)
    with pytest.raises(ModelError, match=rf"checkpoint\.pt: .*{field}|checkpoint\.pt:? {field}") as refused:
        _resume(name, edited, tmp_path)
    assert "\n" not in str(refused.value)


def test_truncated_checkpoint_is_refused(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(checkpoints["gan"].read_bytes()[:200])
    with pytest.raises(ModelError, match=r"checkpoint\.pt: cannot read checkpoint"):
        _resume("gan", cut, tmp_path)


# ----------------------------------------------------------------------------------------------
# the CLI: exit 1, one clear line naming the file and the field, no traceback
# ----------------------------------------------------------------------------------------------

CLI_CASES = [
    (
        "autoregressive",
        edit_json(_set("params", "d_model", value=10**9)),
        r"model\.json: params\.d_model is 1000000000",
    ),
    ("gan", _truncate(cut=100), r"model\.safetensors: .*truncated"),
    ("vae", _symlink_outside(W), r"model\.safetensors: points outside the model directory"),
    ("gan", edit_weights(_reshape), r"model\.safetensors: tensor '.*' has shape"),
    ("vae", edit_json(_column_field("timezone", "../../etc/passwd")), r"model\.json: .*timezone"),
]


@pytest.mark.parametrize(
    ("name", "tamper", "message"), CLI_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CLI_CASES)]
)
def test_cli_sample_refuses_tampered_model(
    saved: dict[str, Path], tmp_path: Path, name: str, tamper: Callable[[Path], None], message: str
) -> None:
    model_dir = _copy(saved, name, tmp_path)
    tamper(model_dir)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthpipe.flows.cli",
            "sample",
            str(model_dir),
            "--rows",
            "10",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("synthpipe: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()
