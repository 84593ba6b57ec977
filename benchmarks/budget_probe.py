"""One autoregressive fit under a time budget, scored like the harness, in this process.

Why beside benchmarks.run: a parameter probe (depth, decay, learning rate) needs only the
validation loss, AUC and TSTR of one fit, without the harness's workers, peers and reports;
decisions it informs are then checked side by side by benchmarks.run.

    python -m benchmarks.budget_probe loans 0 60 n_layers=3 [name=value ...]
"""

from __future__ import annotations

import json
import sys
import warnings

import torch

from synthpipe.benchmarks import datasets, metrics
from synthpipe.generators.autoregressive import AutoregressiveTransformer


def _value(text: str) -> float | int:
    return float(text) if any(ch in text for ch in ".e") else int(text)


def main(argv: list[str]) -> dict:
    name, seed, budget = argv[0], int(argv[1]), float(argv[2])
    params = {k: _value(v) for k, v in (a.split("=", 1) for a in argv[3:])}
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    spec = datasets._spec(name)
    train, holdout = datasets.split(datasets.load_table(name), seed)
    model = AutoregressiveTransformer(time_budget_s=budget, epochs=100_000, seed=seed, progress=False, **params)
    model.fit(train)
    synthetic = model.sample(len(train), seed=seed)
    history = model.history_
    out = {
        "dataset": name,
        "seed": seed,
        "params": params,
        "epochs": len(history["epoch"]),
        "stop": history.get("stop", {}).get("reason"),
        "val_loss": min(v for v in history["val_loss"] if v == v),
        "c2st_auc": round(metrics.c2st_auc(holdout, synthetic, seed=seed), 4),
        "tstr": round(metrics.utility(train, holdout, synthetic, spec.target, spec.task, seed=seed)["utility_ratio"], 4),
    }
    if spec.target2:
        second = metrics.utility(train, holdout, synthetic, spec.target2, spec.task2, seed=seed)
        out["tstr2"] = round(second["utility_ratio"], 4)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
