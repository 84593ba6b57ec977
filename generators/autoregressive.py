"""Any-order autoregressive transformer for tables: exact likelihoods and exact conditional sampling.

A row is a sequence with one position per modelled column. For an order o of the columns,

    p(row) = prod_t p(x[o_t] | x[o_1], ..., x[o_t-1])

and a small causal transformer (nanoGPT-like, no positional embeddings) computes every factor:
the input at position t is the previous column's value token (plus its position within its bin)
and a query embedding saying which column comes next; the output is that column's distribution.
Tokens come from the family's codec (`ar_codec.TokenCodec`); sampling lives in `ar_sampling`.

Likelihood: `log_likelihood` is exact, in nats per row, under the canonical order (the schema's
column order) or any other `order`; `log_likelihood_by_column` splits it into the factors above
(token log-probability plus the codec's within-token log density/mass). Rows the model cannot
produce (a value outside the schema's range or categories, a datetime off the time grid) get -inf.

Training orders: a random prefix (a random subset of the columns, in random order) followed by
the remaining columns in canonical order; with probability `canonical_fraction` the prefix is
empty. These are exactly the orders used at inference (canonical for likelihoods and plain
samples; conditioned columns first for conditional samples), which costs far less capacity than
learning all C! orders (the restricted order set of Shih et al., 2022, "MAC").

Speed: one training step is one causal forward over all positions and one batched matrix
product per group of columns with similar vocabularies (see `_head_groups`); on a CPU with bf16
support and `mixed_precision`, training matmuls run in bf16 (the weights, likelihoods and
sampling stay float32, so samples and likelihoods are exact for the trained weights).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from synthpipe.generators.ar_codec import ConditionPlan, SampledRows, TokenCodec
from synthpipe.generators.ar_sampling import Sampler
from synthpipe.generators.base import BaseGenerator, Check, TrainConfig, _is_number
from synthpipe.generators.dropout import FastDropout
from synthpipe.generators.dropout import dropout as drop
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.weight_average import WeightAverage

# ----------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Causal multi-head self-attention; with a key/value cache it processes one new position.

    Attention probabilities are dropped too (as before the speed work: without it the demo's
    model over-produced its most common rows and failed the exact-copy gate, 17.5% against 17.0%).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.n_heads, self.dropout = n_heads, dropout
        self.resid_drop = FastDropout(dropout)

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None, pos: int = 0
    ) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = (
            t.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2) for t in self.qkv(x).split(d, dim=2)
        )
        if cache is None:
            y = causal_attention(q, k, v, self.dropout if self.training else 0.0)
        else:  # one new position: it may attend to every cached one and to itself
            keys, values = cache
            keys[:, :, pos : pos + T] = k
            values[:, :, pos : pos + T] = v
            y = F.scaled_dot_product_attention(q, keys[:, :, : pos + T], values[:, :, : pos + T])
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, d)))


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
    """Causal attention over [B, H, T, hd], attention probabilities dropped at `dropout`. In bf16 on
    the CPU, torch's fused kernel is 4-7x slower than three batched products for the short
    sequences here (one position per column: 1024 rows, fwd+bwd, 10 columns 56 -> 14 ms, 55 columns
    716 -> 97 ms per layer), so that case is written out, with the packed-bit masks of
    generators/dropout.py; float32 and CUDA keep the fused kernel."""
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
    B, H, T, hd = q.shape
    mask = torch.full((T, T), -math.inf, dtype=q.dtype, device=q.device).triu_(1)
    scores = torch.baddbmm(mask, q.reshape(B * H, T, hd), k.reshape(B * H, T, hd).transpose(1, 2), alpha=hd**-0.5)
    probs = drop(scores.softmax(dim=-1), dropout, dropout > 0)
    return torch.bmm(probs, v.reshape(B * H, T, hd)).view(B, H, T, hd)


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model), FastDropout(dropout)
        )

    def forward(self, x: torch.Tensor, cache: Any = None, pos: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, pos)
        return x + self.mlp(self.ln2(x))


class ARTransformer(nn.Module):
    """Position t sees (column, value) of the columns before it in the order and predicts the next.

    Every column's tokens live in one shared embedding table (column c's token k is row
    offsets[c] + k); the output head is one linear layer whose rows are sliced per column.
    """

    def __init__(self, vocab_sizes: list[int], d_model: int, n_layers: int, n_heads: int, dropout: float):
        super().__init__()
        self.vocab_sizes = list(vocab_sizes)
        starts = np.concatenate([[0], np.cumsum(self.vocab_sizes)]).astype(np.int64)
        self.register_buffer("offsets", torch.as_tensor(starts[:-1]), persistent=False)
        self.slices = [(int(s), int(v)) for s, v in zip(starts[:-1], self.vocab_sizes)]
        self.bos = int(starts[-1])  # the token before the first column
        n_cols = max(len(self.vocab_sizes), 1)
        self.value_emb = nn.Embedding(self.bos + 1, d_model)
        self.frac_emb = nn.Embedding(n_cols, d_model)  # direction of "position within the bin"
        self.query_emb = nn.Embedding(n_cols, d_model)  # which column to predict next
        self.drop = FastDropout(dropout)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, dropout) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, max(self.bos, 1))
        self.n_heads = n_heads
        groups = _head_groups(self.vocab_sizes, starts[:-1])
        self.n_head_groups = len(groups)
        for g, (columns, rows, pad) in enumerate(groups):  # buffers: they follow .to(device)
            self.register_buffer(f"head_columns_{g}", columns, persistent=False)
            self.register_buffer(f"head_rows_{g}", rows, persistent=False)
            self.register_buffer(f"head_pad_{g}", pad, persistent=False)

    @property
    def head_groups(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(column indices, head rows, -inf padding) of each group, on the model's device."""
        return [
            tuple(getattr(self, f"head_{what}_{g}") for what in ("columns", "rows", "pad"))
            for g in range(self.n_head_groups)
        ]

    def embed(
        self, prev_token: torch.Tensor, prev_col: torch.Tensor, prev_frac: torch.Tensor, target_col: torch.Tensor
    ) -> torch.Tensor:
        """prev_token: global ids (bos at the start); prev_frac in [0, 1], 0.5 when meaningless."""
        position = self.frac_emb(prev_col) * (prev_frac - 0.5).unsqueeze(-1)
        return self.drop(self.value_emb(prev_token) + position + self.query_emb(target_col))

    def _inputs(
        self, tokens: torch.Tensor, frac: torch.Tensor, order: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-column (tokens, frac) [B, C] and an order [B, C] -> the inputs at each position."""
        B = len(tokens)
        prev = order[:, :-1]
        start = torch.full((B, 1), self.bos, dtype=torch.long, device=tokens.device)
        prev_token = torch.cat([start, (tokens + self.offsets).gather(1, prev)], dim=1)
        prev_col = torch.cat([torch.zeros_like(start), prev], dim=1)
        prev_frac = torch.cat([torch.full((B, 1), 0.5, device=tokens.device), frac.gather(1, prev)], dim=1)
        return prev_token, prev_col, prev_frac

    def forward(self, tokens: torch.Tensor, frac: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, C, d] at every position (position t predicts column order[:, t])."""
        x = self.embed(*self._inputs(tokens, frac, order), order)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def token_log_probs(self, tokens: torch.Tensor, frac: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """log p(token of column c | columns before c in `order`), float32 [B, C] in column order."""
        hidden = self(tokens, frac, order)
        position = order.argsort(dim=1).unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        hidden = hidden.gather(1, position)  # [B, C, d]: the position that predicts each column
        out = torch.empty(tokens.shape, dtype=torch.float32, device=tokens.device)
        for columns, rows, pad in self.head_groups:
            weight, bias = self.head.weight[rows], self.head.bias[rows]  # [Cg, W, d], [Cg, W]
            h = hidden[:, columns].transpose(0, 1)  # [Cg, B, d]
            logits = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            log_p = F.log_softmax(logits.float() + pad.unsqueeze(1), dim=-1)  # [Cg, B, W]
            out[:, columns] = log_p.gather(2, tokens[:, columns].t().unsqueeze(-1)).squeeze(-1).t()
        return out

    def new_cache(self, batch: int, length: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        d = self.value_emb.embedding_dim
        shape = (batch, self.n_heads, length, d // self.n_heads)
        return [(torch.empty(shape, device=device), torch.empty(shape, device=device)) for _ in self.blocks]

    def step(
        self,
        prev_token: torch.Tensor,
        prev_col: torch.Tensor,
        prev_frac: torch.Tensor,
        target_col: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
        pos: int,
    ) -> torch.Tensor:
        """One position for the whole batch, reusing the cached keys/values of positions < pos."""
        x = self.embed(prev_token, prev_col, prev_frac, target_col).unsqueeze(1)
        for block, layer_cache in zip(self.blocks, cache):
            x = block(x, layer_cache, pos)
        return self.ln_f(x)[:, 0]

    def hidden_cached(self, tokens: torch.Tensor, frac: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """forward() computed position by position through the cache, as sampling does."""
        prev_token, prev_col, prev_frac = self._inputs(tokens, frac, order)
        cache = self.new_cache(len(tokens), order.shape[1], tokens.device)
        steps = [
            self.step(prev_token[:, t], prev_col[:, t], prev_frac[:, t], order[:, t], cache, t)
            for t in range(order.shape[1])
        ]
        return torch.stack(steps, dim=1)

    def column_logits(self, hidden: torch.Tensor, column: int) -> torch.Tensor:
        start, size = self.slices[column]
        return F.linear(hidden, self.head.weight[start : start + size], self.head.bias[start : start + size])


def _head_groups(vocab_sizes: list[int], starts: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Columns grouped by vocabulary size rounded up to a power of two (at least 8), each group
    (column indices [Cg], head rows [Cg, W], -inf padding [Cg, W]) one batched product.

    Why: padding every column to the widest vocabulary made the heads cost C x max(V) logits per
    row; one 502-level column on loans made that 11x the real vocabulary. Grouping keeps the work
    within 2x of the real vocabulary with a handful of products instead of one per column."""
    groups = []
    widths = [max(8, 1 << max(v - 1, 0).bit_length()) for v in vocab_sizes]
    for width in sorted(set(widths)):
        columns = [c for c, w in enumerate(widths) if w == width]
        sizes = torch.as_tensor([vocab_sizes[c] for c in columns])
        pad = torch.arange(width)[None, :] >= sizes[:, None]
        rows = torch.as_tensor(starts[columns], dtype=torch.int64)[:, None] + torch.arange(width)
        groups.append((torch.as_tensor(columns), rows.masked_fill(pad, 0), torch.zeros(pad.shape).masked_fill(pad, -math.inf)))
    return groups


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------


@dataclass
class ARConfig(TrainConfig):
    d_model: int = 64
    # 2 layers, not 3: at a 60 s budget on 2 cores (seed 0, in process) the shallower network ran
    # a third more epochs and scored loans AUC 0.811 / TSTR 0.326 against 0.957 / 0.231 (seed 1:
    # 0.849 / 0.484 against 0.894 / 0.343), flights 0.767 / 0.863 against 0.775 / 0.775, and
    # tied on diamonds (0.570 vs 0.562) and CPS1988 (0.552 vs 0.544); longer training may want 3
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.1
    n_bins: int = 48  # quantile bins per numerical/integer/datetime column (atoms included)
    canonical_fraction: float = 0.5  # training rows that use the canonical order
    temperature: float = 1.0  # sampling: >1 flattens, <1 sharpens every sampled column
    top_p: float = 1.0  # sampling: nucleus mass kept for unconstrained columns
    max_rejection_rounds: int = 50  # rows with 2+ range conditions: exact acceptance rounds
    epochs: int = 300
    # Rows per step: batch_size, but at most 1/min_steps_per_pass of the training rows, and the
    # learning rate scales with the rows actually used (learning_rate is the rate at batch_size).
    # 512 rows at 4e-3 against 256 at 2e-3, at a 60 s budget: held-out NLL on diamonds 29.86 vs
    # 30.19 nats per row, on loans 190.04 vs 191.21 (1024 at 8e-3: 29.71 and 190.65, and fewer steps
    # cost loans AUC in the harness); a 2,000-row table still gets 8 steps an epoch at ~the old rate.
    # Unset: TIMED_LEARNING_RATE for a fit with time_budget_s, UNTIMED_LEARNING_RATE otherwise
    # (a value set is used as is). Why two: a fit cut by its budget stops under-trained, and the
    # larger step learns more per second; a fit that runs to its held-out optimum finds a better
    # one with the smaller step. At a 60 s budget (benchmarks.budget_probe, seed 0), 1.6e-2
    # against 4e-3: held-out NLL on flights 54.80 -> 53.16 nats per row, loans 156.3 -> 151.6,
    # diamonds 28.76 -> 28.54, CPS1988 15.273 -> 15.264; flights TSTR 0.876 -> 0.915 (seed 1:
    # 0.905 -> 0.950), loans annual_income TSTR 0.377 -> 0.642 (seed 1: 0.664 -> 0.902); 8e-3 was
    # between the two and 3.2e-2 worse again (flights 53.52, loans 152.9); a linear decay to 0.1x
    # over the budget cost loans 4.4 nats. Untimed, on the acs12 demo (2,000 rows, seeds 0-2),
    # 1.6e-2 scored quality 0.930 / 0.938 / 0.930 against 0.950 / 0.950 / 0.941 with 4e-3.
    batch_size: int = 512
    learning_rate: float | None = None
    min_steps_per_pass: int = 8
    eval_every: int = 2
    patience: int = 8
    # an exponential moving average of the weights (decay warmed up as (1 + t) / (10 + t)); each
    # validation keeps it or the live weights, whichever scores lower; 0 keeps the live weights
    ema_decay: float = 0.995


TIMED_LEARNING_RATE = 1.6e-2  # ARConfig.learning_rate unset, time_budget_s set
UNTIMED_LEARNING_RATE = 4e-3  # ARConfig.learning_rate unset, no time budget


class AutoregressiveTransformer(BaseGenerator):
    name = "autoregressive"
    Config = ARConfig
    Codec = TokenCodec
    supports_conditions = "any"
    loss_names = ("loss",)  # nats per row over the tokens (within-bin terms are fixed)

    # ---- codec and network ----------------------------------------------------------------------

    def _make_codec(self) -> TokenCodec:
        cfg = self.config
        return TokenCodec(cfg.n_bins, cfg.max_categories, cfg.max_fit_rows, cfg.min_category_count)

    def _encode_rows(self, df: pd.DataFrame, censor: bool = True) -> tuple[torch.Tensor, ...]:
        """Training and validation rows are censored to each column's protected range; rows whose
        likelihood is asked are not (a value past it keeps its own, small, probability)."""
        rows = self.codec_.encode(df, censor)
        return tuple(torch.as_tensor(a, device=self.device_) for a in (rows.tokens, rows.frac, rows.log_within))

    def _build(self) -> None:
        cfg = self.config
        self.columns_ = self.codec_.columns
        self.model_ = ARTransformer(self.codec_.vocab_sizes, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout)
        self.model_.to(self.device_)
        lr = self.learning_rate() * self.step_rows() / cfg.batch_size
        self.optimizer_ = torch.optim.AdamW(self.model_.parameters(), lr=lr, weight_decay=cfg.weight_decay, fused=True)
        # Why average: at the constant learning rate that trains fastest under a time budget the
        # last weights jitter around the optimum, and a categorical column's sampled shares move
        # with them (CPS1988's region drew midwest 27.5% against 24.5% in training)
        self.average_ = WeightAverage(self.model_.parameters(), cfg.ema_decay) if cfg.ema_decay else None
        self.scored_loss_: float | None = None  # set by _evaluated_weights for the validation it scored
        self.averaged_: bool | None = None

    def _modules(self) -> dict[str, nn.Module]:
        return {"transformer": self.model_}

    def learning_rate(self) -> float:
        """The rate at batch_size this fit uses: the one set, else by whether the fit is timed."""
        cfg = self.config
        if cfg.learning_rate is not None:
            return cfg.learning_rate
        return TIMED_LEARNING_RATE if cfg.time_budget_s is not None else UNTIMED_LEARNING_RATE

    def step_rows(self) -> int:
        cfg, n_train = self.config, getattr(self, "n_train_", None)  # None: a loaded model, not training
        if n_train is None:
            return cfg.batch_size
        return max(2, min(cfg.batch_size, -(-n_train // cfg.min_steps_per_pass)))

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        average = {"average": self.average_} if self.average_ is not None else {}
        return {"adamw": self.optimizer_, **average}

    def _param_checks(self) -> list[Check]:
        inherited = [check for check in super()._param_checks() if check[0] != "learning_rate"]  # may be unset here
        return [*inherited, *AR_CHECKS]

    def _check_sampling_params(self) -> None:
        """temperature and top_p may be changed on a fitted model: checked again per sample."""
        for name, ok, what in AR_CHECKS[-2:]:
            if not ok(self.config):
                raise ConfigError(f"{self.name} generator: {name} {what}, got {getattr(self.config, name)!r}")

    def autocast(self) -> Any:
        """bf16 matmuls for training on CUDA, and on CPUs with native bf16 (AVX512-BF16/AMX)."""
        if self.device_.type == "cpu" and self.config.mixed_precision and _cpu_has_bf16():
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return super().autocast()

    # ---- training ---------------------------------------------------------------------------------

    def _orders(self, batch: int) -> torch.Tensor:
        """A random prefix of columns (random order) then the rest in canonical order, [batch, C].

        Prefix sizes k = 1..C are drawn with probability proportional to 1/k: conditions name
        one or two columns far more often than half the table, and a prefix of exactly the
        conditioned columns is what a conditional sample runs. Uniform sizes gave a one-column
        prefix to 1/(C+1) of the non-canonical rows (0.9% on a 55-column table)."""
        C, g = len(self.columns_), self.rng_
        harmonic = 1.0 / torch.arange(1, C + 1, dtype=torch.float64)
        size = torch.multinomial(harmonic, batch, replacement=True, generator=g) + 1 if C else torch.zeros(batch, dtype=torch.long)
        size[torch.rand(batch, generator=g) < self.config.canonical_fraction] = 0
        priority = torch.rand(batch, C, generator=g)
        in_prefix = priority.argsort(dim=1).argsort(dim=1) < size[:, None]
        key = torch.where(in_prefix, priority, 1.0 + torch.arange(C, dtype=torch.float32))
        return key.argsort(dim=1).to(self.device_)

    def _train_step(self, step: int) -> torch.Tensor:
        if not self.columns_:
            return torch.zeros(1, device=self.device_)
        tokens, frac, _ = self.train_
        idx = self.batch(step)
        order = self._orders(len(idx))
        with self.autocast():
            loss = -self.model_.token_log_probs(tokens[idx], frac[idx], order).sum(dim=1).mean()
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model_.parameters(), 1.0, foreach=True)
        self.optimizer_.step()
        if self.average_ is not None:
            self.average_.step()
        return loss.detach().float().reshape(1)

    @contextlib.contextmanager
    def _evaluated_weights(self, keep: bool = False) -> Iterator[None]:
        """Once the average has settled (`WeightAverage.settled`), the average or the live
        weights, whichever scores the lower held-out loss (the average without validation rows).
        Why choose: the average helps once the weights jitter around an optimum, but lags while
        they still improve fast."""
        keeper = self.average_
        average = keeper.averages() if keeper is not None and keeper.settled else None
        if average is None:
            yield
            return
        params = [p.detach() for p in self.model_.parameters()]
        validate = self.val_ is not None
        with torch.no_grad():
            live = [p.clone() for p in params]
            if validate:
                self.model_.eval()
                live_loss = self._validation_loss()
            torch._foreach_copy_(params, average)
            if validate:
                average_loss = self._validation_loss()
                if live_loss < average_loss:
                    torch._foreach_copy_(params, live)
                self.scored_loss_ = min(live_loss, average_loss)
                self.averaged_ = average_loss <= live_loss
        try:
            yield
        finally:
            self.scored_loss_ = self.averaged_ = None
            if not keep:
                with torch.no_grad():
                    torch._foreach_copy_(params, live)

    def _monitor(self) -> dict[str, float]:
        return {} if self.averaged_ is None else {"weight_average_kept": float(self.averaged_)}  # 0: live

    def _validation_loss(self) -> float:
        """Held-out negative log-likelihood, nats per row, canonical order (rows with -inf skipped)."""
        if self.scored_loss_ is not None:  # scored by _evaluated_weights already
            return self.scored_loss_
        log_lik = self._log_likelihood_matrix(*self.val_).sum(dim=1)
        finite = torch.isfinite(log_lik)
        return float(-log_lik[finite].mean()) if finite.any() else math.inf

    # ---- likelihood -------------------------------------------------------------------------------

    @property
    def likelihood_kind(self) -> str:
        return "exact"

    def _log_likelihood_matrix(
        self, tokens: torch.Tensor, frac: torch.Tensor, log_within: torch.Tensor, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Exact log p per column and row, float64 [n, C], in batches (float32 network)."""
        if not self.columns_:
            return log_within.clone()
        out = []
        with torch.no_grad():
            for start in range(0, len(tokens), 4096):
                sl = slice(start, start + 4096)
                n = len(tokens[sl])
                o = torch.arange(len(self.columns_), device=self.device_) if order is None else order[0]
                log_p = self.model_.token_log_probs(tokens[sl], frac[sl], o.expand(n, -1))
                out.append(log_p.double() + log_within[sl])
        return torch.cat(out) if out else torch.zeros_like(log_within)

    def log_likelihood_by_column(self, data: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
        """Exact log-likelihood per row and column, in nats: log p(column | earlier columns in the
        order). Densities for numerical columns, probabilities for the others; ID and constant
        columns are 0. `order` lists the modelled columns (default: the schema's order)."""
        self._check_fitted()
        self.model_.eval()
        per_column = self._log_likelihood_matrix(*self._encode_rows(data, censor=False), self._order_tensor(order)).cpu().numpy()
        out = pd.DataFrame(0.0, index=data.index, columns=self.schema_.names)
        for i, name in enumerate(self.columns_):
            out[name] = per_column[:, i]
        return out

    def log_likelihood(self, data: pd.DataFrame, order: Sequence[str] | None = None) -> np.ndarray:
        """Exact log p(row) in nats (see log_likelihood_by_column), one value per row."""
        return self.log_likelihood_by_column(data, order).to_numpy().sum(axis=1)

    def _order_tensor(self, order: Sequence[str] | None) -> torch.Tensor | None:
        if order is None:
            return None
        names = [n for n in order if n in self.columns_]
        if sorted(names) != sorted(self.columns_) or len(names) != len(set(names)):
            raise ConfigError(f"order must list each modelled column once; they are {self.columns_}")
        return torch.tensor([self.columns_.index(n) for n in names], device=self.device_).unsqueeze(0)

    # ---- sampling ---------------------------------------------------------------------------------

    def _sample_block(self, n: int, generator: torch.Generator, conditions: ConditionPlan | None) -> SampledRows:
        self._check_sampling_params()
        cfg = self.config
        plan = ConditionPlan.free(n, len(self.columns_)) if conditions is None else conditions
        sampler = Sampler(self.model_, self.codec_, self.device_, cfg.temperature, cfg.top_p, cfg.max_rejection_rounds)
        # Rows per pass: as many as a key/value cache of 2**26 floats (256 MB) holds on the CPU.
        # Why that large: each pass is one small step per column per layer, so per-call overhead
        # dominates narrow batches; on loans (55 columns) 8,192 rows took 13.8 s in 397-row passes
        # (a 32 MB cache) and 6.5 s in 3,177-row passes, and flights went 2,345 -> 4,301 rows/s.
        per_row = max(cfg.n_layers * 2 * len(self.columns_) * cfg.d_model, 1)  # cache floats per row
        chunk = max(256, (2**28 if self.device_.type == "cuda" else 2**26) // per_row)
        return sampler.sample(plan, generator, chunk)


AR_CHECKS: list[Check] = [
    (
        "learning_rate",
        lambda c: c.learning_rate is None or (_is_number(c.learning_rate) and c.learning_rate > 0),
        f"must be > 0 (or unset: {TIMED_LEARNING_RATE:g} under a time budget, {UNTIMED_LEARNING_RATE:g} without)",
    ),
    (
        "d_model",
        lambda c: c.d_model >= 1 and c.n_heads >= 1 and c.d_model % c.n_heads == 0,
        "must be a positive multiple of n_heads",
    ),
    ("n_layers", lambda c: c.n_layers >= 1, "must be >= 1"),
    ("n_bins", lambda c: c.n_bins >= 2, "must be >= 2"),
    ("canonical_fraction", lambda c: 0 <= c.canonical_fraction <= 1, "must be in [0, 1]"),
    ("dropout", lambda c: 0 <= c.dropout < 1, "must be in [0, 1)"),
    ("ema_decay", lambda c: 0 <= c.ema_decay < 1, "must be in [0, 1) (0 disables the average)"),
    ("min_steps_per_pass", lambda c: isinstance(c.min_steps_per_pass, int) and c.min_steps_per_pass >= 1, "must be an integer >= 1"),
    ("max_rejection_rounds", lambda c: c.max_rejection_rounds >= 1, "must be >= 1"),
    ("temperature", lambda c: c.temperature > 0, "must be > 0"),
    ("top_p", lambda c: 0 < c.top_p <= 1, "must be in (0, 1]"),
]


def _cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 matmuls natively here (else bf16 autocast would be slower)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
