"""Inverted-dropout masks from packed random bits.

Why not `nn.Dropout`: on the CPU, torch draws one Bernoulli (or one uniform) per element, about
5 ns each, and for the small models here that was the largest single cost of a training step
(17% of an autoregressive step on diamonds). One full-range int64 draw gives four 16-bit
uniforms, which makes a mask about 4x cheaper; the drop probability is p rounded to 1/65536.
The bits come from torch's global generator, which `BaseGenerator.fit` seeds, so runs repeat.
"""

from __future__ import annotations

import math

import torch

_LEVELS = 1 << 16


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """0 where dropped (probability p), 1/(1-p) where kept, of `shape` and `dtype`."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)
    bits = words.view(torch.int16)[:n].view(shape)
    keep = bits >= round(p * _LEVELS) - _LEVELS // 2
    return keep.to(dtype).mul_(1.0 / (1.0 - p))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Functional inverted dropout (autograd flows through the product with the mask)."""
    if not training or p == 0.0:
        return x
    return x * keep_mask(tuple(x.shape), p, x.device, x.dtype)


class FastDropout(torch.nn.Module):
    """`nn.Dropout` drawn from packed bits (see the module docstring); no parameters or buffers,
    so model files are unchanged."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
