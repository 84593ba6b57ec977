"""A model registry on disk: trained generators keyed by configuration and source fingerprint.

A nightly job should not retrain when the data has not really changed. The registry keeps, per
configuration, every model it was given together with what it was trained on (the source
fingerprint, the whole-table profile, a bounded sample of the training table and its schema), its
metrics and training time. The next run looks up the latest entry for its configuration and asks
`decide_reuse`: identical data -> reuse; same columns and no significant shift between the stored
table and the new one -> reuse; otherwise ->
retrain and register the new model. Null rates and category frequencies are compared on the
whole-table profiles (every row counted); continuous distributions with KS on the samples, as a
profile has no histogram. An entry registered before profiles were kept (no profile.json) is
compared on its sample snapshot alone, as it was then, and the reason says so.

Layout under the registry root `R`:

    R/.lock                          flock held while writing (and while reading the index)
    R/entries/<id>.json              one entry; written last, atomically, so it only exists for a
                                     complete model
    R/models/<id>/model/             the saved generator (an opaque directory, copied in)
    R/models/<id>/snapshot.parquet   up to `sample_rows` rows of the training table
    R/models/<id>/profile.json       the whole-table profile (TableProfile.to_dict; kilobytes)

The model folder is copied to a hidden temporary name inside `R/models` and renamed into place,
and the entry JSON is written to a temporary file and `os.replace`d, so a crash at any point
leaves either a complete entry or none (plus a hidden leftover that the next write removes).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.flows.io.frames import frame_hash as frame_fingerprint  # the one frame hash
from synthpipe.flows.outputs import file_lock
from synthpipe.generators.errors import ConfigError, ModelError
from synthpipe.generators.profile import TableProfile
from synthpipe.validators import drift
from synthpipe.validators.drift import Correction

FORMAT_VERSION = 1
SNAPSHOT_ROWS = 5_000  # rows of the training table kept for the tests a profile cannot answer (KS)

# shift_fn(reference, current, schema_dict) -> (shifted, summary). The reference is the stored sample.
ShiftFn = Callable[[pd.DataFrame, pd.DataFrame, Mapping[str, Any]], tuple[bool, str]]


@dataclass
class Entry:
    """One registered model. Paths are absolute; `id` is what report.json's model.id shows."""

    id: str
    config_key: str
    fingerprint: str
    created_at: str
    metrics: dict[str, Any]
    fit_seconds: float
    rows: int  # rows of the source table (the snapshot holds at most SNAPSHOT_ROWS of them)
    data_hash: str  # frame_fingerprint of the table given to `register` (the run's sample)
    schema: dict[str, Any]
    model_dir: Path
    snapshot_path: Path
    extra: dict[str, Any] = field(default_factory=dict)
    profile_path: Path | None = None  # None: registered before whole-table profiles were kept

    def profile(self) -> TableProfile | None:
        """The stored whole-table profile, or None for an entry that has none."""
        if self.profile_path is None:
            return None
        try:
            return TableProfile.from_dict(json.loads(self.profile_path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(
                f"registry entry {self.id}: cannot read its profile {self.profile_path} ({exc})"
            ) from None

    def snapshot(self) -> pd.DataFrame:
        """The stored sample of the training table."""
        try:
            return pd.read_parquet(self.snapshot_path)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"registry entry {self.id}: cannot read its snapshot {self.snapshot_path} ({exc})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_dir"], out["snapshot_path"] = str(self.model_dir), str(self.snapshot_path)
        out["profile_path"] = None if self.profile_path is None else str(self.profile_path)
        return out


class ModelRegistry:
    """Store, find and choose between trained generators. Safe for concurrent processes."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        sample_rows: int = SNAPSHOT_ROWS,
        lock_timeout_s: float = 600.0,
        correction: Correction = "holm",
    ):
        self.root = Path(root)
        self.correction = correction
        self.sample_rows = sample_rows
        self.lock_timeout_s = lock_timeout_s
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"registry {self.root} exists and is not a directory")

    # ---- reading ------------------------------------------------------------------------------

    def entries(self, config_key: str | None = None) -> list[Entry]:
        """All entries (for one configuration when `config_key` is given), oldest first."""
        folder = self.root / "entries"
        if not folder.is_dir():
            return []
        found = []
        for path in folder.glob("*.json"):
            entry = self._read_entry(path)
            if config_key is None or entry.config_key == config_key:
                found.append(entry)
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def lookup(self, config_key: str) -> Entry | None:
        """The latest entry registered for `config_key`, or None."""
        entries = self.entries(config_key)
        return entries[-1] if entries else None

    def get(self, entry_id: str) -> Entry:
        path = self.root / "entries" / f"{entry_id}.json"
        if not path.is_file():
            raise ModelError(f"registry {self.root} has no model {entry_id!r}")
        return self._read_entry(path)

    # ---- writing ------------------------------------------------------------------------------

    def register(
        self,
        model_dir: str | os.PathLike,
        config_key: str,
        fingerprint: str,
        metrics: Mapping[str, Any],
        fit_seconds: float,
        snapshot_df: pd.DataFrame,
        schema_dict: Mapping[str, Any],
        *,
        extra: Mapping[str, Any] | None = None,
        seed: int = 0,
        profile: TableProfile | None = None,
    ) -> Entry:
        """Copy the saved model at `model_dir` into the registry and record it; returns the entry.

        `snapshot_df` is the training table (or the run's sample of it); a uniform sample of at
        most `sample_rows` rows of it (seeded) is stored as Parquet. `profile`, the whole-table
        profile of the source, is stored as JSON for the next run's drift check. `metrics` and
        `extra` must be JSON-serialisable.
        """
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelError(f"cannot register {model_dir}: not a saved model directory")
        entry_id = _new_id(config_key)
        models, entries = self.root / "models", self.root / "entries"
        models.mkdir(parents=True, exist_ok=True)
        entries.mkdir(parents=True, exist_ok=True)
        with self._lock():
            _remove_leftovers(models)
            staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=models))
            try:
                shutil.copytree(model_dir, staging / "model")
                sample = _bounded_sample(snapshot_df, self.sample_rows, seed)
                _write_snapshot(sample, staging / "snapshot.parquet")
                if profile is not None:
                    (staging / "profile.json").write_text(json.dumps(profile.to_dict()))
                final = models / entry_id
                os.replace(staging, final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            entry = Entry(
                id=entry_id,
                config_key=config_key,
                fingerprint=fingerprint,
                created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                metrics=json.loads(json.dumps(dict(metrics), default=_json_default)),
                fit_seconds=float(fit_seconds),
                rows=profile.rows if profile is not None else len(snapshot_df),
                data_hash=frame_fingerprint(snapshot_df),
                schema=json.loads(json.dumps(dict(schema_dict), default=_json_default)),
                model_dir=final / "model",
                snapshot_path=final / "snapshot.parquet",
                extra=json.loads(json.dumps(dict(extra or {}), default=_json_default)),
                profile_path=final / "profile.json" if profile is not None else None,
            )
            record = {"format_version": FORMAT_VERSION, **entry.to_dict()}
            record["model_dir"], record["snapshot_path"] = (
                f"models/{entry_id}/model",
                f"models/{entry_id}/snapshot.parquet",
            )
            record["profile_path"] = f"models/{entry_id}/profile.json" if profile is not None else None
            _atomic_write_text(entries / f"{entry_id}.json", json.dumps(record, indent=1))
        return entry

    def remove(self, entry_id: str) -> None:
        """Forget one entry (its JSON first, so it disappears atomically) and delete its files."""
        with self._lock():
            (self.root / "entries" / f"{entry_id}.json").unlink(missing_ok=True)
            shutil.rmtree(self.root / "models" / entry_id, ignore_errors=True)

    # ---- deciding -----------------------------------------------------------------------------

    def decide_reuse(self, entry: Entry | None, new_df: pd.DataFrame, *args: Any, **options: Any) -> tuple[bool, str]:
        """The module's `decide_reuse` (same arguments) with this registry's sample size and correction."""
        return decide_reuse(entry, new_df, *args, **{"sample_rows": self.sample_rows, "correction": self.correction, **options})

    # ---- internals ----------------------------------------------------------------------------

    def _lock(self) -> Any:
        self.root.mkdir(parents=True, exist_ok=True)
        return file_lock(
            self.root / ".lock",
            timeout_s=self.lock_timeout_s,
            busy=f"model registry {self.root} is being written by another process{{holder}}",
        )

    def _read_entry(self, path: Path) -> Entry:
        try:
            data = json.loads(path.read_text())
            model_dir, snapshot = self.root / data.pop("model_dir"), self.root / data.pop("snapshot_path")
            profile = data.pop("profile_path", None)  # absent from entries written before profiles
            data.pop("format_version", None)
            return Entry(**data, model_dir=model_dir, snapshot_path=snapshot,
                         profile_path=self.root / profile if profile else None)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"registry entry {path} is corrupt ({exc.__class__.__name__}: {exc})") from None


def decide_reuse(
    entry: Entry | None,
    new_df: pd.DataFrame,
    shift_fn: ShiftFn | None = None,
    *,
    fingerprint: str | None = None,
    profile: TableProfile | None = None,
    seed: int = 0,
    sample_rows: int = SNAPSHOT_ROWS,
    correction: Correction = "holm",
) -> tuple[bool, str]:
    """Reuse `entry`'s model for `new_df`, or retrain? Returns (reused, reason).

    `new_df` is the new run's sample and `profile` the new source's whole-table profile. In
    order: no entry -> retrain; identical data (same `fingerprint`, or the same content hash)
    -> reuse, "same data"; columns added, removed or of another dtype -> retrain; then
    `shift_fn(stored sample, sample of new_df, schema)` (default `default_shift_test` with
    `correction`, "bh" or "holm", on the profiles where both exist) decides. With both profiles
    the reason also names ranges and categories of the old table that the new one lacks. An
    entry without a stored profile is compared on its sample snapshot, and the reason says so.
    """
    if entry is None:
        return False, "no registered model for this configuration"
    if fingerprint is not None and fingerprint == entry.fingerprint:
        return True, "same data"
    if frame_fingerprint(new_df) == entry.data_hash:
        return True, "same data"
    stored_columns = [c["name"] for c in entry.schema.get("columns", [])]
    added = [c for c in new_df.columns if c not in stored_columns]
    removed = [c for c in stored_columns if c not in new_df.columns]
    if added or removed:
        parts = ([f"added {added}"] if added else []) + ([f"removed {removed}"] if removed else [])
        return False, "columns changed: " + ", ".join(parts)
    retyped = [
        f"{c['name']} {c['dtype']} -> {new_df[c['name']].dtype}"
        for c in entry.schema.get("columns", [])
        if c.get("dtype") and str(new_df[c["name"]].dtype) != c["dtype"]
    ]
    if retyped:
        return False, "column types changed: " + ", ".join(retyped)
    stored = entry.profile() if profile is not None else None
    profiles = (stored, profile) if stored is not None and profile is not None else None
    reference = entry.snapshot()
    current = _bounded_sample(new_df, sample_rows, seed)
    if shift_fn is None:
        shifted, summary = default_shift_test(reference, current, entry.schema, correction=correction, profiles=profiles)
    else:
        shifted, summary = shift_fn(reference, current, entry.schema)
    if profiles is not None:
        summary = f"whole-table profiles ({stored.rows:,} -> {profile.rows:,} rows): {summary}"
        # Not a reason to retrain by itself (two samples of one distribution rarely share their
        # extremes), but a reused model may emit these values: the report shows them.
        moved = drift.range_changes(stored, profile, entry.schema.get("columns", []))
        if moved:
            summary += "; ranges changed: " + "; ".join(moved[:3]) + (f" (+{len(moved) - 3} more)" if len(moved) > 3 else "")
    elif profile is not None:
        summary += " (sample snapshot only: the entry has no whole-table profile)"
    if shifted:
        return False, f"distribution shift: {summary}"
    return True, f"no shift: {summary}"


def default_shift_test(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Mapping[str, Any],
    *,
    alpha: float = 0.01,
    min_effect: float = 0.05,
    correction: Correction = "holm",
    profiles: tuple[TableProfile, TableProfile] | None = None,
) -> tuple[bool, str]:
    """Per-column two-sample tests (`validators.drift`, the shift checks' own tests), corrected
    for multiple testing by `correction`.

    Numerical, integer and datetime columns: Kolmogorov-Smirnov on the non-null values;
    categorical and boolean columns: chi-squared on the category counts (null as a category);
    every nullable column: chi-squared on the null rate. With `profiles` (old, new: the
    whole-table profiles), category counts and null rates count every row of both tables. A column counts as shifted only if its
    adjusted p-value is below alpha *and* its effect (KS statistic, or total variation distance
    between the shares) is at least `min_effect`, so that a large table does not retrain on
    differences too small to matter. Holm by default: "retrain when any column moved" is a
    family-wise question, and Holm controls the family-wise error as Bonferroni did while never
    rejecting less. Returns (shifted, summary naming the worst columns).
    """
    tests = drift.column_tests(reference, current, schema.get("columns", []), profiles)
    if not tests:
        return False, "no comparable columns"
    report = drift.decide(tests, correction, alpha, min_effect)
    return report.any_shifted, report.summary()


def make_config_key(parts: Mapping[str, Any]) -> str:
    """A stable short hash of the configuration that determines a model (canonical JSON)."""
    text = json.dumps(parts, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- helpers ---------------------------------------------------------------------------------------


def _new_id(config_key: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{config_key[:8]}-{secrets.token_hex(3)}"


def _bounded_sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(df) <= n:
        return df.reset_index(drop=True)
    return df.sample(n=n, random_state=seed).sort_index().reset_index(drop=True)


def _write_snapshot(sample: pd.DataFrame, path: Path) -> None:
    """Parquet keeps the dtypes; object columns Arrow cannot type (mixed values) are stored as text."""
    import pyarrow as pa

    try:
        sample.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        fixed = sample.copy()
        for name in fixed.select_dtypes(include="object").columns:
            fixed[name] = fixed[name].map(str, na_action="ignore")
        fixed.to_parquet(path, index=False)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_leftovers(models: Path) -> None:
    """Hidden staging folders from a writer that crashed (we hold the lock, so none is live)."""
    for stale in models.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path | datetime | pd.Timestamp):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
