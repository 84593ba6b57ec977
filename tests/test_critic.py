"""The hand-written critic gradients equal autograd's, for both losses, with dropout, with and
without the gradient penalty, and for deeper critics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from synthpipe.generators.critic import (
    NEGATIVE_SLOPE,
    Discriminator,
    critic_update_gradients,
    draw_masks,
    forward,
    input_gradient,
    padded_row_dim,
)


def reference_scores(critic: Discriminator, packs: torch.Tensor, masks: list[torch.Tensor] | None) -> torch.Tensor:
    """The critic by autograd, with the given dropout masks."""
    h = packs
    for i, layer in enumerate(critic.linears[:-1]):
        h = F.leaky_relu(layer(h), NEGATIVE_SLOPE)
        if masks is not None:
            h = h * masks[i]
    return critic.linears[-1](h).squeeze(1)


def reference_update(critic, real, fake, mixed, loss, weight, masks):
    p, q = len(real), len(mixed)
    mixed = mixed.clone().requires_grad_(True)
    scores = reference_scores(critic, torch.cat([real, fake, mixed]), masks)
    s_real, s_fake, s_mixed = scores[:p], scores[p : 2 * p], scores[2 * p :]
    if loss == "wgan-gp":
        value = s_fake.mean() - s_real.mean()
    else:
        value = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
    penalty = torch.zeros((), dtype=real.dtype)
    if q:
        (grad,) = torch.autograd.grad(s_mixed.sum(), mixed, create_graph=True)
        penalty = weight * ((grad.norm(dim=1) - 1) ** 2).mean()
    critic.zero_grad(set_to_none=True)
    (value + penalty).backward()
    return value.detach(), penalty.detach(), {n: p.grad.clone() for n, p in critic.named_parameters()}


@pytest.mark.parametrize("loss", ["wgan-gp", "non-saturating"])
@pytest.mark.parametrize("hidden", [[16, 12], [9], [8, 7, 6]])
@pytest.mark.parametrize("with_penalty", [True, False])
@pytest.mark.parametrize("dropout", [True, False])
def test_update_gradients_match_autograd(loss, hidden, with_penalty, dropout) -> None:
    torch.manual_seed(0)
    critic = Discriminator(row_dim=5, hidden=hidden, pac=3).double()
    width = critic.pack_dim
    p, q = 6, 6 if with_penalty else 0
    real, fake, mixed = (torch.randn(k, width, dtype=torch.float64) for k in (p, p, q))
    masks = [m.double() for m in draw_masks(critic, 2 * p + q, torch.device("cpu"))] if dropout else None

    want_value, want_penalty, want = reference_update(critic, real, fake, mixed, loss, 10.0, masks)
    critic.zero_grad(set_to_none=True)
    packs = torch.cat([real, fake, mixed])
    value, penalty = critic_update_gradients(critic, packs, p, loss, 10.0, masks)

    assert torch.allclose(value, want_value, atol=1e-10)
    assert torch.allclose(penalty, want_penalty, atol=1e-10)
    assert (penalty > 0) == with_penalty
    for name, param in critic.named_parameters():
        assert torch.allclose(param.grad, want[name], atol=1e-9, rtol=1e-7), name


def test_input_gradient_matches_autograd() -> None:
    torch.manual_seed(1)
    critic = Discriminator(row_dim=4, hidden=[10, 10], pac=2).double()
    packs = torch.randn(7, critic.pack_dim, dtype=torch.float64, requires_grad=True)
    masks = [m.double() for m in draw_masks(critic, 7, torch.device("cpu"))]
    coef = torch.randn(7, dtype=torch.float64)
    fwd = forward(critic, packs.detach(), masks)
    scores = reference_scores(critic, packs, masks)
    assert torch.allclose(fwd.scores, scores.detach())
    (want,) = torch.autograd.grad((coef * scores).sum(), packs)
    assert torch.allclose(input_gradient(critic, fwd, coef), want, atol=1e-12)


def test_forward_without_masks_is_the_modules_eval_forward() -> None:
    torch.manual_seed(2)
    critic = Discriminator(row_dim=6, hidden=[12, 8], pac=5).eval()
    rows = torch.randn(20, 6)
    assert torch.allclose(forward(critic, critic.packs(rows), None).scores, critic(rows).squeeze(1), atol=1e-6)


def test_packs_are_a_multiple_of_8_wide() -> None:
    for row_dim in range(1, 40):
        for pac in (1, 2, 3, 5, 10):
            width = padded_row_dim(row_dim, pac)
            assert width >= row_dim and (width * pac) % 8 == 0
            assert width - row_dim < 8
