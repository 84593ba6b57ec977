"""An exponential moving average of a model's weights, kept as optimiser state.

Why an optimiser: its state_dict holds a tensor per parameter and a step count, so the
resumable checkpoint saves, checks (`model_files._check_optimizer`) and restores the average
with everything else, and a resumed run continues it exactly. It never computes gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

WARMUP = 10  # the decay at step t is min(decay, (1 + t) / (WARMUP + t)): early weights fade fast


class WeightAverage(torch.optim.Optimizer):
    """`step()` after each real optimiser step folds the current weights into the average."""

    def __init__(self, params: Iterable[torch.nn.Parameter], decay: float):
        super().__init__(params, {"decay": decay, "steps": 0})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            group["steps"] += 1
            t = group["steps"]
            weight = 1.0 - min(group["decay"], (1 + t) / (WARMUP + t))
            params = [p.detach() for p in group["params"]]
            averages = [self._average(p, q) for p, q in zip(group["params"], params, strict=True)]
            torch._foreach_lerp_(averages, params, weight)

    def _average(self, param: torch.nn.Parameter, value: torch.Tensor) -> torch.Tensor:
        state = self.state[param]
        if "average" not in state:
            state["average"] = value.clone()
        return state["average"]

    @property
    def steps(self) -> int:
        return int(self.param_groups[0]["steps"]) if self.param_groups else 0

    @property
    def settled(self) -> bool:
        """Whether the average has seen two horizons (2 / (1 - decay) steps). Why wait: before
        that it still holds much of the fast-improving start, and a run that short is still
        improving steeply, which an average lags; it also spares the second validation pass.
        Not a measured gain: on loans at 60 s (about 190 steps, so never settled) seeds that
        ran as many epochs scored the same AUC with and without this rule, and the spread
        between runs there came from where the time budget cut the last epoch (0.761 against
        0.789 at 13 epochs, live weights both times)."""
        decay = self.param_groups[0]["decay"] if self.param_groups else 0.0
        return self.steps >= 2.0 / (1.0 - decay)

    def averages(self) -> list[torch.Tensor] | None:
        """The average per parameter, in parameter order; None before the first step."""
        params = [p for group in self.param_groups for p in group["params"]]
        if not all("average" in self.state[p] for p in params):
            return None
        return [self.state[p]["average"] for p in params]
