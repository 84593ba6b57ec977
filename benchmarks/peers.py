"""MOSTLY AI's TabularARGN (`mostlyai-engine`), the strongest open peer, as a harness system.

It lives in its own virtual environment (benchmarks/.venv-peer, made by benchmarks/setup_peer.sh)
because mostlyai-engine pulls in transformers and a torchvision that breaks against the CPU torch;
synthpipe's environment stays clean. The harness runs this adapter's worker under that venv's
python (run.run_worker), so nothing here imports synthpipe.

The adapter drives the engine's documented workflow over a workspace directory: split (the engine's
own 80/20 train/validation split of the rows it is given), analyze (column statistics), encode,
train (`max_training_time` in minutes, `max_epochs`), generate (`sample_size` rows, written as
Parquet under the workspace's SyntheticData folder, read back here). Only train() is counted as
training time; split + analyze + encode are preprocessing, as for the other systems.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
PEER_VENV = Path(os.environ.get("SYNTHPIPE_PEER_VENV", HERE / ".venv-peer"))
TABULARARGN = "tabularargn"
# the harness's semantic types -> the engine's encoding types, so that TabularARGN sees the same
# column types as every other system rather than guessing its own
ENCODING = {
    "numerical": "TABULAR_NUMERIC_AUTO",
    "categorical": "TABULAR_CATEGORICAL",
    "boolean": "TABULAR_CATEGORICAL",
    "datetime": "TABULAR_DATETIME",
}


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def peer_unavailable_reason() -> str | None:
    """Why the TabularARGN system cannot run here (no peer venv), or None when it can."""
    python = peer_python()
    if not python.is_file():
        return (
            f"the peer's virtual environment {python.parent.parent} is absent; "
            "create it with `bash benchmarks/setup_peer.sh`"
        )
    return None


class TabularARGNSystem:
    """fit(train, job) -> timings; sample(n, seed) -> rows, like every other system."""

    def fit(self, train: pd.DataFrame, job: Any) -> dict[str, Any]:
        from mostlyai import engine

        self.workspace = Path(tempfile.mkdtemp(prefix="tabularargn-", dir=Path(job.result_path).parent))
        self.device = "cuda" if job.device.startswith("cuda") else "cpu"
        columns = job.metadata["columns"]
        encoding = {name: ENCODING[spec["sdtype"]] for name, spec in columns.items()}
        if os.environ.get("SYNTHPIPE_PEER_VERBOSE"):
            engine.init_logging()
        engine.set_random_state(job.seed)
        start = time.perf_counter()
        engine.split(
            tgt_data=train, tgt_encoding_types=encoding, model_type="TABULAR", workspace_dir=self.workspace
        )
        engine.analyze(workspace_dir=self.workspace)
        engine.encode(workspace_dir=self.workspace)
        prep_s = time.perf_counter() - start
        messages: list[dict[str, Any]] = []

        def progress(total=None, completed=None, advance=None, message=None, **_: Any) -> None:
            if message:
                messages.append(dict(message))

        if job.comparison == "equal_work":  # exactly `epochs` epochs (it may still stop early)
            limits = {"max_epochs": float(job.epochs), "max_training_time": 10_000.0}
        else:  # the budget, in minutes, is the limit
            limits = {"max_epochs": 100_000.0, "max_training_time": job.budget_s / 60.0}
        train_start = time.perf_counter()
        engine.train(
            batch_size=job.batch_size if job.comparison == "equal_work" else None,
            device=self.device,
            workspace_dir=self.workspace,
            update_progress=progress,
            **limits,
        )
        train_s = time.perf_counter() - train_start
        last = next((m for m in reversed(messages) if m.get("epoch") is not None), {})
        return {
            "prep_fit_s": prep_s,
            "prep_s": prep_s,
            "train_s": train_s,
            "fit_total_s": time.perf_counter() - start,
            "engine_train_s": last.get("total_time"),  # the engine's own clock (training steps only)
            "epochs_run": last.get("epoch"),
            "rows_per_epoch": int(round(len(train) * 0.8)),  # split() keeps 80% for training
            "stopped_early": None,
            "peer_version": _versions(),
            "net": "MOSTLY_AI/Medium (engine default)"
            + ("" if job.comparison == "equal_work" else "; batch size chosen by the engine"),
        }

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        from mostlyai import engine

        engine.set_random_state(seed)
        engine.generate(sample_size=n, device=self.device, workspace_dir=self.workspace)
        return pd.read_parquet(self.workspace / "SyntheticData").reset_index(drop=True)


def _versions() -> str:
    """The peer venv's own versions (the CSV's v_* columns describe synthpipe's environment)."""
    from importlib.metadata import version

    return f"mostlyai-engine {version('mostlyai-engine')} (torch {version('torch')}, python {sys.version.split()[0]})"
