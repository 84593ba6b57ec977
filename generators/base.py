"""What every generator shares: the public contract, parameter validation, device choice,
seeding, the training loop (validation split, early stopping, best checkpoint, resumable
checkpoints, a time budget checked between steps, progress bar, mixed precision) and pickle-free
persistence.

A model family subclasses `BaseGenerator`, names its row codec (`Codec` / `_make_codec`) and
fills in the hooks: `_build` (modules and optimisers), `_train_step` (one optimisation step),
`_validation_loss` and `_sample_block` (encoded rows for one block of a sample). Everything else
lives here once, so the families behave the same way.

Random state is the estimator's own: training runs inside `torch.random.fork_rng` seeded from
the run's seed (the caller's global torch RNG is left as it was), and a sample's block k is drawn
from `derive_seed(seed, SeedStream.SAMPLE_BLOCK, k)` alone, so the rows of a seed do not depend
on how a caller chunks or shards them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from synthpipe.generators import copy_guard, model_files
from synthpipe.generators.codec import RowCodec
from synthpipe.generators.conditions import Conditions, from_units
from synthpipe.generators.errors import ConfigError, DataError, ModelError
from synthpipe.generators.mode_codec import ModeSpecificCodec
from synthpipe.generators.schema import ColumnKind, TableSchema, infer_schema
from synthpipe.generators.seeding import SAMPLE_BLOCK_ROWS, SeedStream, derive_seed, numpy_rng
from synthpipe.generators.serialize import to_jsonable
from synthpipe.generators.splits import split_rows

__all__ = ["BaseGenerator", "TrainConfig", "derive_seed", "select_device"]

FORMAT_VERSION = 2  # 2: model.json holds "codec" (version 1 held "encoder"; both load)
MAX_STEPS_PER_EPOCH = 200  # default epoch length on large tables (evaluation, checkpoints, patience)


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
    time_budget_s: float | None = None  # stop training after this many seconds (checked every step)
    steps_per_epoch: int | None = None  # default: min(batches in the table, MAX_STEPS_PER_EPOCH)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    mixed_precision: bool = True  # bf16/fp16 autocast on CUDA; ignored on the CPU
    seed: int = 0
    progress: bool = True
    max_categories: int = 500  # categories beyond this are folded into one "other" class
    # a categorical value seen in fewer training rows is never emitted unless a condition names
    # it (generators/transforms.py CategoricalEncoder: rare values identify their rows); 1 = off
    min_category_count: int = 5
    max_modes: int = 10  # Gaussian-mixture modes per continuous column
    max_fit_rows: int = 20_000  # rows used to fit the mixture of each continuous column
    # each validation also counts generated rows identical to a once-seen training row
    # (generators/copy_guard.py): weights over the natural rate are not kept, and two such
    # validations in a row end training
    copy_guard: bool = True
    # A timed fit (time_budget_s set) skips a scheduled validation while validation has
    # already taken more than this share of the time since training began; the last epoch and
    # the budget's end are always validated. Why: a fit cut by its budget learns more from those
    # seconds than from one more score. The autoregressive model on loans (55 columns) spent 7.1
    # of its 60 s validating (two held-out passes and the copy guard's 1,000 sampled rows, every
    # 2 epochs); at 0.05 it spends 4.2 s, and over 3 seeds its two-sample AUC went 0.779 -> 0.752
    # (flights 0.748 -> 0.747, diamonds 0.552 -> 0.546, CPS1988 0.517 -> 0.519; at 0.1 loans
    # skipped none). Untimed fits keep the eval_every grid exactly, so they stay reproducible.
    # None validates on the grid in timed fits too.
    eval_share: float | None = 0.05


# A parameter check: (parameter name, predicate on the whole config, what the value must be).
Check = tuple[str, Callable[[Any], bool], str]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _integer_at_least(name: str, low: int, note: str = "") -> Check:
    """`name` must be an integer >= low: the check of every count parameter."""
    return (name, lambda c: _is_int(getattr(c, name)) and getattr(c, name) >= low, f"must be an integer >= {low}{note}")


def _number_above(name: str, low: float, *, inclusive: bool) -> Check:
    """`name` must be a number > low (>= low when `inclusive`)."""
    if inclusive:
        return (name, lambda c: _is_number(getattr(c, name)) and getattr(c, name) >= low, f"must be >= {low}")
    return (name, lambda c: _is_number(getattr(c, name)) and getattr(c, name) > low, f"must be > {low}")


BASE_CHECKS: list[Check] = [
    _integer_at_least("epochs", 1),
    _integer_at_least("batch_size", 2),
    _number_above("learning_rate", 0, inclusive=False),
    _number_above("weight_decay", 0, inclusive=True),
    ("val_fraction", lambda c: _is_number(c.val_fraction) and 0 <= c.val_fraction < 0.9, "must be in [0, 0.9)"),
    _integer_at_least("eval_every", 1),
    _integer_at_least("patience", 0, " (0 disables)"),
    _number_above("min_delta", 0, inclusive=True),
    _integer_at_least("checkpoint_every", 1),
    (
        "eval_share",
        lambda c: c.eval_share is None or (_is_number(c.eval_share) and 0 < c.eval_share <= 1),
        "must be in (0, 1] (or unset)",
    ),
    (
        "time_budget_s",
        lambda c: c.time_budget_s is None or (_is_number(c.time_budget_s) and c.time_budget_s > 0),
        "must be > 0 seconds (or unset)",
    ),
    (
        "steps_per_epoch",
        lambda c: c.steps_per_epoch is None or (_is_int(c.steps_per_epoch) and c.steps_per_epoch >= 1),
        "must be an integer >= 1 (or unset)",
    ),
    ("device", lambda c: isinstance(c.device, str) and bool(c.device), "must be auto, cpu, cuda or cuda:N"),
    _integer_at_least("seed", 0),
    _integer_at_least("max_categories", 1),
    _integer_at_least("min_category_count", 1),
    _integer_at_least("max_modes", 1),
    _integer_at_least("max_fit_rows", 2),
]


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


class BaseGenerator:
    """fit(table) -> self; sample(n, conditions, seed, start_index) -> DataFrame; save; load."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[TrainConfig]] = TrainConfig
    Codec: ClassVar[type] = ModeSpecificCodec  # the family's row codec (see generators/codec.py)
    supports_conditions: ClassVar[str] = "none"  # "none" | "discrete" | "any"
    loss_names: ClassVar[tuple[str, ...]] = ()  # what _train_step's loss vector holds

    def __init__(self, **params: Any):
        known = {f.name for f in fields(self.Config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"{self.name} generator: unknown parameter(s) {unknown}; known parameters are {sorted(known)}"
            )
        self.config = self.Config(**params)
        self._validate_config()  # sklearn style: a bad value fails here, before any data is read

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, as given to the constructor (defaults filled in)."""
        return asdict(self.config)

    # ---- the public contract ------------------------------------------------------------------

    def fit(self, data: pd.DataFrame, schema: TableSchema | None = None, resume: bool = False) -> BaseGenerator:
        """Train on `data`. With `resume`, continue from the last checkpoint in checkpoint_dir."""
        cfg = self.config
        self._validate_config()
        if len(data) < 2:
            raise DataError(f"cannot train on a table with {len(data)} row(s); at least 2 are needed")
        self.schema_ = schema or infer_schema(data)
        self.device_ = select_device(cfg.device)
        checkpoint = self._load_checkpoint() if resume else None
        if resume and checkpoint is None:
            raise ModelError(f"--resume: no checkpoint found in {cfg.checkpoint_dir!r}")
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the caller's global RNG is left untouched
            torch.manual_seed(derive_seed(cfg.seed, SeedStream.TRAIN_TORCH))
            self.rng_ = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.seed, SeedStream.TRAIN_TORCH, 1))
            if checkpoint is not None:
                self.codec_ = self.Codec.from_state_dict(checkpoint["codec"])
                self._load_extra_state(checkpoint.get("extra", {}))
            else:
                self.codec_ = self._make_codec().fit(data, self.schema_, cfg.seed)
            train, val = split_rows(data, cfg.val_fraction, cfg.seed, SeedStream.VALIDATION_SPLIT)
            if checkpoint is None:
                self._fit_preprocessing(train)
            self.train_ = self._encode_rows(train)
            self.val_ = self._encode_rows(val) if len(val) else None
            self._guard = copy_guard.CopyGuard(train, val, self.schema_) if cfg.copy_guard and len(val) else None
            self.n_train_ = len(train)
            self._build()
            self.history_: dict[str, Any] = {}
            self._best: dict[str, Any] = {"score": math.inf, "epoch": None, "stale": 0, "modules": None}
            position = (0, 0, None)
            if checkpoint is not None:
                position = self._restore_checkpoint(checkpoint)
            try:
                self._train(*position)
            finally:
                del self.train_, self.val_, self._guard
        return self

    def sample(
        self,
        n: int,
        conditions: Mapping[str, Any] | pd.DataFrame | Conditions | None = None,
        seed: int | None = None,
        start_index: int = 0,
    ) -> pd.DataFrame:
        """Rows start_index .. start_index + n of the seed's stream (default: the training seed).

        Whole blocks of SAMPLE_BLOCK_ROWS are drawn, block k from derive_seed(seed,
        SAMPLE_BLOCK, k) and decoded with derive_seed(seed, SAMPLE_DECODE, k), then the ends are
        sliced off: so any chunking of a sample gives the same rows, and minted IDs, numbered by
        absolute row position, never repeat across chunks or shards.
        """
        self._check_fitted()
        if not _is_int(n) or n < 0:
            raise ConfigError(f"rows to sample must be an integer >= 0, got {n!r}")
        if not _is_int(start_index) or start_index < 0:
            raise ConfigError(f"start_index must be an integer >= 0, got {start_index!r}")
        seed = self.config.seed if seed is None else int(seed)
        parsed = self._parse_conditions(conditions, n)
        if type(self)._sample_block is BaseGenerator._sample_block:
            return self._sample_legacy(n, parsed, seed, start_index)
        block, frames = SAMPLE_BLOCK_ROWS, []
        with torch.no_grad():
            for k in range(start_index // block, -(-(start_index + n) // block)):
                first = k * block
                a, b = max(first, start_index) - first, min(first + block, start_index + n) - first
                compiled = None
                if parsed is not None:
                    rows = parsed.rows(first + a - start_index, first + b - start_index)
                    compiled = self.codec_.compile_conditions(rows.padded(a, block))
                generator = torch.Generator(device=self.device_).manual_seed(
                    derive_seed(seed, SeedStream.SAMPLE_BLOCK, k)
                )
                encoded = self._sample_block(block, generator, compiled)
                frame = self.codec_.decode(encoded, numpy_rng(seed, SeedStream.SAMPLE_DECODE, k), first)
                frames.append(frame.iloc[a:b])
        if not frames:
            return self.codec_.decode(self.codec_.empty(), None, start_index)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)

    def log_likelihood(self, data: pd.DataFrame) -> np.ndarray | None:
        """Per-row log-likelihood in nats: exact, a lower bound, or None if the model has none."""
        return None

    @property
    def likelihood_kind(self) -> str | None:
        """'exact', 'bound' (e.g. an ELBO) or None."""
        return None

    @property
    def encoder_(self) -> Any:
        """The fitted row codec under its former name (autoregressive.py reads it)."""
        return self.codec_

    @property
    def generator_(self) -> torch.Generator:
        """The training RNG under its former name (autoregressive.py reads it)."""
        return self.rng_

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
            "codec": self.codec_.state_dict(),
            "history": self.history_,
            "extra": self._extra_state(),
        }
        (path / "model.json").write_text(json.dumps(to_jsonable(meta), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> BaseGenerator:
        """Rebuild a saved generator without executing any code from the files."""
        path = Path(path)
        cls, meta = model_files.read_model_meta(path, cls)  # checked: keys, params, codec state
        params = dict(meta["params"])
        if device is not None:
            params["device"] = device
        self = cls(**params)
        self.codec_ = self.Codec.from_state_dict(meta["codec"])
        self.schema_ = self.codec_.schema_
        self.history_ = meta.get("history", {})
        self.device_ = select_device(self.config.device)
        self._load_extra_state(meta.get("extra", {}))
        tensors = model_files.read_weights(path, self)  # header vs shapes built on the meta device
        self._build()
        for module_name, module in self._modules().items():
            prefix = f"{module_name}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            module.eval()
        return self

    # ---- hooks for model families --------------------------------------------------------------

    def _make_codec(self) -> RowCodec:
        """The family's unfitted row codec, configured from self.config."""
        cfg = self.config
        return self.Codec(
            max_modes=cfg.max_modes,
            max_categories=cfg.max_categories,
            max_fit_rows=cfg.max_fit_rows,
            seed=cfg.seed,
            min_category_count=cfg.min_category_count,
        )

    def _param_checks(self) -> list[Check]:
        """Every hyperparameter's rule; families extend the list. Run at construction and by fit."""
        return list(BASE_CHECKS)

    def _build(self) -> None:
        """Create modules (and optimisers) from self.codec_ and self.config, on self.device_."""
        raise NotImplementedError

    def _modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def _train_step(self, step: int) -> torch.Tensor:
        """One optimisation step (`step` counts from the start of training); returns the step's
        detached losses as a 1-D tensor ordered as `loss_names`, left on the device."""
        raise NotImplementedError

    def _batches_per_pass(self) -> int:
        """Steps in one pass over the training rows (the default epoch length on small tables)."""
        return len(_pass_sizes(self.n_train_, self.step_rows()))

    def _validation_loss(self) -> float:
        """A cheap held-out score, lower is better, used for early stopping."""
        raise NotImplementedError

    def _sample_block(self, n: int, generator: torch.Generator, conditions: Any | None) -> Any:
        """Encoded rows of one sample block (what the codec decodes); `conditions` is what the
        codec's compile_conditions returned for this block, or None."""
        raise NotImplementedError

    def _fit_preprocessing(self, train: pd.DataFrame) -> None:
        """Fit model-specific preprocessing on the training rows (after the codec, before
        encoding); its state belongs in _extra_state so that save/load and resume restore it."""

    def _encode_rows(self, df: pd.DataFrame) -> Any:
        """Rows -> what _train_step and _validation_loss consume (default: codec tensors on the device)."""
        return self._to_device(self.codec_.encode(df))

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def _monitor(self) -> dict[str, float]:
        """Extra numbers logged with each validation (e.g. mode coverage for a GAN)."""
        return {}

    # Former hooks, still used by a family that does not implement the step/block hooks
    # (autoregressive.py until its rewrite): a whole epoch per call, and a sample in pieces.

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def _sample_encoded(self, n: int, generator: torch.Generator, conditions: pd.DataFrame | None) -> Any:
        raise NotImplementedError

    def _decode(self, values: np.ndarray, codes: np.ndarray, seed: int, start_index: int) -> pd.DataFrame:
        raise NotImplementedError

    # ---- training loop -------------------------------------------------------------------------

    def _steps_per_epoch(self) -> int:
        return self.config.steps_per_epoch or min(self._batches_per_pass(), MAX_STEPS_PER_EPOCH)

    def _train(self, start_epoch: int, start_step: int, partial: torch.Tensor | None) -> None:
        cfg = self.config
        started = time.perf_counter()
        self.stopped_early_ = False
        stepwise = type(self)._train_step is not BaseGenerator._train_step
        steps = self._steps_per_epoch() if stepwise else 0
        self.steps_per_epoch_ = steps or None
        best, strikes, best_over = self._best, 0, False
        validating = 0.0  # seconds spent validating in this call
        self.skipped_validations_ = 0
        with _progress(cfg.progress, cfg.epochs, start_epoch, self.name) as advance:
            for epoch in range(start_epoch, cfg.epochs):
                for module in self._modules().values():
                    module.train()
                cut = None  # the step at which the budget ended this epoch early
                if stepwise:
                    first = start_step if epoch == start_epoch else 0
                    totals = partial if epoch == start_epoch and partial is not None else None
                    for step in range(first, steps):
                        losses = self._train_step(epoch * steps + step)
                        totals = losses if totals is None else totals + losses
                        if step + 1 < steps and self._out_of_time(started):
                            cut = step + 1
                            break
                    done = cut or steps
                    metrics = dict(zip(self.loss_names, (totals / max(done, 1)).tolist(), strict=True))
                    if cut is not None and cfg.checkpoint_dir:  # resumable at this step boundary
                        self._check_finite(epoch, metrics)
                        self._save_checkpoint(epoch, cut, totals)
                else:
                    metrics = self._train_epoch(epoch)
                self._check_finite(epoch, metrics)
                last = epoch == cfg.epochs - 1
                out_of_time = cut is not None or self._out_of_time(started)
                due = (epoch + 1) % cfg.eval_every == 0
                if due and self.val_ is not None and not (last or out_of_time):
                    if self._validation_over_share(validating, started):
                        due = False
                        self.skipped_validations_ += 1
                if self.val_ is not None and (due or last or out_of_time):
                    scoring = time.perf_counter()
                    with self._evaluated_weights():
                        for module in self._modules().values():
                            module.eval()
                        with torch.no_grad():
                            metrics["val_loss"] = float(self._validation_loss())
                        metrics.update(self._monitor())
                        copies_over = self._check_copies(metrics)
                        improved = metrics["val_loss"] < best["score"] - cfg.min_delta
                        # weights over the copy limit are kept only while there are no others
                        if best["modules"] is None or not copies_over and (improved or best_over):
                            best.update(score=metrics["val_loss"], stale=0, epoch=epoch, modules=self._snapshot())
                            best_over = copies_over
                        else:
                            best["stale"] += 1
                    validating += time.perf_counter() - scoring
                    strikes = strikes + 1 if copies_over else 0  # not checkpointed: a resumed run starts at 0
                    if strikes >= copy_guard.STRIKES and best["modules"] is not None:
                        self.stopped_early_ = True
                        self.history_["stop"] = {"reason": "copies", "epoch": epoch}
                        self._record(epoch, metrics)
                        advance(metrics)
                        break
                self._record(epoch, metrics)
                advance(metrics)
                if cfg.checkpoint_dir and cut is None and ((epoch + 1) % cfg.checkpoint_every == 0 or last or out_of_time):
                    self._save_checkpoint(epoch + 1, 0, None)
                if cfg.patience and best["stale"] >= cfg.patience:
                    self.stopped_early_ = True
                    self.history_["stop"] = {"reason": "patience", "epoch": epoch}
                    break
                if out_of_time:
                    self.history_["stop"] = {
                        "reason": "time_budget",
                        "epoch": epoch,
                        "step": cut if cut is not None else steps,
                        "steps_per_epoch": steps,
                        "mid_epoch": cut is not None,
                    }
                    break
        self.best_epoch_ = best["epoch"]
        if best["modules"] is not None:  # keep the best validated weights, not the last ones
            for name, module in self._modules().items():
                module.load_state_dict(best["modules"][name])
        else:  # nothing validated: the weights validation would have scored
            with self._evaluated_weights(keep=True):
                pass
        for module in self._modules().values():
            module.eval()
        self.fit_seconds_ = time.perf_counter() - started
        self.validation_seconds_ = validating

    def training_summary(self) -> dict[str, Any]:
        """How training went, for reports: epochs, the kept epoch, why it stopped, warnings."""
        history = getattr(self, "history_", {}) or {}
        stop = history.get("stop") or {}
        summary = {
            "epochs_run": len(history.get("epoch", [])),
            "best_epoch": getattr(self, "best_epoch_", None),
            "stopped_early": getattr(self, "stopped_early_", False),
            "stop_reason": stop.get("reason", "epochs" if history.get("epoch") else None),
            "warnings": list(getattr(self, "warnings_", [])),
            # scheduled validations a timed fit skipped for their cost (TrainConfig.eval_share)
            "validations_skipped": getattr(self, "skipped_validations_", 0),
            "validation_s": getattr(self, "validation_seconds_", None),  # of fit_seconds_
        }
        rates, limits = history.get("copy_rate", []), history.get("copy_limit", [])
        if stop.get("reason") == "copies" and rates:
            summary["stop_note"] = (
                f"stopped on the copy guard (a privacy signal): {rates[-1]:.1%} of generated rows copied a "
                f"once-seen training row against a limit of {limits[-1]:.1%} (the natural rate plus sampling error) at "
                f"{copy_guard.STRIKES} validations in a row; the weights kept are from epoch "
                f"{summary['best_epoch']}, the best validated one under the limit where there is one"
            )
        return summary

    def _check_copies(self, metrics: dict[str, float]) -> bool:
        """Record the guard's copy rate and limit in `metrics`; whether the rate is over the limit."""
        guard = getattr(self, "_guard", None)
        if guard is None:
            return False
        # one block of GUARD_ROWS rows, not sample()'s whole 8,192-row blocks: the guard runs at every validation
        seed = derive_seed(self.config.seed, SeedStream.VALIDATION_NOISE, 1)
        if type(self)._sample_block is BaseGenerator._sample_block:  # a family with the former hooks
            rows = self.sample(copy_guard.GUARD_ROWS, seed=seed)
        else:
            with torch.no_grad():
                generator = torch.Generator(device=self.device_).manual_seed(seed)
                encoded = self._sample_block(copy_guard.GUARD_ROWS, generator, None)
            rows = self.codec_.decode(encoded, numpy_rng(seed, SeedStream.SAMPLE_DECODE, 0), 0)
        rate, limit = guard.check(rows)
        metrics["copy_rate"], metrics["copy_limit"] = rate, limit
        return rate > limit

    def _validation_over_share(self, validating: float, started: float) -> bool:
        """Whether a timed fit has spent more than `eval_share` of its time so far validating."""
        cfg = self.config
        if cfg.time_budget_s is None or cfg.eval_share is None:
            return False
        return validating > cfg.eval_share * (time.perf_counter() - started)

    def _out_of_time(self, started: float) -> bool:
        budget = self.config.time_budget_s
        return budget is not None and time.perf_counter() - started > budget

    def _check_finite(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """A NaN or infinite loss ends the run with the epoch and the last finite value; the
        last checkpoint on disk (written before the loss diverged) stays for --resume."""
        for key, value in metrics.items():
            if math.isfinite(value):
                continue
            previous = [v for v in self.history_.get(key, []) if math.isfinite(v)]
            last = f"the last finite {key} was {previous[-1]:.6g}" if previous else f"{key} was never finite"
            kept = (
                f"the last checkpoint in {self.config.checkpoint_dir} is kept for --resume"
                if self.config.checkpoint_dir
                else "no checkpoint was written (set checkpoint_dir to resume)"
            )
            raise ModelError(
                f"{self.name} generator: training diverged at epoch {epoch + 1}: {key} is {value} ({last}); "
                f"{kept}; try a lower learning_rate"
            )

    def _record(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.history_.setdefault("epoch", []).append(epoch)
        for key, value in metrics.items():
            series = self.history_.setdefault(key, [])
            series.extend([math.nan] * (len(self.history_["epoch"]) - 1 - len(series)))
            series.append(float(value))

    @contextlib.contextmanager
    def _evaluated_weights(self, keep: bool = False) -> Iterator[None]:
        """The weights that validation scores, the copy guard samples and the best checkpoint
        keeps, in place for the block (left in place with `keep`). A family that averages its
        weights swaps the average in here; by default they are the live weights."""
        yield

    def _snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: copy.deepcopy(module.state_dict()) for name, module in self._modules().items()}

    def batch(self, step: int) -> torch.Tensor:
        """Row indices of training step `step`: successive shuffled passes over the training rows,
        pass p shuffled from its own seed, so a resumed run needs only the step number."""
        rows = self.step_rows()
        sizes = _pass_sizes(self.n_train_, rows)
        p, b = divmod(step, len(sizes))
        if getattr(self, "_pass", (None,))[0] != p:
            g = torch.Generator().manual_seed(derive_seed(self.config.seed, SeedStream.TRAIN_TORCH, 2, p))
            self._pass = (p, torch.randperm(self.n_train_, generator=g).to(self.device_))
        start = b * rows
        return self._pass[1][start : start + sizes[b]]

    def step_rows(self) -> int:
        """Training rows per step of `batch` (families may cap batch_size by the table's size)."""
        return self.config.batch_size

    def batches(self, n_rows: int, batch_size: int) -> Iterator[torch.Tensor]:
        """Shuffled index batches over the training rows, drawn on the device (a whole epoch)."""
        perm = torch.randperm(n_rows, generator=self.rng_).to(self.device_)
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

    def _save_checkpoint(self, next_epoch: int, next_step: int, partial: torch.Tensor | None) -> None:
        """Everything a new process needs to continue exactly here: weights, optimisers, RNG
        states, history, the best validated weights so far and, mid-epoch, the epoch's sums."""
        path = self._checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        best = dict(self._best)
        state = {
            "next_epoch": next_epoch,
            "next_step": next_step,
            "partial": None if partial is None else partial.detach().cpu(),
            "modules": {k: m.state_dict() for k, m in self._modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self._optimizers().items()},
            "history": json.dumps(to_jsonable(self.history_)),
            "rng": self.rng_.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device_) if self.device_.type == "cuda" else None,
            "best": {
                "score": best["score"],
                "epoch": best["epoch"],
                "stale": best["stale"],
                "modules": best["modules"],
            },
            "codec": json.dumps(to_jsonable(self.codec_.state_dict())),
            "extra": json.dumps(to_jsonable(self._extra_state())),
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
        return model_files.read_checkpoint(path, self)

    def _restore_checkpoint(self, state: dict[str, Any]) -> tuple[int, int, torch.Tensor | None]:
        model_files.check_checkpoint_fits(state, self, self._checkpoint_path())
        for name, module in self._modules().items():
            module.load_state_dict(state["modules"][name])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.history_ = json.loads(state["history"])
        self.rng_.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device_.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device_)
        best = state.get("best") or {}
        modules = best.get("modules")
        if modules is not None:
            modules = {k: {p: t.to(self.device_) for p, t in m.items()} for k, m in modules.items()}
        self._best = {
            "score": best.get("score", math.inf),
            "epoch": best.get("epoch"),
            "stale": best.get("stale", 0),
            "modules": modules,
        }
        partial = state.get("partial")
        return int(state["next_epoch"]), int(state.get("next_step", 0)), (
            None if partial is None else partial.to(self.device_)
        )

    # ---- helpers -------------------------------------------------------------------------------

    def _validate_config(self) -> None:
        """Raise a ConfigError naming the first parameter whose value breaks its rule."""
        cfg = self.config
        for name, ok, what in self._param_checks():
            try:
                valid = bool(ok(cfg))
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise ConfigError(f"{self.name} generator: {name} {what}, got {getattr(cfg, name)!r}")

    def _to_device(self, encoded: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(encoded.values, device=self.device_),
            torch.as_tensor(encoded.codes, device=self.device_),
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "codec_"):
            raise ModelError(f"this {self.name} generator is not fitted yet; call fit() or load() first")

    def _parse_conditions(self, conditions: Any, n: int) -> Conditions | None:
        if conditions is None or (isinstance(conditions, Mapping) and not conditions):
            return None
        if self.supports_conditions == "none":
            raise ConfigError(f"the {self.name} generator cannot sample conditionally; use gan or autoregressive")
        return Conditions.parse(conditions, self.schema_, n)

    def _sample_legacy(self, n: int, conditions: Conditions | None, seed: int, start_index: int) -> pd.DataFrame:
        """Sampling for a family with the former hooks: each block's requested rows only, seeded
        by (block, first row in block); rows match across chunkings aligned to whole blocks."""
        block, frames = SAMPLE_BLOCK_ROWS, []
        frame = _legacy_condition_frame(conditions, self.schema_) if conditions is not None else None
        for k in range(start_index // block, -(-(start_index + n) // block)):
            first = k * block
            a, b = max(first, start_index) - first, min(first + block, start_index + n) - first
            offset = first + a - start_index
            part = frame.iloc[offset : offset + b - a].reset_index(drop=True) if frame is not None else None
            generator = torch.Generator(device=self.device_).manual_seed(
                derive_seed(seed, SeedStream.SAMPLE_BLOCK, k, a)
            )
            with torch.no_grad():
                values, codes = self._sample_encoded(b - a, generator, part)
            decode_seed = derive_seed(seed, SeedStream.SAMPLE_DECODE, k, a)
            frames.append(self._decode(values, codes, seed=decode_seed, start_index=first + a))
        if not frames:
            return self.codec_.decode(self.codec_.empty(), None, start_index)
        return pd.concat(frames, ignore_index=True)


def _pass_sizes(n_rows: int, batch_size: int) -> list[int]:
    """Batch sizes of one pass over n_rows (a last batch of one row is dropped: BatchNorm)."""
    sizes = [min(batch_size, n_rows - s) for s in range(0, n_rows, batch_size)]
    return [s for s in sizes if s > 1] or [n_rows]


def _legacy_condition_frame(conditions: Conditions, schema: TableSchema) -> pd.DataFrame:
    """Conditions in the former per-row frame form: a category or None; (low, high) with floats
    or Timestamps (in the column's zone) and None for an open end; None when free."""
    out: dict[str, pd.Series] = {}
    for name, cells in conditions.values.items():
        out[name] = pd.Series(np.array(cells, dtype=object))
    for name, (low, high) in conditions.ranges.items():
        column = schema[name]

        def end(x: float, column: Any = column) -> Any:
            if math.isnan(x):
                return None
            if column.kind != ColumnKind.DATETIME:
                return float(x)
            stamp = from_units(x, column)
            if column.timezone is not None:
                stamp = stamp.tz_localize(column.timezone, ambiguous=True, nonexistent="shift_forward")
            return stamp

        cells = [
            None if math.isnan(lo) and math.isnan(hi) else (end(lo), end(hi))
            for lo, hi in zip(low.tolist(), high.tolist(), strict=True)
        ]
        series = pd.Series([None] * len(cells), dtype=object)
        series[:] = cells if cells else []
        out[name] = series
    return pd.DataFrame(out)


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
