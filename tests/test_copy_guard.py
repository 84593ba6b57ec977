"""The copy guard (generators/copy_guard.py): a privacy signal that ends training."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthpipe.generators.autoregressive import AutoregressiveTransformer
from synthpipe.generators.copy_guard import CopyGuard
from synthpipe.generators.schema import infer_schema

PARAMS = {"d_model": 32, "n_layers": 2, "n_heads": 2, "dropout": 0.0, "epochs": 120, "patience": 0,
          "eval_every": 2, "learning_rate": 1e-2, "batch_size": 64, "progress": False, "seed": 0}


def _prototype_table(n: int = 600) -> pd.DataFrame:
    """Rows near 40 prototypes: real structure to learn, natural duplicates (~29%), and noisy rows
    that a model can go on to memorise after it has learnt the prototypes."""
    rng = np.random.default_rng(0)
    proto, k = rng.integers(0, 20, (40, 5)), rng.integers(0, 40, n)
    values = np.where(rng.random((n, 5)) < 0.75, proto[k], rng.integers(0, 20, (n, 5)))
    return pd.DataFrame({f"c{i}": [f"v{v}" for v in values[:, i]] for i in range(5)})


def test_training_stops_when_generated_rows_copy_more_than_real_rows_do():
    table = _prototype_table()
    guarded = AutoregressiveTransformer(**PARAMS).fit(table)
    history = guarded.history_
    assert history["stop"]["reason"] == "copies"
    assert len(history["epoch"]) < PARAMS["epochs"]
    rates = np.asarray(history["copy_rate"], dtype=float)
    limits = np.asarray(history["copy_limit"], dtype=float)
    validated = ~np.isnan(rates)
    assert (rates[validated][-2:] > limits[validated][-2:]).all()  # two strikes ended it
    kept = history["epoch"].index(guarded.best_epoch_)
    assert rates[kept] <= limits[kept]  # the weights kept are under the limit
    summary = guarded.training_summary()
    assert summary["stop_reason"] == "copies" and "copy guard" in summary["stop_note"]

    unguarded = AutoregressiveTransformer(**PARAMS, copy_guard=False).fit(table)
    assert len(unguarded.history_["epoch"]) == PARAMS["epochs"]
    assert "copy_rate" not in unguarded.history_ and "stop" not in unguarded.history_
    assert unguarded.training_summary()["stop_reason"] == "epochs"


def test_only_once_seen_training_rows_count_and_the_natural_rate_is_pooled():
    train = pd.DataFrame({"a": ["x", "x", "y", "z"], "b": [1, 1, 2, 3]})
    val = pd.DataFrame({"a": ["y", "q"], "b": [2, 9]})
    guard = CopyGuard(train, val, infer_schema(train))
    # validation: 1 of 2 rows is a once-seen training row; training, leaving each row out: the
    # two ("x", 1) rows would each be one, the two singletons would not
    assert guard.natural == 3 / 6 and guard.n_natural == 6
    # ("x", 1) occurs twice in training, so generating it is no copy; ("y", 2) is one
    rate, limit = guard.check(pd.DataFrame({"a": ["x", "q", "q", "y"], "b": [1, 9, 8, 2]}))
    assert rate == 0.25 and limit > guard.natural
