"""Exact categorical draws: the frequencies of draw_blocks match softmax(logits) (chi-squared),
for every width path (one class, two classes, narrow and wide blocks), and the GAN's gathered
first layer equals the one-hot matrix product it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from synthpipe.generators.categorical import SOFTMAX_MIN_WIDTH, draw_blocks
from synthpipe.generators.gan import Generator, run_folded, run_folded_conditional


@pytest.mark.parametrize("width", [2, 3, 7, SOFTMAX_MIN_WIDTH, 130])
def test_draw_frequencies_match_the_softmax_probabilities(width: int) -> None:
    g = torch.Generator().manual_seed(width)
    blocks, n = 3, 60_000
    logits = torch.randn(blocks, width, generator=g) * 2.5
    logits[1, 0] = -40.0  # a category with (almost) no mass must (almost) never be drawn
    u = torch.rand(n, blocks, generator=g)
    codes = draw_blocks(logits.expand(n, blocks, width), u)
    assert codes.dtype == torch.long and codes.shape == (n, blocks)
    assert int(codes.min()) >= 0 and int(codes.max()) < width
    probs = torch.softmax(logits.double(), dim=1).numpy()
    for b in range(blocks):
        observed = np.bincount(codes[:, b].numpy(), minlength=width)
        expected = probs[b] * n
        keep = expected > 5  # chi-squared needs expected counts of at least ~5; pool the rest
        f_obs = np.append(observed[keep], observed[~keep].sum())
        f_exp = np.append(expected[keep], expected[~keep].sum())
        if f_exp[-1] == 0 or not (~keep).any():
            f_obs, f_exp = f_obs[:-1], f_exp[:-1]
        f_exp *= f_obs.sum() / f_exp.sum()
        assert chisquare(f_obs, f_exp).pvalue > 1e-3, (width, b)
    assert int((codes[:, 1] == 0).sum()) == 0


def test_one_class_blocks_and_extreme_logits() -> None:
    u = torch.rand(10, 2)
    assert torch.equal(draw_blocks(torch.randn(10, 2, 1), u), torch.zeros(10, 2, dtype=torch.long))
    huge = torch.tensor([[[500.0, -500.0, 0.0]]]).expand(1000, 1, 3)  # softmax stays finite
    assert (draw_blocks(huge, torch.rand(1000, 1)) == 0).all()
    binary = torch.tensor([[[-300.0, 300.0]]]).expand(1000, 1, 2)
    assert (draw_blocks(binary, torch.rand(1000, 1)) == 1).all()


def test_gathered_first_layer_equals_the_one_hot_product() -> None:
    torch.manual_seed(0)
    emb, cond = 16, 40
    net = Generator(emb + cond, [32, 32], 24, "add")
    net.train()
    for _ in range(3):
        net(torch.randn(64, emb + cond))
    net.eval()
    layers = net.folded()
    noise, g = torch.randn(200, emb), torch.randint(cond, (200,))
    one_hot = torch.nn.functional.one_hot(g, cond).float()
    cond_rows = layers[0][0][emb:] + layers[0][1]
    with torch.no_grad():
        expected = run_folded(layers, torch.cat([noise, one_hot], 1))
        torch.testing.assert_close(run_folded_conditional(layers, noise, cond_rows, g), expected, rtol=1e-5, atol=1e-5)
