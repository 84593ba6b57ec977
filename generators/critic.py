"""The PacGAN critic, with its WGAN-GP gradients written out by hand.

Why by hand: the critic is a small MLP (Linear -> LeakyReLU -> Dropout, twice, then Linear) over
packs of `pac` rows, so its cost is dominated not by arithmetic but by how autograd runs it. The
gradient penalty needs a double backward, and autograd's double backward through LeakyReLU also
back-propagates a gradient that is zero almost everywhere (the derivative of a piecewise-linear
activation's slope) through the first layer: one wasted [hidden x pack-width] product and an add
per step, plus graph bookkeeping for every op. Written out, a critic update is one forward over
[real; fake; interpolated] packs and one backward pass in which the real and fake rows carry the
loss gradient and the interpolated rows carry the penalty's, so each weight gradient is a single
matrix product. The generator update needs only the critic's input gradient (no weight
gradients), which is the same backward chain.

Notation for layer l = 1..L: a_l = h_{l-1} W_l^T + b_l, h_l = a_l * c_l where c_l is the
LeakyReLU slope at a_l (1 or 0.2) times the dropout mask (0 or 1/(1-p)); the score is
s = h_L w^T + b. Since c_l is piecewise constant in the parameters, d(ds/dx)/d(theta) ignores it,
exactly as autograd does. tests/test_critic.py checks every gradient against autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NEGATIVE_SLOPE = 0.2
DROPOUT = 0.5


class Discriminator(nn.Module):
    """PacGAN critic: `pac` consecutive rows are judged together, which penalises mode collapse.
    Rows arrive already padded (`row_dim`); choose it so that `row_dim * pac` is a multiple of 8,
    which makes the CPU's matrix kernels about 10% faster. `forward` is the plain autograd
    version (the reference in tests); training goes through `critic_update_gradients` and
    `input_gradient`."""

    def __init__(self, row_dim: int, hidden: list[int], pac: int):
        super().__init__()
        self.pac, self.row_dim, self.pack_dim = pac, row_dim, row_dim * pac
        layers: list[nn.Module] = []
        dim = self.pack_dim
        for width in hidden:
            layers += [nn.Linear(dim, width), nn.LeakyReLU(NEGATIVE_SLOPE), nn.Dropout(DROPOUT)]
            dim = width
        layers.append(nn.Linear(dim, 1))
        self.seq = nn.Sequential(*layers)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.seq if isinstance(m, nn.Linear)]

    def packs(self, rows: torch.Tensor) -> torch.Tensor:
        """[n, row_dim] rows -> [n / pac, pac * row_dim] packs (a view)."""
        return rows.reshape(-1, self.pack_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(self.packs(x))


def padded_row_dim(row_dim: int, pac: int) -> int:
    """The smallest width >= row_dim whose packs are a multiple of 8 wide."""
    while (row_dim * pac) % 8:
        row_dim += 1
    return row_dim


@dataclass
class CriticPass:
    """What one forward keeps for the backward: layer inputs h_0..h_L and slopes c_1..c_L."""

    scores: torch.Tensor  # [P]
    inputs: list[torch.Tensor]  # h_0 (the packs), h_1, ..., h_L
    slopes: list[torch.Tensor]  # c_1, ..., c_L


def draw_masks(critic: Discriminator, packs: int, device: torch.device) -> list[torch.Tensor]:
    """Inverted-dropout masks for every hidden layer, from uniform draws (torch's Bernoulli
    sampler is several times slower on the CPU)."""
    keep = 1.0 / (1.0 - DROPOUT)
    return [
        (torch.rand(packs, layer.out_features, device=device) >= DROPOUT).float().mul_(keep)
        for layer in critic.linears[:-1]
    ]


@torch.no_grad()
def forward(critic: Discriminator, packs: torch.Tensor, masks: list[torch.Tensor] | None) -> CriticPass:
    """Scores of [P, pack width] packs, keeping what the hand-written backward needs.
    `masks=None` means no dropout (evaluation). The backward overwrites the kept tensors."""
    linears = critic.linears
    h, inputs, slopes = packs, [packs], []
    for i, layer in enumerate(linears[:-1]):
        a = torch.addmm(layer.bias, h, layer.weight.t())
        c = torch.where(a > 0, a.new_ones(()), a.new_full((), NEGATIVE_SLOPE))
        if masks is not None:
            c.mul_(masks[i])
        h = a.mul_(c)
        inputs.append(h)
        slopes.append(c)
    out = linears[-1]
    scores = torch.addmm(out.bias, h, out.weight.t()).squeeze(1)
    return CriticPass(scores, inputs, slopes)


def _chain(critic: Discriminator, fwd: CriticPass, coef: torch.Tensor) -> list[torch.Tensor]:
    """[delta_1, ..., delta_L] with delta_l = d(sum_p coef_p s_p)/d a_l, row by row."""
    linears = critic.linears
    delta = coef[:, None] * linears[-1].weight * fwd.slopes[-1]
    deltas = [delta]
    for i in range(len(linears) - 2, 0, -1):
        delta = (delta @ linears[i].weight).mul_(fwd.slopes[i - 1])
        deltas.append(delta)
    return deltas[::-1]


@torch.no_grad()
def input_gradient(critic: Discriminator, fwd: CriticPass, coef: torch.Tensor) -> torch.Tensor:
    """d(sum_p coef_p s_p)/d packs: what the generator update back-propagates into its rows."""
    return _chain(critic, fwd, coef)[0] @ critic.linears[0].weight


@torch.no_grad()
def critic_update_gradients(
    critic: Discriminator,
    packs: torch.Tensor,
    p: int,
    loss: str,
    penalty_weight: float,
    masks: list[torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set `.grad` of every critic parameter to d(loss + penalty)/d(theta); return both values.

    `packs` holds p real packs, then p fake packs, then the interpolated packs of the penalty
    (none: no penalty); its interpolated rows are overwritten. `masks` are dropout masks for
    all of its rows. The loss is WGAN's mean(s_fake) - mean(s_real) or the non-saturating
    mean(softplus(-s_real)) + mean(softplus(s_fake)); the penalty is
    penalty_weight * mean_q (|d s / d mixed_q| - 1)^2 (Gulrajani et al., 2017).
    """
    linears = critic.linears
    q = len(packs) - 2 * p
    fwd = forward(critic, packs, masks)
    s_real, s_fake = fwd.scores[:p], fwd.scores[p : 2 * p]
    if loss == "wgan-gp":
        value = s_fake.mean() - s_real.mean()
        g_real = torch.full_like(s_real, -1.0 / p)
        g_fake = torch.full_like(s_fake, 1.0 / p)
    else:  # non-saturating: d softplus(x)/dx = sigmoid(x)
        value = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
        g_real = -torch.sigmoid(-s_real) / p
        g_fake = torch.sigmoid(s_fake) / p
    # loss rows carry dL/ds; penalty rows carry 1, so their deltas are u_l = d s / d a_l
    coef = torch.cat([g_real, g_fake, packs.new_ones(q)])
    deltas = _chain(critic, fwd, coef)

    penalty = packs.new_zeros(())
    inputs = fwd.inputs
    if q:
        gx = deltas[0][2 * p :] @ linears[0].weight  # d s / d mixed = u_1 W_1
        norm = gx.norm(dim=1)
        penalty = penalty_weight * ((norm - 1) ** 2).mean()
        # v_0 = d penalty / d gx; v_l = (v_{l-1} W_l^T) * c_l for the penalty rows. Those rows'
        # layer inputs are no longer needed, so they are overwritten with v: then
        # dW_l = delta_l^T h_{l-1} over all rows sums the loss term (delta_l^T h_{l-1} on real
        # and fake rows) and the penalty term (u_l^T v_{l-1}) in one product
        v = gx.mul_(((2 * penalty_weight / q) * (norm - 1) / norm.clamp_min(1e-12))[:, None])
        inputs[0][2 * p :] = v
        for i in range(1, len(linears)):
            v = (v @ linears[i - 1].weight.t()).mul_(fwd.slopes[i - 1][2 * p :])
            inputs[i][2 * p :] = v

    for i, layer in enumerate(linears[:-1]):
        layer.weight.grad = deltas[i].t() @ inputs[i]
        layer.bias.grad = deltas[i][: 2 * p].sum(0)
    out = linears[-1]
    out.weight.grad = (coef @ inputs[-1])[None, :]
    out.bias.grad = coef[: 2 * p].sum().reshape(1)
    return value, penalty
