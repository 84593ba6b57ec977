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

    def averages(self) -> list[torch.Tensor] | None:
        """The average per parameter, in parameter order; None before the first step."""
        params = [p for group in self.param_groups for p in group["params"]]
        if not all("average" in self.state[p] for p in params):
            return None
        return [self.state[p]["average"] for p in params]
