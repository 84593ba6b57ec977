"""One autoregressive fit under a time budget, scored like the harness, in this process.

Why beside benchmarks.run: a parameter probe (depth, decay, learning rate) needs only the
validation loss, AUC and TSTR of one fit, without the harness's workers, peers and reports;
decisions it informs are then checked side by side by benchmarks.run.

`holdout_nll` is the holdout's exact NLL (nats per row) in the canonical order, the order of
likelihoods and plain samples. `conditional_nll` is the mean over a few columns (the last three
modelled columns and the target) of the holdout's NLL in the order a conditional sample on that
column runs: the column first, then the rest canonically. Why both: a training change that
favours the canonical order (canonical_fraction) must show what it costs conditional sampling.
`rare_replayed` is the share of synthetic rows holding a categorical value seen in fewer than
5 training rows (what `min_category_count` protects; 0 with the default).
`--generator gan` (or vae) probes that generator instead, without the likelihoods, which only
the autoregressive model has.

    python -m benchmarks.budget_probe loans 0 60 n_layers=3 [name=value ...]
    python -m benchmarks.budget_probe cps1988 0 60 --generator gan
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import torch

from synthpipe.benchmarks import datasets, metrics
from synthpipe.benchmarks.run import parse_params
from synthpipe.benchmarks.systems import EPOCH_CAP
from synthpipe.generators import get_generator_class
from synthpipe.generators.autoregressive import AutoregressiveTransformer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="one autoregressive fit under a budget, scored")
    parser.add_argument("dataset", choices=sorted(datasets.DATASETS))
    parser.add_argument("seed", type=int)
    parser.add_argument("budget", type=float, help="time_budget_s")
    parser.add_argument("params", nargs="*", help="KEY=VALUE Config fields, as benchmarks.run --param")
    parser.add_argument("--generator", default="autoregressive", choices=["autoregressive", "gan", "vae"])
    args = parser.parse_args(argv)
    name, seed, budget, params = args.dataset, args.seed, args.budget, parse_params(parser, args.params)
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    spec = datasets._spec(name)
    train, holdout = datasets.split(datasets.load_table(name), seed)
    cls = get_generator_class(args.generator)
    model = cls(time_budget_s=budget, epochs=EPOCH_CAP, seed=seed, progress=False, **params)
    model.fit(train)
    synthetic = model.sample(len(train), seed=seed)
    history = model.history_
    out = {
        "dataset": name,
        "generator": args.generator,
        "seed": seed,
        "params": params,
        "epochs": len(history["epoch"]),
        "stop": history.get("stop", {}).get("reason"),
        "val_loss": min((v for v in history.get("val_loss", []) if v == v), default=None),
        "c2st_auc": round(metrics.c2st_auc(holdout, synthetic, seed=seed), 4),
        "tstr": round(metrics.utility(train, holdout, synthetic, spec.target, spec.task, seed=seed)["utility_ratio"], 4),
    }
    out["dcr_ratio"] = round(metrics.dcr_ratio(train, holdout, synthetic, seed=seed)["dcr_ratio"], 4)
    if isinstance(model, AutoregressiveTransformer):
        out.update(_likelihoods(model, holdout, spec.target))
    out["rare_replayed"] = rare_replayed(train, synthetic)
    if spec.target2:
        second = metrics.utility(train, holdout, synthetic, spec.target2, spec.task2, seed=seed)
        out["tstr2"] = round(second["utility_ratio"], 4)
    return out


def rare_replayed(train, synthetic, below: int = 5) -> float:
    """Share of synthetic rows holding a categorical value seen in fewer than `below` training
    rows: the `privacy_rare_values` check's score (what min_category_count protects)."""
    from synthpipe.generators.schema import infer_schema
    from synthpipe.validators.rare_values import rare_training_values, tally_rows

    rare = rare_training_values(train, infer_schema(train).columns, below)
    return round(tally_rows(rare, [synthetic]).share, 4)


def _likelihoods(model: AutoregressiveTransformer, holdout, target: str | None) -> dict:
    """Canonical and conditional-order holdout NLL (see the module docstring)."""
    columns = list(model.columns_)
    firsts = list(dict.fromkeys([*columns[-3:], *([target] if target in columns else [])]))
    canonical = model.log_likelihood(holdout)
    by_first = {f: model.log_likelihood(holdout, order=[f, *(c for c in columns if c != f)]) for f in firsts}
    # rows the model cannot produce (an unseen category) are -inf in every order: left out of all
    finite = np.isfinite(canonical) & np.logical_and.reduce([np.isfinite(v) for v in by_first.values()])
    conditional = {f: round(float(-v[finite].mean()), 3) for f, v in by_first.items()}
    return {
        "holdout_rows_scored": int(finite.sum()),
        "holdout_nll": round(float(-canonical[finite].mean()), 3),
        "conditional_nll": round(float(np.mean(list(conditional.values()))), 3),
        "conditional_nll_by_first": conditional,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
