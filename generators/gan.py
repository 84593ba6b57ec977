"""CTGAN-class conditional GAN for tables (Xu et al., 2019), readable top to bottom.

Rows are encoded by the mode-specific codec (generators/mode_codec.py: Gaussian-mixture
normalisation of continuous columns, categories as codes), shared with the VAE. The generator sees noise plus a conditional vector (one category of one
categorical/boolean column) and emits tanh values and Gumbel-softmax blocks; a PacGAN critic
judges packs of `pac` rows with their conditional vectors. Training-by-sampling draws the
conditioned column uniformly and its category by log-frequency, then real rows of that category.

Why it is fast on the CPU: everything a step needs is a handful of tensor operations over index
tensors built once (`Layout`): the sampler draws conditions and matching rows with a sorted row
index and per-category offsets; blocks of equal width sit side by side, so that each group's
Gumbel-softmax is one softmax over a view; the conditional cross-entropy is one padded gather;
the critic's gradients (loss and gradient penalty) are written out by hand in
generators/critic.py, one forward and one backward pass; one generator forward serves both the
critic and the generator update (SDV's CTGAN runs the generator twice and back-propagates
through it three times per step); widths are padded to multiples of 8 for the matrix kernels;
and no value leaves the device before the end of the epoch. The generator samples in eval mode
(BatchNorm running statistics, folded into its linear layers), so a row does not depend on the
others in its batch.

Conditional sampling is exact: the requested category goes into the conditional vector and is
also written into the decoded codes, so every row satisfies the condition without rejection.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from synthpipe.generators import critic as critic_math
from synthpipe.generators.base import BaseGenerator, Check, TrainConfig
from synthpipe.generators.categorical import draw_blocks
from synthpipe.generators.critic import Discriminator, padded_row_dim
from synthpipe.generators.mode_codec import EncodedTable, ModeSpecificCodec
from synthpipe.generators.seeding import SeedStream, derive_seed
from synthpipe.generators.transforms import ContinuousEncoder

LOSSES = ("wgan-gp", "non-saturating")
RESIDUALS = ("concat", "add")
GENERATE_CHUNK = 4096  # rows per generator pass when sampling: activations stay in cache
DENSE_CACHE_BYTES = 256 * 2**20  # training rows are kept one-hot (dense) on the device below this size
VALIDATION_ROWS = 10_000  # held-out rows compared with a generated sample at each validation


class ModeCollapseWarning(UserWarning):
    """A generated sample covers far fewer categories or mixture modes than the real table."""


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------


class Residual(nn.Module):
    """Linear -> BatchNorm -> ReLU, then either concatenated with the block's input (CTGAN's
    "concat": each layer sees all earlier ones) or added to it ("add": a plain residual MLP,
    ~40% fewer multiply-adds at the same widths)."""

    def __init__(self, in_dim: int, out_dim: int, mode: str):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.mode = mode if in_dim == out_dim or mode == "concat" else "plain"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.fc(x)))
        if self.mode == "concat":
            return torch.cat([h, x], dim=1)
        return h + x if self.mode == "add" else h


class Generator(nn.Module):
    """CTGAN's residual generator. `out_dim` may exceed the dense width (padding to a multiple
    of 8 makes the CPU's matrix kernels faster); callers drop the extra outputs."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, residual: str = "concat"):
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for width in hidden:
            layers.append(Residual(dim, width, residual))
            dim = dim + width if residual == "concat" else width
        layers.append(nn.Linear(dim, out_dim))
        self.seq = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)

    @torch.no_grad()
    def folded(self) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
        """(weight^T, bias, residual mode) per layer with eval-mode BatchNorm folded into the
        linear layer before it: BN(x W^T + b) = x (W^T s) + (b - mean) s + beta with
        s = gamma / sqrt(var + eps). Sampling then costs one matrix product, one ReLU and one
        add per layer (BatchNorm was a fifth of the sampling time on the CPU)."""
        out = []
        for layer in self.seq[:-1]:
            bn = layer.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = (layer.fc.weight * scale[:, None]).t().contiguous()
            out.append((weight, (layer.fc.bias - bn.running_mean) * scale + bn.bias, layer.mode))
        last = self.seq[-1]
        out.append((last.weight.t().contiguous(), last.bias.clone(), "last"))
        return out


def run_folded(layers: list[tuple[torch.Tensor, torch.Tensor, str]], x: torch.Tensor) -> torch.Tensor:
    """The generator in eval mode from `Generator.folded()` weights, activations in place."""
    return _run_layers(layers, x)


def run_folded_conditional(
    layers: list[tuple[torch.Tensor, torch.Tensor, str]],
    noise: torch.Tensor,
    cond_rows: torch.Tensor | None,
    g: torch.Tensor | None,
) -> torch.Tensor:
    """run_folded on [noise | one-hot(g)] without the one-hot: when the first layer does not
    pass its input on (it is "plain"), one-hot(g) @ W_cond + b is row g of `cond_rows`
    (W_cond + b), a gather instead of a matrix product over the conditional vector's width
    (most of the first layer's work on tables with wide categoricals)."""
    weight, bias, mode = layers[0]
    if mode != "plain" or len(layers) == 1:
        raise ValueError("run_folded_conditional needs a plain first hidden layer")
    first = bias.expand(len(noise), -1) if g is None else cond_rows.index_select(0, g)
    h = torch.addmm(first, noise, weight[: noise.shape[1]]).relu_()
    return _run_layers(layers[1:], h)


def _run_layers(layers: list[tuple[torch.Tensor, torch.Tensor, str]], x: torch.Tensor) -> torch.Tensor:
    for weight, bias, mode in layers[:-1]:
        h = torch.addmm(bias, x, weight).relu_()
        x = torch.cat([h, x], dim=1) if mode == "concat" else (h.add_(x) if mode == "add" else h)
    weight, bias, _ = layers[-1]
    return torch.addmm(bias, x, weight)


# ----------------------------------------------------------------------------------------------
# Index tensors for the dense layout, built once
# ----------------------------------------------------------------------------------------------


class Layout:
    """Where every value, block and conditional category lives, as tensors on the device.

    The GAN's own dense layout (a permutation of the encoder's): continuous values first, then
    the one-hot blocks (modes, null flags, categories) grouped by width. Blocks of equal width
    are contiguous, so the Gumbel-softmax of a whole group is one softmax over a [n, k, width]
    view, with no gather or scatter. The conditional vector concatenates the category blocks
    of categorical/boolean columns; global category id g = offset of column j + category k.
    """

    def __init__(self, encoder: ModeSpecificCodec, device: torch.device):
        spans = encoder.spans_
        values = sorted((s for s in spans if not s.is_discrete), key=lambda s: s.index)
        codes = sorted((s for s in spans if s.is_discrete), key=lambda s: s.index)
        self.dense_dim, self.n_values, self.n_codes = encoder.dense_dim_, len(values), len(codes)

        def t(x: Any, dtype: torch.dtype = torch.long) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)

        # positions in the GAN layout; `order` maps each position to the encoder's dense column
        start: dict[int, int] = {}
        order = [s.start for s in values]
        self.width_groups: list[tuple[int, torch.Tensor, int, int]] = []  # (width, code index, start, blocks)
        for width in sorted({s.width for s in codes}):
            group = [s for s in codes if s.width == width]
            self.width_groups.append((width, t([s.index for s in group]), len(order), len(group)))
            for s in group:
                start[s.index] = len(order)
                order.extend(range(s.start, s.start + width))
        self.order = t(order)
        self.code_start = t([start[s.index] for s in codes])

        # the conditional vector: one block per categorical/boolean column
        cond = [s for s in codes if s.role == "category"]
        self.cond_names = [s.column for s in cond]
        self.cond_code_index = t([s.index for s in cond])
        self.cond_width = [s.width for s in cond]
        offsets = np.concatenate([[0], np.cumsum(self.cond_width)]).astype(np.int64)
        self.cond_offset = t(offsets[:-1])
        self.cond_dim = int(offsets[-1])
        self.cond_width_padded = _ceil8(self.cond_dim)  # zero columns up to a multiple of 8
        self.out_dim = _ceil8(self.dense_dim)  # the generator's (padded) output width
        self.cond_col_of = t(np.repeat(np.arange(len(cond)), self.cond_width))
        self.cond_cat_of = t(np.concatenate([np.arange(w) for w in self.cond_width]) if cond else [])
        widest = max(self.cond_width, default=1)
        gather = np.zeros((len(cond), widest), dtype=np.int64)
        valid = np.zeros((len(cond), widest), dtype=bool)
        for j, s in enumerate(cond):
            gather[j, : s.width] = np.arange(start[s.index], start[s.index] + s.width)
            valid[j, : s.width] = True
        self.cond_gather, self.cond_valid = t(gather), t(valid, torch.bool)

        # validation and coverage: category/null blocks compared by total variation,
        # continuous values rebuilt from (value, mode) and compared by Wasserstein-1
        self.tv_codes, self.tv_offset, self.tv_block = self._blocks(
            [s for s in codes if s.role in ("category", "null")], t
        )
        self.category_codes, self.category_offset, self.category_block = self._blocks(cond, t)
        modes = [s for s in codes if s.role == "mode"]
        self.mode_codes, self.mode_offset, self.mode_block = self._blocks(modes, t)
        mode_of = {s.column: s.index for s in modes}
        widest_mix = max((s.width for s in modes), default=1)
        means = np.zeros((len(values), widest_mix))
        stds = np.ones((len(values), widest_mix))
        scale = np.ones(len(values))
        for i, s in enumerate(values):
            enc = encoder.encoders_[s.column]
            assert isinstance(enc, ContinuousEncoder)
            means[i, : enc.n_modes], stds[i, : enc.n_modes] = enc.means, enc.stds
            mix_mean = float(np.sum(enc.weights * enc.means))
            var = float(np.sum(enc.weights * (enc.stds**2 + enc.means**2))) - mix_mean**2
            scale[i] = max(math.sqrt(max(var, 0.0)), 1e-6 * abs(mix_mean), 1e-12)
        self.value_mode_code = t([mode_of[s.column] for s in values])
        self.mix_means, self.mix_stds = t(means, torch.float64), t(stds, torch.float64)
        self.value_scale = t(scale, torch.float64)

    @staticmethod
    def _blocks(blocks: list[Any], t: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Code indices, offsets into a flat histogram, and the block of each histogram bin."""
        widths = [s.width for s in blocks]
        offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        return t([s.index for s in blocks]), t(offsets[:-1]), t(np.repeat(np.arange(len(blocks)), widths))

    def dense(self, values: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """(values, codes) -> one-hot dense rows in the GAN layout, in two tensor ops."""
        out = torch.zeros(len(codes), self.dense_dim, device=codes.device)
        out[:, : self.n_values] = values
        return out.scatter_(1, codes + self.code_start, 1.0)

    def activate(self, logits: torch.Tensor, tau: float) -> torch.Tensor:
        """tanh on values, Gumbel-softmax on every block: one softmax per group of equal-width
        blocks, over a [n, blocks, width] view."""
        n, nv = len(logits), self.n_values
        parts = [torch.tanh(logits[:, :nv])]
        if self.width_groups:
            z = (logits[:, nv : self.dense_dim] + gumbel_like(logits[:, nv : self.dense_dim])) / tau
            for width, _, start, count in self.width_groups:
                group = z[:, start - nv : start - nv + width * count].view(n, count, width)
                parts.append(torch.softmax(group, dim=2).view(n, width * count))
        return torch.cat(parts, 1)

    def cond_vector(self, g: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        """One-hot over all categories of all conditional columns (zero-padded to a multiple of 8)."""
        out = torch.zeros(n, self.cond_width_padded, device=device)
        return out if g is None else out.scatter_(1, g[:, None], 1.0)

    def cond_cross_entropy(self, logits: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the generator's (pre-Gumbel) block for the conditioned column."""
        j = self.cond_col_of[g]
        block = logits.gather(1, self.cond_gather[j]).masked_fill(~self.cond_valid[j], -math.inf)
        return F.cross_entropy(block, self.cond_cat_of[g])

    def decode(self, logits: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits -> (tanh values, codes drawn exactly from each block's softmax), a group of
        equal-width blocks at once, one uniform per block (generators/categorical.py)."""
        n = len(logits)
        values = torch.tanh(logits[:, : self.n_values])
        u = torch.rand(n, self.n_codes, generator=generator, device=logits.device)
        codes = torch.empty(n, self.n_codes, dtype=torch.long, device=logits.device)
        for width, index, start, count in self.width_groups:
            block = logits[:, start : start + width * count].view(n, count, width)
            codes[:, index] = draw_blocks(block, u[:, index])
        return values, codes

    def reconstruct(self, values: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Continuous values back in their own units, divided by each column's spread."""
        mode = codes[:, self.value_mode_code]
        rows = torch.arange(self.n_values, device=values.device)
        mean, std = self.mix_means[rows, mode], self.mix_stds[rows, mode]
        return (values.double() * 4 * std + mean) / self.value_scale

    @staticmethod
    def histogram(codes: torch.Tensor, index: torch.Tensor, offset: torch.Tensor, size: int) -> torch.Tensor:
        flat = (codes[:, index] + offset).reshape(-1)
        return torch.bincount(flat, minlength=size).double() / max(len(codes), 1)


def _ceil8(n: int) -> int:
    return -(-n // 8) * 8


def gumbel_like(x: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise, -log(-log(u)), with u kept off 0 and 1 so that it is always finite
    (uniform draws are several times faster than exponential ones on the CPU)."""
    u = torch.rand_like(x)
    return u.clamp_(1e-20, 1.0 - 1e-7).log_().neg_().log_().neg_()


# ----------------------------------------------------------------------------------------------
# Training-by-sampling, vectorised
# ----------------------------------------------------------------------------------------------


class ConditionalSampler:
    """Draws conditions (column uniform, category by log-frequency) and real rows matching them.

    Rows are sorted by category once per conditional column; a category's rows are a contiguous
    slice [start, start + count) of that index, so a batch is drawn with a few gathers.
    """

    def __init__(self, codes: torch.Tensor, layout: Layout, log_frequency: bool):
        self.n_rows = len(codes)
        self.n_cols = len(layout.cond_width)
        self.device = codes.device
        if not self.n_cols:
            return
        cond_codes = codes[:, layout.cond_code_index]  # [n, J]
        counts = [torch.bincount(cond_codes[:, j], minlength=w) for j, w in enumerate(layout.cond_width)]
        self.counts = torch.cat(counts)  # [cond_dim]
        order = torch.argsort(cond_codes.T, dim=1, stable=True)  # [J, n]: rows sorted by category
        index_dtype = torch.int32 if self.n_rows < 2**31 else torch.long
        self.sorted_rows = order.reshape(-1).to(index_dtype)
        within = torch.cat([torch.cumsum(c, 0) - c for c in counts])
        self.start = within + layout.cond_col_of * self.n_rows
        weight = torch.log1p(self.counts.double()) if log_frequency else self.counts.double()
        self.train_cdf = _column_uniform_cdf(weight, layout)

    def draw(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(global category ids or None, matching row indices), from the global RNG."""
        if not self.n_cols:
            return None, torch.randint(self.n_rows, (n,), device=self.device)
        u = torch.rand(2, n, device=self.device, dtype=torch.float64)
        g = torch.searchsorted(self.train_cdf, u[0], right=True).clamp_max_(len(self.train_cdf) - 1)
        count = self.counts[g]
        offset = torch.minimum((u[1] * count).long(), count - 1)
        return g, self.sorted_rows[self.start[g] + offset].long()


def _column_uniform_cdf(weight: torch.Tensor, layout: Layout) -> torch.Tensor:
    """CDF over global category ids: column uniform, category proportional to `weight` within it."""
    col_total = torch.zeros(len(layout.cond_width), dtype=torch.float64, device=weight.device)
    col_total = col_total.index_add(0, layout.cond_col_of, weight)
    prob = weight / col_total.clamp_min(1e-300)[layout.cond_col_of]
    cdf = torch.cumsum(prob, 0)
    return cdf / cdf[-1]


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass
class CTGANConfig(TrainConfig):
    embedding_dim: int = 128  # noise dimensions fed to the generator
    generator_dims: tuple[int, ...] = (256, 256)  # residual layers
    generator_residual: str = "add"  # "add" (plain residual MLP: ~30% faster, same quality here) | "concat" (CTGAN)
    discriminator_dims: tuple[int, ...] = (256, 256)
    # CTGAN's rates. Tried against them at a 60 s budget: generator 1e-3, critic 2e-3 and pac 5 took
    # the acs12 demo's covariate AUC from 0.987 to 0.870 (90 s) but cps1988's from 0.823 to 0.933,
    # and left diamonds at 0.994; with no setting better everywhere the defaults stay CTGAN's
    learning_rate: float = 2e-4  # generator (and critic unless discriminator_learning_rate is set)
    discriminator_learning_rate: float | None = None
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.5, 0.9)
    pac: int = 10  # rows per critic pack; batch_size must be a multiple
    discriminator_steps: int = 1  # critic updates per generator update
    loss: str = "wgan-gp"  # "wgan-gp" | "non-saturating"
    gradient_penalty: float = 10.0  # weight of the gradient penalty (both losses); 0 disables
    tau: float = 0.2  # Gumbel-softmax temperature
    log_frequency: bool = True  # training-by-sampling draws categories by log-frequency
    monitor_rows: int = 2_000  # at least this many generated rows for the coverage check
    coverage_alarm: float = 0.5  # warn when generated coverage < this share of the real coverage
    epochs: int = 300
    batch_size: int = 500
    # no early stopping by default: a GAN's validation distance rises and falls for hundreds of
    # epochs, and stopping on it ended runs at 30-55% of a 30 s budget with worse quality
    # (docs/BENCHMARKS.md); the best validated weights are still the ones kept
    patience: int = 0


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------


class CTGAN(BaseGenerator):
    name = "gan"
    Config = CTGANConfig
    supports_conditions = "discrete"
    loss_names = ("loss_d", "gradient_penalty", "loss_g", "cond_ce")

    # ---- building ----------------------------------------------------------------------------

    def _param_checks(self) -> list[Check]:
        return [
            *super()._param_checks(),
            ("loss", lambda c: c.loss in LOSSES, f"must be one of {list(LOSSES)}"),
            ("generator_residual", lambda c: c.generator_residual in RESIDUALS, f"must be one of {list(RESIDUALS)}"),
            ("pac", lambda c: isinstance(c.pac, int) and c.pac >= 1, "must be an integer >= 1"),
            ("batch_size", lambda c: c.batch_size % c.pac == 0, "must be a multiple of pac"),
            ("discriminator_steps", lambda c: c.discriminator_steps >= 1, "must be >= 1"),
            ("tau", lambda c: c.tau > 0, "must be > 0"),
            ("gradient_penalty", lambda c: c.gradient_penalty >= 0, "must be >= 0"),
            ("embedding_dim", lambda c: c.embedding_dim >= 1, "must be >= 1"),
            ("generator_dims", lambda c: all(int(d) >= 1 for d in c.generator_dims), "must be positive widths"),
            (
                "discriminator_dims",
                lambda c: all(int(d) >= 1 for d in c.discriminator_dims),
                "must be positive widths",
            ),
            (
                "discriminator_learning_rate",
                lambda c: c.discriminator_learning_rate is None or c.discriminator_learning_rate > 0,
                "must be > 0 (or unset to use learning_rate)",
            ),
            ("betas", lambda c: len(c.betas) == 2 and all(0 <= b < 1 for b in c.betas), "must be two numbers in [0, 1)"),
            ("monitor_rows", lambda c: c.monitor_rows >= 1, "must be >= 1"),
            ("coverage_alarm", lambda c: 0 <= c.coverage_alarm <= 1, "must be in [0, 1]"),
        ]

    def _build(self) -> None:
        cfg, device = self.config, self.device_
        self.layout_ = layout = Layout(self.codec_, device)
        self.generator_net_ = Generator(
            cfg.embedding_dim + layout.cond_width_padded,
            [int(d) for d in cfg.generator_dims],
            layout.out_dim,
            cfg.generator_residual,
        ).to(device)
        # critic rows: [dense row | conditional one-hot | zeros], packs a multiple of 8 wide
        self.discriminator_net_ = Discriminator(
            padded_row_dim(layout.dense_dim + layout.cond_dim, cfg.pac),
            [int(d) for d in cfg.discriminator_dims],
            cfg.pac,
        ).to(device)
        self.optimizer_g_ = _adam(self.generator_net_, cfg.learning_rate, cfg)
        self.optimizer_d_ = _adam(
            self.discriminator_net_, cfg.discriminator_learning_rate or cfg.learning_rate, cfg
        )
        training = getattr(self, "train_", None)
        if training is not None:  # fit(): learn from the training split
            values, codes = training
            self.sampler_ = ConditionalSampler(codes, layout, cfg.log_frequency)
            self.category_counts_ = self.sampler_.counts.tolist() if layout.cond_dim else []
            fits = len(codes) * layout.dense_dim * 4 <= DENSE_CACHE_BYTES
            self._dense_train = layout.dense(values, codes) if fits else None
            self.warnings_: list[str] = []
        counts = torch.tensor(self.category_counts_, dtype=torch.float64, device=device)
        self._empirical_cdf = _column_uniform_cdf(counts, layout) if layout.cond_dim else None
        # rarity of each category, for choosing which condition goes into the conditional vector
        self._rarity = counts / counts.sum().clamp_min(1) if layout.cond_dim else None

    def _modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator_net_, "discriminator": self.discriminator_net_}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer_g_, "discriminator": self.optimizer_d_}

    def _extra_state(self) -> dict[str, Any]:
        return {"category_counts": self.category_counts_, "warnings": list(getattr(self, "warnings_", []))}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.category_counts_ = [int(c) for c in state.get("category_counts", [])]
        self.warnings_ = list(state.get("warnings", []))

    def _amp(self) -> Any:
        """bf16 autocast on CUDA (base.autocast); fp16 without a loss scaler is unsafe for the
        gradient penalty, so older GPUs and the CPU run in float32."""
        if self.device_.type != "cuda":
            return contextlib.nullcontext()
        ctx = self.autocast()
        return ctx if getattr(ctx, "fast_dtype", None) == torch.bfloat16 else contextlib.nullcontext()

    def fit(self, data: pd.DataFrame, schema: Any = None, resume: bool = False) -> CTGAN:
        """BaseGenerator.fit, then drop what only training needs (dense rows, row index)."""
        try:
            super().fit(data, schema, resume)
        finally:
            self._dense_train = self.sampler_ = self._monitor_sample = None
        return self

    # ---- training ----------------------------------------------------------------------------

    def _batches_per_pass(self) -> int:
        return max(self.n_train_ // self.config.batch_size, 1)  # batches are drawn, not dealt

    def _train_step(self, step: int) -> torch.Tensor:
        self._epoch = step // max(self.steps_per_epoch_ or 1, 1)
        return self._step()

    def _real_batch(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Conditions, the conditional vectors and real dense rows that satisfy them."""
        g, rows = self.sampler_.draw(n)
        if self._dense_train is not None:
            real = self._dense_train[rows]
        else:
            values, codes = self.train_
            real = self.layout_.dense(values[rows], codes[rows])
        return g, self.layout_.cond_vector(g, n, self.device_), real

    def _logits(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Generator output without its padding columns, in float32."""
        with self._amp():
            out = self.generator_net_(torch.cat([noise, cond], 1))
        return out[:, : self.layout_.dense_dim].float()

    def _step(self) -> torch.Tensor:
        """One critic update (or several) and one generator update; returns detached losses."""
        cfg, layout, n = self.config, self.layout_, self.config.batch_size
        critic = self.discriminator_net_
        for _ in range(cfg.discriminator_steps - 1):  # extra critic updates on fresh batches
            g, cond, real = self._real_batch(n)
            with torch.no_grad():
                noise = torch.randn(n, cfg.embedding_dim, device=self.device_)
                fake = layout.activate(self._logits(noise, cond), cfg.tau)
            self._critic_update(self._critic_packs(real, fake, g))
        g, cond, real = self._real_batch(n)
        noise = torch.randn(n, cfg.embedding_dim, device=self.device_)
        logits = self._logits(noise, cond)
        fake = layout.activate(logits, cfg.tau)
        packs = self._critic_packs(real, fake.detach(), g)
        loss_d, penalty = self._critic_update(packs)

        # the generator update reuses this forward (the critic changed, the generator did not)
        # and the fake packs built above; it needs only the critic's gradient w.r.t. its input
        p = n // cfg.pac
        fake_packs = packs[p : 2 * p]
        fwd = critic_math.forward(critic, fake_packs, critic_math.draw_masks(critic, p, self.device_))
        if cfg.loss == "wgan-gp":
            loss_g = -fwd.scores.mean()
            coef = torch.full_like(fwd.scores, -1.0 / p)
        else:
            loss_g = F.softplus(-fwd.scores).mean()
            coef = -torch.sigmoid(-fwd.scores) / p
        grad_rows = critic_math.input_gradient(critic, fwd, coef).view(n, critic.row_dim)
        outputs, grads = [fake], [grad_rows[:, : layout.dense_dim]]
        cond_ce = torch.zeros((), device=self.device_)
        if g is not None:  # the generator must honour its conditional vector
            cond_ce = layout.cond_cross_entropy(logits, g)
            outputs.append(cond_ce)
            grads.append(torch.ones_like(cond_ce))
        self.optimizer_g_.zero_grad(set_to_none=True)
        torch.autograd.backward(outputs, grads, inputs=list(self.generator_net_.parameters()))
        self.optimizer_g_.step()
        return torch.stack([loss_d, penalty, loss_g, cond_ce.detach()])

    def _critic_packs(self, real: torch.Tensor, fake: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """[real packs; fake packs; interpolated packs] in one buffer, rows laid out as
        [dense row | conditional one-hot | zeros]; the interpolation weight is drawn per pack
        (the critic judges packs). No interpolated packs when the penalty is off."""
        cfg, layout, critic = self.config, self.layout_, self.discriminator_net_
        n, p = len(real), len(real) // cfg.pac
        q = p if cfg.gradient_penalty > 0 else 0
        packs = torch.zeros(2 * p + q, critic.pack_dim, device=self.device_)
        rows = packs[: 2 * p].view(2 * n, critic.row_dim)
        rows[:n, : layout.dense_dim] = real
        rows[n:, : layout.dense_dim] = fake
        if g is not None:
            hot = (g + layout.dense_dim)[:, None]
            rows[:n].scatter_(1, hot, 1.0)
            rows[n:].scatter_(1, hot, 1.0)
        if q:
            alpha = torch.rand(p, 1, device=self.device_)
            torch.lerp(packs[p : 2 * p], packs[:p], alpha, out=packs[2 * p :])
        return packs

    def _critic_update(self, packs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic loss on real and fake packs plus the gradient penalty on interpolated ones,
        with the hand-written gradients of generators/critic.py (equal to autograd's)."""
        cfg, critic = self.config, self.discriminator_net_
        p = self.config.batch_size // cfg.pac
        masks = critic_math.draw_masks(critic, len(packs), self.device_)
        loss, penalty = critic_math.critic_update_gradients(
            critic, packs, p, cfg.loss, cfg.gradient_penalty, masks
        )
        self.optimizer_d_.step()
        return loss, penalty

    # ---- validation and the mode-collapse monitor --------------------------------------------

    @torch.no_grad()
    def _validation_loss(self) -> float:
        """Mean per-column distance between held-out rows and a generated sample (lower is better):
        Wasserstein-1 on continuous columns (in units of the column's spread) and total variation
        on categories and null flags. The sample uses a fixed seed, so scores compare models only."""
        val_values, val_codes = self.val_
        m = min(len(val_codes), VALIDATION_ROWS)
        seed = derive_seed(self.config.seed, SeedStream.VALIDATION_NOISE)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        values, codes = self._generate(max(m, self.config.monitor_rows), gen, None)
        self._monitor_sample = (codes, val_codes[:m])
        layout, parts = self.layout_, []
        if layout.n_values:
            a = torch.sort(layout.reconstruct(values[:m], codes[:m]), dim=0).values
            b = torch.sort(layout.reconstruct(val_values[:m], val_codes[:m]), dim=0).values
            parts.append((a - b).abs().mean(dim=0))
        if len(layout.tv_codes):
            size = len(layout.tv_block)
            p = layout.histogram(codes[:m], layout.tv_codes, layout.tv_offset, size)
            q = layout.histogram(val_codes[:m], layout.tv_codes, layout.tv_offset, size)
            tv = torch.zeros(len(layout.tv_codes), dtype=torch.float64, device=self.device_)
            parts.append(0.5 * tv.index_add(0, layout.tv_block, (p - q).abs()))
        return float(torch.cat(parts).mean()) if parts else 0.0

    def _monitor(self) -> dict[str, float]:
        """Share of the categories and mixture modes present in the held-out rows that the
        generated sample also produces; warns when it falls below `coverage_alarm`."""
        generated, real = self._monitor_sample
        layout, out = self.layout_, {}
        checks = [
            (
                "coverage_categories",
                "categories",
                layout.category_codes,
                layout.category_offset,
                layout.category_block,
            ),
            ("coverage_modes", "mixture modes", layout.mode_codes, layout.mode_offset, layout.mode_block),
        ]
        for key, what, index, offset, block in checks:
            if not len(index):
                continue
            present_real = layout.histogram(real, index, offset, len(block)) > 0
            present_gen = layout.histogram(generated, index, offset, len(block)) > 0
            share = float((present_real & present_gen).sum()) / max(float(present_real.sum()), 1.0)
            out[key] = share
            if share < self.config.coverage_alarm:
                message = (
                    f"{self.name} generator: possible mode collapse at epoch {getattr(self, '_epoch', -1) + 1}: "
                    f"the generated sample covers {share:.0%} of the {what} present in the held-out rows "
                    f"(alarm below {self.config.coverage_alarm:.0%})"
                )
                self.warnings_.append(message)
                warnings.warn(message, ModeCollapseWarning, stacklevel=2)
        return out

    # ---- sampling ----------------------------------------------------------------------------

    def _generate(
        self, n: int, generator: torch.Generator, forced: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded rows (values, codes) on the device; `forced` [n, J] holds requested category
        codes per conditional column (-1: free). Requested codes are exact in the output.
        Generated in chunks so that the activations stay in the CPU's caches."""
        layout, device = self.layout_, self.device_
        g = None
        if layout.cond_dim:  # unconditional rows: column uniform, category by empirical frequency
            u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
            g = torch.searchsorted(self._empirical_cdf, u, right=True).clamp_max_(layout.cond_dim - 1)
            if forced is not None:  # condition the generator on the rarest requested category
                requested = forced.clamp_min(0) + layout.cond_offset
                rarity = torch.where(forced >= 0, self._rarity[requested], math.inf)
                best = rarity.argmin(dim=1, keepdim=True)
                g = torch.where((forced >= 0).any(dim=1), requested.gather(1, best).squeeze(1), g)
        values = torch.empty(n, layout.n_values, device=device)
        codes = torch.empty(n, layout.n_codes, dtype=torch.long, device=device)
        weights, cond_rows = self._folded()
        emb = self.config.embedding_dim
        for start in range(0, n, GENERATE_CHUNK):
            end = min(start + GENERATE_CHUNK, n)
            noise = torch.randn(end - start, emb, generator=generator, device=device)
            part = g[start:end] if g is not None else None
            with self._amp():
                if weights[0][2] == "plain":
                    logits = run_folded_conditional(weights, noise, cond_rows, part)
                else:
                    logits = run_folded(weights, torch.cat([noise, layout.cond_vector(part, end - start, device)], 1))
            values[start:end], codes[start:end] = layout.decode(logits[:, : layout.dense_dim].float(), generator)
        if forced is not None:  # exactness does not depend on the generator agreeing
            cols = layout.cond_code_index
            codes[:, cols] = torch.where(forced >= 0, forced, codes[:, cols])
        return values, codes

    def _folded(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor, str]], torch.Tensor | None]:
        """Folded sampling weights and the first layer's conditional rows (W_cond + b), cached
        until a parameter or buffer of the generator changes (tensor version counters)."""
        net = self.generator_net_
        key = tuple(t._version for t in (*net.parameters(), *net.buffers()))
        cached = getattr(self, "_folded_cache", None)
        if cached is None or cached[0] != key:
            layers = net.folded()
            weight, bias, _ = layers[0]
            emb, width = self.config.embedding_dim, self.layout_.cond_dim
            cond_rows = (weight[emb : emb + width] + bias).contiguous() if width else None
            self._folded_cache = cached = (key, layers, cond_rows)
        return cached[1], cached[2]

    def _sample_block(
        self, n: int, generator: torch.Generator, conditions: dict[str, np.ndarray] | None
    ) -> EncodedTable:
        forced = self._forced_codes(conditions, n) if conditions else None
        values, codes = self._generate(n, generator, forced)
        return EncodedTable(values.cpu().numpy(), codes.cpu().numpy())

    def _forced_codes(self, conditions: dict[str, np.ndarray], n: int) -> torch.Tensor:
        """The codec's category codes per conditioned column -> [n, J] per conditional column
        of the layout (-1: that column is free on that row)."""
        layout = self.layout_
        forced = np.full((n, len(layout.cond_names)), -1, dtype=np.int64)
        for name, codes in conditions.items():
            forced[:, layout.cond_names.index(name)] = codes
        return torch.as_tensor(forced, device=self.device_)


def _adam(module: nn.Module, lr: float, cfg: CTGANConfig) -> torch.optim.Optimizer:
    """Adam as in CTGAN; the fused kernel (one call for all parameters) where torch has it."""
    kwargs = {"lr": lr, "betas": tuple(cfg.betas), "weight_decay": cfg.weight_decay}
    try:
        return torch.optim.Adam(module.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(module.parameters(), **kwargs)
