"""The systems under test, behind one small adapter each: fit(train) -> timings, sample(n) -> rows.

synthpipe's generators come from `synthpipe.generators.get_generator_class`, so a model family
that lands later (gan, autoregressive) is picked up without changing this file; SDV's
synthesizers come from the optional `bench` extra; MOSTLY AI's TabularARGN runs in its own
virtual environment (peers.py). All are configured here for the comparisons, with network sizes
matched as closely as the code bases allow (see NETS; TabularARGN keeps its default size).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from .snapshots import BudgetSnapshots, attach

SYSTEMS: dict[str, tuple[str, str]] = {
    "synthpipe-vae": ("synthpipe", "vae"),
    "synthpipe-gan": ("synthpipe", "gan"),
    "synthpipe-autoregressive": ("synthpipe", "autoregressive"),
    "sdv-ctgan": ("sdv", "ctgan"),
    "sdv-tvae": ("sdv", "tvae"),
    "sdv-gaussiancopula": ("sdv", "gaussiancopula"),
    "mostly-tabularargn": ("mostlyai", "tabularargn"),
}

# Comparable networks. SDV's defaults are TVAE compress/decompress (128, 128) with a 128-d
# latent, CTGAN generator/discriminator (256, 256) with 128-d noise; synthpipe's VAE and GAN get
# the same widths. Each logical size lists the Config field names it may go by in a family; the
# first one the family's Config has is set, and what was set is recorded with the result.
NETS: dict[str, dict[str, tuple[tuple[str, ...], Any]]] = {
    "vae": {
        "hidden": (("hidden_dims", "compress_dims"), (128, 128)),
        "latent": (("latent_dim", "embedding_dim"), 128),
    },
    "gan": {
        "generator": (("generator_dims", "generator_dim", "generator_hidden", "hidden_dims"), (256, 256)),
        "discriminator": (("discriminator_dims", "discriminator_dim", "critic_dims"), (256, 256)),
        "noise": (("embedding_dim", "noise_dim", "latent_dim", "z_dim"), 128),
    },
}
SDV_NETS: dict[str, dict[str, Any]] = {
    "tvae": {"compress_dims": (128, 128), "decompress_dims": (128, 128), "embedding_dim": 128},
    "ctgan": {"generator_dim": (256, 256), "discriminator_dim": (256, 256), "embedding_dim": 128},
    "gaussiancopula": {},
}
TABLE = "table"  # the single table's name in SDV metadata
EPOCH_CAP = 100_000  # "unlimited" epochs for synthpipe under a time budget


@dataclass
class Job:
    """One training run, as the parent hands it to a worker process (plain data, JSON-able)."""

    system: str
    dataset: str
    seed: int
    comparison: str  # equal_work | equal_budget
    epochs: int
    batch_size: int
    budget_s: float
    threads: int
    device: str
    n_sample: int
    train_path: str
    synth_path: str
    result_path: str
    metadata: dict[str, Any]
    epoch_seconds: float | None = None  # SDV under a budget: measured seconds per epoch, if known
    # time to quality (synthpipe): train once for max(marks) s and save the model at each mark
    marks: list[float] | None = None
    snapshot_dir: str | None = None
    # synthpipe: Config fields set on top of the comparison's own (`--param key=value`)
    params: dict[str, Any] | None = None


def unavailable_reason(system: str) -> str | None:
    """Why `system` cannot run in this environment, or None when it can."""
    if system not in SYSTEMS:
        return f"unknown system {system!r}; known systems are {', '.join(SYSTEMS)}"
    library, name = SYSTEMS[system]
    if library == "synthpipe":
        from synthpipe.generators import get_generator_class
        from synthpipe.generators.errors import ConfigError

        try:
            get_generator_class(name)
        except ConfigError as exc:
            return str(exc)
        return None
    if library == "mostlyai":
        from .peers import peer_unavailable_reason

        return peer_unavailable_reason()
    missing = [m for m in ("sdv", "ctgan") if importlib.util.find_spec(m) is None]
    return f"{', '.join(missing)} not installed (pip install -e '.[bench]')" if missing else None


def make_system(system: str) -> Any:
    library, name = SYSTEMS[system]
    if library == "mostlyai":
        from .peers import TabularARGNSystem

        return TabularARGNSystem()
    return SynthpipeSystem(name) if library == "synthpipe" else SDVSystem(name)


def snapshots_in_one_run(system: str) -> bool:
    """Whether `system` trains once and snapshots at every time-to-quality mark (synthpipe), or is
    retrained with each mark as its budget (the peers, which offer no snapshot hook)."""
    return SYSTEMS[system][0] == "synthpipe"


# ---- timing instrumentation ----------------------------------------------------------------


class Stopwatch:
    total: float = 0.0
    calls: int = 0


@contextmanager
def time_calls(owner: type, method: str) -> Iterator[Stopwatch]:
    """Accumulate the wall time of every call to `owner.method` inside the block.

    This wraps the real method (it still runs); it is how preprocessing that happens inside a
    library's fit() is timed without copying that library's code."""
    original = owner.__dict__.get(method)
    target = getattr(owner, method)
    watch = Stopwatch()

    @functools.wraps(target)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return target(*args, **kwargs)
        finally:
            watch.total += time.perf_counter() - start
            watch.calls += 1

    setattr(owner, method, timed)
    try:
        yield watch
    finally:
        if original is None:
            delattr(owner, method)
        else:
            setattr(owner, method, original)


class EpochLoop:
    """Stands in for the `tqdm` that CTGAN and TVAE wrap around their epoch loop: counts epochs,
    times the loop alone and, given a budget, ends it after the epoch during which the budget ran
    out (exactly what synthpipe's `time_budget_s` does). SDV has no time budget of its own."""

    def __init__(self, budget_s: float | None):
        self.budget_s, self.epochs, self.seconds = budget_s, 0, 0.0

    def __call__(self, iterable: Any, *args: Any, **kwargs: Any) -> _Loop:
        return _Loop(self, iterable)


class _Loop:
    def __init__(self, owner: EpochLoop, iterable: Any):
        self.owner, self.iterable = owner, iterable

    def __iter__(self) -> Iterator[Any]:
        start, done = time.perf_counter(), 0
        try:
            for item in self.iterable:
                budget = self.owner.budget_s
                if budget is not None and done and time.perf_counter() - start > budget:
                    break
                done += 1
                self.owner.epochs += 1
                yield item
        finally:
            self.owner.seconds += time.perf_counter() - start

    def set_description(self, *args: Any, **kwargs: Any) -> None:  # tqdm API used when verbose
        pass


@contextmanager
def epoch_loop(budget_s: float | None) -> Iterator[EpochLoop | None]:
    """Hook EpochLoop into ctgan's CTGAN and TVAE for the block; yields None if they changed shape."""
    import ctgan.synthesizers.ctgan as ctgan_module
    import ctgan.synthesizers.tvae as tvae_module

    modules = [m for m in (ctgan_module, tvae_module) if hasattr(m, "tqdm")]
    if len(modules) < 2:
        yield None
        return
    loop, originals = EpochLoop(budget_s), [m.tqdm for m in modules]
    for module in modules:
        module.tqdm = loop
    try:
        yield loop
    finally:
        for module, original in zip(modules, originals):
            module.tqdm = original


# ---- synthpipe -----------------------------------------------------------------------------


def net_params(config_cls: type, family: str) -> dict[str, Any]:
    """The comparable-network settings that `config_cls` understands (see NETS)."""
    known = {f.name for f in fields(config_cls)}
    out: dict[str, Any] = {}
    for candidates, value in NETS.get(family, {}).values():
        field_name = next((c for c in candidates if c in known and c not in out), None)
        if field_name is not None:
            out[field_name] = value
    return out


class SynthpipeSystem:
    def __init__(self, generator: str):
        self.generator = generator

    def fit(self, train: pd.DataFrame, job: Job) -> dict[str, Any]:
        from synthpipe.generators import get_generator_class
        from synthpipe.generators.transforms import TableEncoder

        cls = get_generator_class(self.generator)
        params: dict[str, Any] = {"seed": job.seed, "device": job.device, "progress": False}
        if job.comparison == "equal_work":  # exactly `epochs` epochs at the shared batch: no early stop, no budget
            params.update(epochs=job.epochs, patience=0, batch_size=job.batch_size)
        elif job.marks:  # time to quality: one run to the last mark, no early stop, snapshots
            params.update(epochs=EPOCH_CAP, time_budget_s=max(job.marks), patience=0)
        else:  # the budget is the limit; early stopping may end sooner
            params.update(epochs=EPOCH_CAP, time_budget_s=job.budget_s)
        known = {f.name for f in fields(cls.Config)}
        chosen = {k: v for k, v in (job.params or {}).items() if k in known}
        net = {**net_params(cls.Config, self.generator), **chosen}
        self.model = cls(**{**params, **net})
        self.snapshots = None
        with ExitStack() as stack:
            fit_kwargs: dict[str, Any] = {}
            if job.marks:
                self.snapshots = BudgetSnapshots(job.marks, job.snapshot_dir or "snapshots")
                fit_kwargs = stack.enter_context(attach(self.model, self.snapshots))
            # transform fitting: the shared encoder, plus any model-specific preprocessing (e.g. the
            # autoregressive model's bins); encoding: the family's row encoder if it has its own
            fit_watches = [stack.enter_context(time_calls(TableEncoder, "fit"))]
            if hasattr(cls, "_fit_preprocessing"):
                fit_watches.append(stack.enter_context(time_calls(cls, "_fit_preprocessing")))
            encode_owner = (cls, "_encode_rows") if hasattr(cls, "_encode_rows") else (TableEncoder, "encode")
            encode_watch = stack.enter_context(time_calls(*encode_owner))
            start = time.perf_counter()
            self.model.fit(train, **fit_kwargs)
            fit_total = time.perf_counter() - start
        prep_fit = sum(w.total for w in fit_watches)
        epochs_run = len(self.model.history_.get("epoch", []))
        train_s = float(self.model.fit_seconds_)
        if self.snapshots is not None:
            self.snapshots.finish(self.model, train_s - self.snapshots.paused_s, epochs_run)
            train_s -= self.snapshots.paused_s  # saving snapshots is not training
        summary = self.model.training_summary()
        return {
            "prep_fit_s": prep_fit,
            "prep_s": prep_fit + encode_watch.total,
            "train_s": train_s,
            "fit_total_s": fit_total,
            "epochs_run": epochs_run,
            "rows_per_epoch": int(self.model.n_train_),
            "stopped_early": bool(getattr(self.model, "stopped_early_", False)),
            "stop_reason": summary["stop_reason"],
            "best_epoch": summary["best_epoch"],
            "validation_s": summary["validation_s"],  # inside train_s
            "validations_skipped": summary["validations_skipped"],
            "net": _describe(net),
        }

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        return self.model.sample(n, seed=seed)

    def snapshot_samples(self, n: int, seed: int, stem: str) -> list[dict[str, Any]]:
        """Sample n rows from every time-to-quality snapshot (each loaded from its saved files,
        as a run would load them) into `{stem}-{mark}s.pkl`; one record per mark."""
        out, loaded = [], {}
        for snap in self.snapshots.taken if self.snapshots is not None else []:
            if snap["path"] not in loaded:
                loaded[snap["path"]] = type(self.model).load(snap["path"], device=str(self.model.device_))
            start = time.perf_counter()
            rows = loaded[snap["path"]].sample(n, seed=seed)
            path = f"{stem}-{snap['mark_s']:g}s.pkl"
            rows.to_pickle(path)
            out.append({**snap, "sample_s": time.perf_counter() - start, "synth_path": path})
        return out


# ---- SDV -----------------------------------------------------------------------------------


class SDVSystem:
    def __init__(self, kind: str):
        self.kind = kind

    def _make(self, metadata: dict[str, Any], job: Job, epochs: int) -> Any:
        from sdv.metadata import Metadata
        from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

        md = Metadata.load_from_dict({"tables": {TABLE: metadata}})
        if self.kind == "gaussiancopula":
            return GaussianCopulaSynthesizer(md)
        cls = CTGANSynthesizer if self.kind == "ctgan" else TVAESynthesizer
        return cls(
            md,
            epochs=epochs,
            batch_size=job.batch_size,
            enable_gpu=job.device != "cpu",
            verbose=False,
            **SDV_NETS[self.kind],
        )

    def fit(self, train: pd.DataFrame, job: Job) -> dict[str, Any]:
        if self.kind == "gaussiancopula":
            self.model = self._make(job.metadata, job, 0)
            return {
                **self._timed_fit(self.model, train),
                "epochs_run": None,
                "rows_per_epoch": len(train),
                "stopped_early": False,
                "net": "defaults",
            }
        budget = job.budget_s if job.comparison == "equal_budget" else None
        with epoch_loop(budget) as loop:
            if loop is None and budget is not None:  # no hook into this ctgan: choose epochs instead
                epochs, method = self._budget_epochs(train, job), "epochs chosen from measured s/epoch"
            else:
                epochs, method = (job.epochs if budget is None else EPOCH_CAP), "stopped at budget"
            self.model = self._make(job.metadata, job, epochs)
            timings = self._timed_fit(self.model, train)
        if loop is not None and loop.epochs:
            timings["setup_s"] = timings["train_s"] - loop.seconds
            timings["train_s"] = loop.seconds  # the epoch loop alone, as synthpipe's fit_seconds_
        timings.update(
            epochs_run=loop.epochs if loop is not None else epochs,
            rows_per_epoch=len(train),
            stopped_early=False,
            net=_describe(SDV_NETS[self.kind]),
        )
        if budget is not None:
            timings["budget_method"] = method
        return timings

    def _budget_epochs(self, train: pd.DataFrame, job: Job) -> int:
        """Fallback when the epoch loop cannot be hooked: as many epochs as fit the budget at the
        seconds per epoch measured in the equal-work run (or here, with one epoch)."""
        per_epoch = job.epoch_seconds
        if not per_epoch:
            per_epoch = self._timed_fit(self._make(job.metadata, job, 1), train)["train_s"]
        return max(1, math.floor(job.budget_s / max(per_epoch, 1e-9)))

    def _timed_fit(self, synthesizer: Any, train: pd.DataFrame) -> dict[str, float]:
        """preprocess() (RDT transforms) then fit_processed_data(), whose first step is CTGAN's own
        DataTransformer fit + transform; those are preprocessing, the rest is training."""
        from ctgan.data_transformer import DataTransformer
        from sdv.data_processing.data_processor import DataProcessor

        with (
            time_calls(DataProcessor, "fit") as processor_fit,
            time_calls(DataTransformer, "fit") as transformer_fit,
            time_calls(DataTransformer, "transform") as transformer_transform,
        ):
            start = time.perf_counter()
            processed = synthesizer.preprocess({TABLE: train})  # SDV 2 takes {table: frame}
            preprocess_s = time.perf_counter() - start
            synthesizer.fit_processed_data(processed)
            fit_total = time.perf_counter() - start
        inner_prep = transformer_fit.total + transformer_transform.total
        return {
            "prep_fit_s": processor_fit.total + transformer_fit.total,
            "prep_s": preprocess_s + inner_prep,
            "train_s": fit_total - preprocess_s - inner_prep,
            "fit_total_s": fit_total,
        }

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        sampled = self.model.sample(num_rows=n)
        return sampled[TABLE] if isinstance(sampled, dict) else sampled


def _describe(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in params.items()) or "defaults"
