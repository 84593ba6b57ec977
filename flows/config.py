"""One configuration object describes a run; it is loaded from YAML and overridden by CLI flags.

Pydantic validates it up front, so a typo or a bad value is a usage error (exit 2) reported
before any data is read or the Prefect engine starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthpipe.generators import GENERATORS
from synthpipe.generators.errors import ConfigError


class SourceConfig(BaseModel):
    """Where the real table comes from: a CSV/Parquet path, directory or glob, or a database URL."""

    model_config = ConfigDict(extra="forbid")

    path: str
    format: str | None = Field(None, description="csv | parquet; inferred from the path when unset")
    delimiter: str | None = Field(None, description="CSV delimiter; sniffed when unset")
    encoding: str | None = Field(None, description="CSV encoding; sniffed when unset")
    table: str | None = Field(None, description="SQL table name (database sources)")
    query: str | None = Field(None, description="SQL query (database sources)")


class RunnerConfig(BaseModel):
    """Where the emission shards run (flows/runners.py): in process by default, a local Dask
    cluster of `workers` processes, or the existing Dask cluster at `address`."""

    model_config = ConfigDict(extra="forbid")

    workers: int | None = Field(None, ge=1, description="local Dask worker processes")
    address: str | None = Field(None, description="an existing Dask scheduler, e.g. tcp://host:8786")
    shard_rows: int = Field(1_000_000, ge=1, description="rows per shard (one part file each)")

    @field_validator("address")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^\s/]+(:\d+)?/?", value):
            raise ValueError(f"dask address {value!r} is not SCHEME://HOST:PORT, e.g. tcp://127.0.0.1:8786")
        return value

    @model_validator(mode="after")
    def _one_cluster(self) -> RunnerConfig:
        if self.workers and self.address:
            raise ValueError("workers (a local cluster) and address (an existing one) cannot be combined")
        return self


class RunConfig(BaseModel):
    """Everything a `synthpipe run` needs. Defaults are documented in the README."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: SourceConfig
    schema_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="schema")
    generator: str = "vae"
    params: dict[str, Any] = Field(default_factory=dict, description="generator hyperparameters")
    rows: int | None = Field(None, ge=0, description="rows to emit; default: as many as the source has")
    conditions: dict[str, Any] = Field(default_factory=dict)
    out: str = "out"
    holdout_fraction: float = Field(0.2, ge=0.0, lt=0.9)
    target: str | None = None
    checks: dict[str, Any] = Field(default_factory=dict, description="validator thresholds (ValidationConfig)")
    expectations: str | None = Field(None, description="a saved great-expectations suite (JSON) to use")
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    chunk_rows: int = Field(100_000, ge=1, description="rows sampled and written per chunk")
    max_train_rows: int = Field(
        200_000, ge=2, description="training rows drawn from a larger source (a uniform sample); the profile sees every row"
    )
    progress: bool = True
    # production runs
    registry: str | None = None
    versioned: bool = False
    keep_runs: int | None = Field(None, ge=1)
    split: dict[str, float] | None = None
    balance: str | None = None
    augment: bool = False
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    @field_validator("source", mode="before")
    @classmethod
    def _source_shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("generator")
    @classmethod
    def _known_generator(cls, value: str) -> str:
        if value not in GENERATORS:
            raise ValueError(f"unknown generator {value!r}; choose one of {', '.join(GENERATORS)}")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not value.startswith("cuda:"):
            raise ValueError(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N")
        return value

    @field_validator("split")
    @classmethod
    def _valid_split(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        from synthpipe.flows.exports import validate_split_spec

        try:
            return validate_split_spec(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.balance and self.conditions:
            raise ValueError("balance and conditions cannot be combined")
        return self

    @property
    def out_path(self) -> Path:
        return Path(self.out)

    def generator_params(self) -> dict[str, Any]:
        """Hyperparameters with the run-level settings (seed, device) folded in."""
        params = {"seed": self.seed, "device": self.device, "progress": self.progress, **self.params}
        return params


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a YAML config (optional) and apply non-None overrides (CLI flags) on top."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = _resolve_relative_paths(data, path.parent)
    if overrides.get("workers") is not None and overrides.get("dask_address") is not None:
        raise ConfigError("--workers (a local cluster) and --dask-address (an existing one) cannot be combined")
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("workers", "dask_address"):  # a flag replaces the config file's cluster choice
            runner = data.get("runner") if isinstance(data.get("runner"), dict) else {}
            runner = {k: v for k, v in runner.items() if k not in ("workers", "address")}
            data["runner"] = {**runner, "workers" if key == "workers" else "address": value}
        elif key == "source":
            source = data.get("source")
            data["source"] = {**source, "path": value} if isinstance(source, dict) else value
        elif key == "epochs":
            data.setdefault("params", {})["epochs"] = value
        elif key == "conditions":
            data["conditions"] = {**data.get("conditions", {}), **value}
        else:
            data[key] = value
    if "source" not in data:
        raise ConfigError("no source given: pass --source PATH or set `source:` in the config file")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, path)) from None


def runner_config(workers: int | None = None, dask_address: str | None = None, **settings: Any) -> RunnerConfig:
    """A RunnerConfig from command-line flags (`synthpipe sample`), with usage errors as ConfigError."""
    if workers is not None and dask_address is not None:
        raise ConfigError("--workers (a local cluster) and --dask-address (an existing one) cannot be combined")
    try:
        return RunnerConfig(workers=workers, address=dask_address, **settings)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, None).replace("configuration:", "runner settings:")) from None


def _resolve_relative_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Paths in a config file are relative to the file, so configs can be run from anywhere."""
    data = dict(data)
    source = data.get("source")
    if isinstance(source, str) and "://" not in source:
        data["source"] = str(base / source) if not Path(source).is_absolute() else source
    elif isinstance(source, dict) and "path" in source and "://" not in str(source["path"]):
        path = Path(str(source["path"]))
        data["source"] = {**source, "path": str(path if path.is_absolute() else base / path)}
    for key in ("expectations", "registry"):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str(base / data[key])
    return data


def _format_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)
