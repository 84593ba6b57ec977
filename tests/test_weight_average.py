"""The autoregressive model validates, guards and keeps an exponential moving average of its
weights: the average follows its recurrence, survives a checkpoint, and is what the model keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthpipe.generators.autoregressive import AutoregressiveTransformer
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.weight_average import WARMUP, WeightAverage

SMALL = {"d_model": 16, "n_layers": 2, "n_heads": 2, "progress": False, "batch_size": 64, "dropout": 0.0}


def _table(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame({"a": a, "k": np.where(a == "x", rng.integers(0, 5, n), rng.integers(3, 9, n))})


def test_the_average_follows_its_warmed_up_recurrence_and_round_trips_as_optimiser_state():
    w = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([w], decay=0.9)
    assert average.averages() is None  # nothing to swap in before the first step
    expected = None
    for t, value in enumerate([1.0, 2.0, 4.0, 8.0, 16.0], start=1):
        with torch.no_grad():
            w.fill_(value)
        average.step()
        decay = min(0.9, (1 + t) / (WARMUP + t))
        expected = value if expected is None else decay * expected + (1 - decay) * value
        torch.testing.assert_close(average.averages()[0], torch.full((3,), expected))

    again = WeightAverage([w], decay=0.9)
    again.load_state_dict(average.state_dict())
    for opt in (average, again):
        with torch.no_grad():
            w.fill_(32.0)
        opt.step()
    torch.testing.assert_close(again.averages()[0], average.averages()[0])


def test_without_validation_the_model_keeps_the_average_not_the_last_weights():
    model = AutoregressiveTransformer(**SMALL, epochs=4, val_fraction=0.0, ema_decay=0.9).fit(_table())
    assert model.average_.steps >= 20 and model.average_.settled  # 2 / (1 - 0.9) steps
    averages = model.average_.averages()
    assert averages is not None
    for param, kept in zip(model.model_.parameters(), averages, strict=True):
        assert torch.equal(param.detach(), kept)


class _KeepsValidationRows(AutoregressiveTransformer):
    """fit() drops its validation rows when training ends; this keeps them to score again."""

    def _train(self, *args):
        super()._train(*args)
        self.kept_val_ = self.val_


def test_each_validation_keeps_the_average_or_the_live_weights_whichever_scores_lower():
    params = {**SMALL, "epochs": 6, "eval_every": 1, "patience": 0, "learning_rate": 2e-2}
    model = _KeepsValidationRows(**params, ema_decay=0.9).fit(_table())
    live = AutoregressiveTransformer(**params, ema_decay=0.0).fit(_table())
    assert live.average_ is None and "weight_average_kept" not in live.history_
    # the live weights train the same in both runs; validation scores both and keeps the lower
    chosen, alone = np.array(model.history_["val_loss"]), np.array(live.history_["val_loss"])
    assert (chosen <= alone + 1e-9).all()
    averaged = np.array(model.history_["weight_average_kept"]) == 1.0
    assert averaged.any() and np.allclose(chosen[~averaged], alone[~averaged])
    assert np.isnan(np.array(model.history_["weight_average_kept"], float)[0])  # 8 steps: not settled yet
    assert (chosen[averaged] <= alone[averaged]).all()

    best = int(np.argmin(chosen))
    model.model_.eval()
    model.val_ = model.kept_val_
    with torch.no_grad():  # the kept weights are those of the best validation, so they score it
        assert model._validation_loss() == pytest.approx(chosen[best], rel=1e-6)


def test_an_average_over_fewer_than_two_horizons_is_not_used():
    model = AutoregressiveTransformer(**SMALL, epochs=3, val_fraction=0.0).fit(_table())
    assert model.average_.steps < 400 and not model.average_.settled  # 2 / (1 - 0.995)
    assert not all(
        torch.equal(p.detach(), a) for p, a in zip(model.model_.parameters(), model.average_.averages(), strict=True)
    )


@pytest.mark.parametrize("bad", [1.0, -0.1, "high"])
def test_a_decay_outside_zero_to_one_is_refused(bad):
    with pytest.raises(ConfigError, match="ema_decay"):
        AutoregressiveTransformer(**SMALL, ema_decay=bad).fit(_table(60))
