"""One autoregressive fit under a time budget, scored like the harness, in this process.

Why beside benchmarks.run: a parameter probe (depth, decay, learning rate) needs only the
validation loss, AUC and TSTR of one fit, without the harness's workers, peers and reports;
decisions it informs are then checked side by side by benchmarks.run.

    python -m benchmarks.budget_probe loans 0 60 n_layers=3 [name=value ...]
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from synthpipe.benchmarks import datasets, metrics
from synthpipe.benchmarks.run import parse_params
from synthpipe.benchmarks.systems import EPOCH_CAP
from synthpipe.generators.autoregressive import AutoregressiveTransformer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="one autoregressive fit under a budget, scored")
    parser.add_argument("dataset", choices=sorted(datasets.DATASETS))
    parser.add_argument("seed", type=int)
    parser.add_argument("budget", type=float, help="time_budget_s")
    parser.add_argument("params", nargs="*", help="KEY=VALUE Config fields, as benchmarks.run --param")
    args = parser.parse_args(argv)
    name, seed, budget, params = args.dataset, args.seed, args.budget, parse_params(parser, args.params)
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    spec = datasets._spec(name)
    train, holdout = datasets.split(datasets.load_table(name), seed)
    model = AutoregressiveTransformer(time_budget_s=budget, epochs=EPOCH_CAP, seed=seed, progress=False, **params)
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
    print(json.dumps(main()))
