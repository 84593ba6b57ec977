"""The packed-bits dropout masks (generators/dropout.py) behave as inverted dropout."""

from __future__ import annotations

import pytest
import torch

from synthpipe.generators.dropout import FastDropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_drops_at_rate_p_and_rescales_the_kept(p):
    torch.manual_seed(0)
    mask = keep_mask((400, 501), p, torch.device("cpu"), torch.float32)  # an odd count: words cut
    dropped = (mask == 0).float().mean().item()
    assert abs(dropped - p) < 0.005
    assert mask.unique().tolist() == pytest.approx([0.0, 1 / (1 - p)])
    assert abs(mask.mean().item() - 1.0) < 0.01  # expectation preserved
    # no pattern between neighbours (four masks come from one 64-bit word)
    a, b = mask[:, :-1].flatten() == 0, mask[:, 1:].flatten() == 0
    assert abs((a & b).float().mean().item() - p * p) < 0.005


def test_masks_repeat_under_a_seed_and_vary_without_one():
    torch.manual_seed(3)
    first = keep_mask((64, 64), 0.2, torch.device("cpu"), torch.float32)
    second = keep_mask((64, 64), 0.2, torch.device("cpu"), torch.float32)
    torch.manual_seed(3)
    torch.testing.assert_close(keep_mask((64, 64), 0.2, torch.device("cpu"), torch.float32), first)
    assert not torch.equal(first, second)


def test_module_is_identity_in_eval_and_passes_gradients_through_kept_cells():
    layer = FastDropout(0.3)
    x = torch.randn(50, 40, requires_grad=True)
    layer.eval()
    assert layer(x) is x
    layer.train()
    y = layer(x)
    y.sum().backward()
    kept = y.detach() != 0
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.7))
    assert (x.grad[~kept] == 0).all()
    assert FastDropout(0.0).train()(x) is x
