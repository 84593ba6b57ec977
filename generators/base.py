"""What every generator shares: the public contract, device choice, seeding, the training loop
(validation split, early stopping, best checkpoint, resumable checkpoints, time budget, progress
bar, mixed precision) and pickle-free persistence.

A model family subclasses `BaseGenerator` and fills in four hooks: `_build` (create modules and
optimisers), `_train_epoch`, `_validation_loss` and `_sample_encoded`. Everything else lives here
once, so the GAN, VAE and autoregressive models behave the same way.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from synthpipe.generators.errors import ConfigError, DataError, ModelError
from synthpipe.generators.schema import ColumnKind, ColumnSchema, TableSchema, infer_schema
from synthpipe.generators.transforms import TableEncoder

FORMAT_VERSION = 1


@dataclass
class TrainConfig:
    """Training settings shared by every generator. Model families extend this dataclass."""

    epochs: int = 300
    batch_size: int = 500
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    val_fraction: float = 0.1  # rows held out for early stopping and held-out likelihood
    eval_every: int = 5  # epochs between validation scores (and mode-coverage checks)
    patience: int = 6  # validation scores without improvement before stopping; 0 disables
    min_delta: float = 1e-4
    checkpoint_every: int = 10  # epochs between resumable checkpoints (when checkpoint_dir is set)
    checkpoint_dir: str | None = None
    time_budget_s: float | None = None  # stop training after this many seconds
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    mixed_precision: bool = True  # bf16/fp16 autocast on CUDA; ignored on the CPU
    seed: int = 0
    progress: bool = True
    max_categories: int = 500  # categories beyond this are folded into one "other" class
    max_modes: int = 10  # Gaussian-mixture modes per continuous column
    max_fit_rows: int = 20_000  # rows used to fit the mixture of each continuous column


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when a GPU is present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was requested but no CUDA GPU is available; use --device cpu or auto")
    return device


def derive_seed(seed: int, *parts: int) -> int:
    """A seed for shard or stage `parts` of a run, independent of the others (SeedSequence)."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


class BaseGenerator:
    """fit(table) -> self; sample(n, conditions, seed) -> DataFrame; save(path); load(path)."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[TrainConfig]] = TrainConfig

    def __init__(self, **params: Any):
        known = {f.name for f in fields(self.Config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"{self.name} generator: unknown parameter(s) {unknown}; known parameters are {sorted(known)}"
            )
        self.config = self.Config(**params)

    # ---- the public contract ------------------------------------------------------------------

    def fit(self, data: pd.DataFrame, schema: TableSchema | None = None, resume: bool = False) -> BaseGenerator:
        """Train on `data`. With `resume`, continue from the last checkpoint in checkpoint_dir."""
        self._validate_config()
        if len(data) < 2:
            raise DataError(f"cannot train on a table with {len(data)} row(s); at least 2 are needed")
        self.schema_ = schema or infer_schema(data)
        self.device_ = select_device(self.config.device)
        torch.manual_seed(self.config.seed)
        self.generator_ = torch.Generator(device="cpu").manual_seed(self.config.seed)
        checkpoint = self._load_checkpoint() if resume else None
        if resume and checkpoint is None:
            raise ModelError(f"--resume: no checkpoint found in {self.config.checkpoint_dir!r}")
        if checkpoint is not None:
            self.encoder_ = TableEncoder.from_state_dict(checkpoint["encoder"])
            self._load_extra_state(checkpoint.get("extra", {}))
        else:
            self.encoder_ = TableEncoder(
                max_modes=self.config.max_modes,
                max_categories=self.config.max_categories,
                max_fit_rows=self.config.max_fit_rows,
                seed=self.config.seed,
            ).fit(data, self.schema_)
        train, val = self._split(data)
        if checkpoint is None:
            self._fit_preprocessing(train)
        self.train_ = self._encode_rows(train)
        self.val_ = self._encode_rows(val) if len(val) else None
        self.n_train_ = len(train)
        self._build()
        self.history_: dict[str, list[float]] = {}
        start_epoch = 0
        if checkpoint is not None:
            start_epoch = self._restore_checkpoint(checkpoint)
        self._train(start_epoch)
        del self.train_, self.val_
        return self

    def sample(
        self,
        n: int,
        conditions: Mapping[str, Any] | pd.DataFrame | None = None,
        seed: int | None = None,
        start_index: int = 0,
        batch_size: int = 50_000,
    ) -> pd.DataFrame:
        """Draw `n` rows. `start_index` is the first row's position in the whole emitted table
        (sharded writers pass it so that minted IDs never repeat across shards)."""
        self._check_fitted()
        if n < 0:
            raise ConfigError(f"rows to sample must be >= 0, got {n}")
        seed = self.config.seed if seed is None else seed
        conditions = self._normalise_conditions(conditions, n)
        frames = []
        for i, start in enumerate(range(0, max(n, 1) if n else 0, batch_size)):
            size = min(batch_size, n - start)
            gen = torch.Generator(device=self.device_).manual_seed(derive_seed(seed, i))
            cond = conditions.iloc[start : start + size].reset_index(drop=True) if conditions is not None else None
            with torch.no_grad():
                values, codes = self._sample_encoded(size, gen, cond)
            frames.append(self._decode(values, codes, seed=derive_seed(seed, i, 1), start_index=start_index + start))
        if not frames:
            empty = self.encoder_.decode(
                np.zeros((0, self.encoder_.n_values_), np.float32), np.zeros((0, self.encoder_.n_codes_), np.int64)
            )
            return empty
        return pd.concat(frames, ignore_index=True)

    def log_likelihood(self, data: pd.DataFrame) -> np.ndarray | None:
        """Per-row log-likelihood in nats: exact, a lower bound, or None if the model has none."""
        return None

    @property
    def likelihood_kind(self) -> str | None:
        """'exact', 'bound' (e.g. an ELBO) or None."""
        return None

    def save(self, path: str | os.PathLike) -> None:
        """Write `model.safetensors` (weights) and `model.json` (everything else) under `path`."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"{module_name}.{key}": value.detach().to("cpu").contiguous()
            for module_name, module in self._modules().items()
            for key, value in module.state_dict().items()
        }
        save_file(tensors, path / "model.safetensors")
        meta = {
            "format_version": FORMAT_VERSION,
            "generator": self.name,
            "params": asdict(self.config),
            "encoder": self.encoder_.state_dict(),
            "history": self.history_,
            "extra": self._extra_state(),
        }
        (path / "model.json").write_text(json.dumps(meta, indent=1, default=_json_default))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> BaseGenerator:
        """Rebuild a saved generator without executing any code from the files."""
        path = Path(path)
        meta_path, weights_path = path / "model.json", path / "model.safetensors"
        if not meta_path.is_file() or not weights_path.is_file():
            raise ModelError(f"{path}: not a saved synthpipe model (expected model.json and model.safetensors)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{meta_path}: corrupt model metadata ({exc})") from None
        if cls is BaseGenerator:
            from synthpipe.generators import get_generator_class

            cls = get_generator_class(meta.get("generator", "?"))
        elif meta.get("generator") != cls.name:
            raise ModelError(f"{path} holds a {meta.get('generator')!r} model, not {cls.name!r}")
        params = dict(meta["params"])
        if device is not None:
            params["device"] = device
        self = cls(**params)
        self.encoder_ = TableEncoder.from_state_dict(meta["encoder"])
        self.schema_ = self.encoder_.schema_
        self.history_ = meta.get("history", {})
        self.device_ = select_device(self.config.device)
        self._load_extra_state(meta.get("extra", {}))
        self._build()
        try:
            tensors = load_file(weights_path, device=str(self.device_))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise ModelError(f"{weights_path}: cannot read weights ({exc})") from None
        for module_name, module in self._modules().items():
            prefix = f"{module_name}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            module.eval()
        return self

    # ---- hooks for model families --------------------------------------------------------------

    def _build(self) -> None:
        """Create modules (and optimisers) from self.encoder_ and self.config, on self.device_."""
        raise NotImplementedError

    def _modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over self.train_; returns the epoch's mean losses by name."""
        raise NotImplementedError

    def _validation_loss(self) -> float:
        """A cheap held-out score, lower is better, used for early stopping."""
        raise NotImplementedError

    def _sample_encoded(
        self, n: int, generator: torch.Generator, conditions: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw n rows in encoded form: (values float32 [n, n_values], codes int64 [n, n_codes])."""
        raise NotImplementedError

    def _fit_preprocessing(self, train: pd.DataFrame) -> None:
        """Fit model-specific preprocessing on the training rows (after the shared encoder, before
        encoding); its state belongs in _extra_state so that save/load and resume restore it."""

    def _encode_rows(self, df: pd.DataFrame) -> Any:
        """Rows -> what _train_epoch and _validation_loss consume (default: encoder tensors on the device)."""
        return self._to_device(self.encoder_.encode(df))

    def _decode(self, values: np.ndarray, codes: np.ndarray, seed: int, start_index: int) -> pd.DataFrame:
        """What _sample_encoded returned -> a DataFrame in the schema's order and dtypes."""
        return self.encoder_.decode(values, codes, seed=seed, start_index=start_index)

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    supports_conditions: ClassVar[str] = "none"  # "none" | "discrete" | "any"

    # ---- training loop -------------------------------------------------------------------------

    def _train(self, start_epoch: int) -> None:
        cfg = self.config
        started = time.perf_counter()
        best = math.inf
        best_state = None
        stale = 0
        self.stopped_early_ = False
        self.best_epoch_ = None
        with _progress(cfg.progress, cfg.epochs, start_epoch, self.name) as advance:
            for epoch in range(start_epoch, cfg.epochs):
                for module in self._modules().values():
                    module.train()
                metrics = self._train_epoch(epoch)
                last = epoch == cfg.epochs - 1
                out_of_time = cfg.time_budget_s is not None and time.perf_counter() - started > cfg.time_budget_s
                if self.val_ is not None and ((epoch + 1) % cfg.eval_every == 0 or last or out_of_time):
                    for module in self._modules().values():
                        module.eval()
                    with torch.no_grad():
                        metrics["val_loss"] = float(self._validation_loss())
                    metrics.update(self._monitor())
                    if metrics["val_loss"] < best - cfg.min_delta:
                        best, stale, self.best_epoch_ = metrics["val_loss"], 0, epoch
                        best_state = self._snapshot()
                    else:
                        stale += 1
                self._record(epoch, metrics)
                advance(metrics)
                if cfg.checkpoint_dir and ((epoch + 1) % cfg.checkpoint_every == 0 or last):
                    self._save_checkpoint(epoch + 1)
                if cfg.patience and stale >= cfg.patience:
                    self.stopped_early_ = True
                    break
                if out_of_time:
                    break
        if best_state is not None:  # keep the best validated weights, not the last ones
            for name, module in self._modules().items():
                module.load_state_dict(best_state[name])
        for module in self._modules().values():
            module.eval()
        self.fit_seconds_ = time.perf_counter() - started

    def _monitor(self) -> dict[str, float]:
        """Extra numbers logged with each validation (e.g. mode coverage for a GAN)."""
        return {}

    def _record(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.history_.setdefault("epoch", []).append(epoch)
        for key, value in metrics.items():
            series = self.history_.setdefault(key, [])
            series.extend([math.nan] * (len(self.history_["epoch"]) - 1 - len(series)))
            series.append(float(value))

    def _snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: copy.deepcopy(module.state_dict()) for name, module in self._modules().items()}

    def batches(self, n_rows: int, batch_size: int) -> Iterator[torch.Tensor]:
        """Shuffled index batches over the training rows, drawn on the device."""
        perm = torch.randperm(n_rows, generator=self.generator_).to(self.device_)
        for start in range(0, n_rows, batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) > 1:
                yield idx

    def autocast(self) -> Any:
        """Mixed precision on CUDA (bf16 where supported), a no-op on the CPU."""
        if self.device_.type == "cuda" and self.config.mixed_precision:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    # ---- checkpoints (torch.load with weights_only=True: tensors and plain data only) ----------

    def _checkpoint_path(self) -> Path:
        return Path(self.config.checkpoint_dir or ".") / "checkpoint.pt"

    def _save_checkpoint(self, next_epoch: int) -> None:
        path = self._checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "next_epoch": next_epoch,
            "modules": {k: m.state_dict() for k, m in self._modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self._optimizers().items()},
            "history": self.history_,
            "rng": self.generator_.get_state(),
            "torch_rng": torch.get_rng_state(),
            "encoder": json.dumps(self.encoder_.state_dict(), default=_json_default),
            "extra": json.dumps(self._extra_state(), default=_json_default),
            "generator": self.name,
        }
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:  # a file object: a full disk surfaces as OSError(ENOSPC), which
            torch.save(state, fh)     # torch's own file writer reports as "unexpected pos"
        os.replace(tmp, path)  # a crash mid-write never corrupts the last checkpoint

    def _load_checkpoint(self) -> dict[str, Any] | None:
        if not self.config.checkpoint_dir:
            raise ConfigError("resume needs checkpoint_dir to be set")
        path = self._checkpoint_path()
        if not path.is_file():
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("generator") != self.name:
            raise ModelError(f"{path} is a {state.get('generator')!r} checkpoint, not {self.name!r}")
        state["encoder"] = json.loads(state["encoder"])
        state["extra"] = json.loads(state.get("extra", "{}"))
        return state

    def _restore_checkpoint(self, state: dict[str, Any]) -> int:
        for name, module in self._modules().items():
            module.load_state_dict(state["modules"][name])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.history_ = {k: list(v) for k, v in state["history"].items()}
        self.generator_.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["next_epoch"])

    # ---- helpers -------------------------------------------------------------------------------

    def _validate_config(self) -> None:
        cfg = self.config
        checks = [
            ("epochs", cfg.epochs >= 1, "must be >= 1"),
            ("batch_size", cfg.batch_size >= 2, "must be >= 2"),
            ("learning_rate", cfg.learning_rate > 0, "must be > 0"),
            ("val_fraction", 0 <= cfg.val_fraction < 0.9, "must be in [0, 0.9)"),
            ("eval_every", cfg.eval_every >= 1, "must be >= 1"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ConfigError(f"{self.name} generator: {name} {what}, got {getattr(cfg, name)!r}")

    def _split(self, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        n_val = int(round(len(data) * self.config.val_fraction))
        if n_val < 1 or len(data) - n_val < 2:
            return data, data.iloc[:0]
        perm = np.random.default_rng(derive_seed(self.config.seed, 7)).permutation(len(data))
        return data.iloc[perm[n_val:]], data.iloc[perm[:n_val]]

    def _to_device(self, encoded: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(encoded.values, device=self.device_),
            torch.as_tensor(encoded.codes, device=self.device_),
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise ModelError(f"this {self.name} generator is not fitted yet; call fit() or load() first")

    def _normalise_conditions(
        self, conditions: Mapping[str, Any] | pd.DataFrame | None, n: int
    ) -> pd.DataFrame | None:
        """Check condition columns and values against the schema; return one row per sample."""
        if conditions is None or (isinstance(conditions, Mapping) and not conditions):
            return None
        if self.supports_conditions == "none":
            raise ConfigError(f"the {self.name} generator cannot sample conditionally; use gan or autoregressive")
        frame = (
            conditions.reset_index(drop=True)
            if isinstance(conditions, pd.DataFrame)
            else pd.DataFrame({k: [v] * n for k, v in conditions.items()})
        )
        if len(frame) != n:
            raise ConfigError(f"conditions has {len(frame)} rows but {n} were requested")
        for name in frame.columns:
            if name not in self.schema_:
                raise ConfigError(f"condition on unknown column {name!r}; columns are {self.schema_.names}")
            column = self.schema_[name]
            discrete = column.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)
            if self.supports_conditions == "discrete" and not discrete:
                raise ConfigError(
                    f"the {self.name} generator conditions only on categorical or boolean columns; "
                    f"{name!r} is {column.kind.value} (the autoregressive generator conditions on any column)"
                )
            if discrete:
                encoder = self.encoder_.encoders_[name]
                known = list(encoder.categories)
                if self.supports_conditions == "any":  # such models emit the folded value itself
                    known += list(encoder.tail)
                unseen = sorted({v for v in frame[name].dropna().unique() if v not in known}, key=str)
                if unseen:
                    raise ConfigError(
                        f"condition {name}={unseen[0]!r}: value not seen in training; known values are "
                        f"{[k for k in known if k is not None][:50]}"
                    )
            elif column.kind in (ColumnKind.NUMERICAL, ColumnKind.INTEGER, ColumnKind.DATETIME):
                frame[name] = _range_conditions(frame[name], column)
        return frame


def _range_conditions(cells: pd.Series, column: ColumnSchema) -> pd.Series:
    """Numeric/datetime condition cells -> (low, high) tuples (floats or Timestamps, None = open end).

    A cell holds a (low, high) pair or one value v, read as (v, v); NaN/None leaves the row
    unconditioned. The range must overlap the training range [column.min, column.max].
    """
    name, is_time = column.name, column.kind == ColumnKind.DATETIME

    def parse(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        try:
            if not is_time:
                return float(value)
            stamp = pd.Timestamp(value)
            if column.timezone is not None:  # naive ends are wall-clock times in the column's zone
                return stamp.tz_convert(column.timezone) if stamp.tz else stamp.tz_localize(column.timezone)
            return stamp.tz_convert("UTC").tz_localize(None) if stamp.tz else stamp
        except (TypeError, ValueError):
            raise ConfigError(f"condition on {name!r}: {value!r} is not a {column.kind.value} value") from None

    lo_bound, hi_bound = parse(column.min), parse(column.max)
    out: list[Any] = []
    seen: dict[Any, Any] = {}
    for cell in cells:
        if not isinstance(cell, tuple | list) and parse(cell) is None:
            out.append(None)
            continue
        key = tuple(cell) if isinstance(cell, tuple | list) else cell
        if key not in seen:
            if isinstance(cell, tuple | list):
                if len(cell) != 2:
                    raise ConfigError(f"condition on {name!r}: a range is (low, high), got {cell!r}")
                low, high = parse(cell[0]), parse(cell[1])
            else:
                low = high = parse(cell)
            if low is not None and high is not None and low > high:
                raise ConfigError(f"condition on {name!r}: low {low} is above high {high}")
            if (low is not None and hi_bound is not None and low > hi_bound) or (
                high is not None and lo_bound is not None and high < lo_bound
            ):
                raise ConfigError(
                    f"condition {name}={low}..{high} lies outside the training range {column.min}..{column.max}"
                )
            seen[key] = (low, high)
        out.append(seen[key])
    return pd.Series(out, index=cells.index, dtype=object)


class _progress:
    """A rich progress bar with the latest losses, or nothing when disabled."""

    def __init__(self, enabled: bool, total: int, completed: int, label: str):
        self.enabled, self.total, self.completed, self.label = enabled, total, completed, label

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda metrics: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn(f"[bold]{self.label}[/] training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"),
            transient=False,
        )
        self.bar.__enter__()
        task = self.bar.add_task("train", total=self.total, completed=self.completed, losses="")

        def advance(metrics: Mapping[str, float]) -> None:
            text = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            self.bar.update(task, advance=1, losses=text)

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
