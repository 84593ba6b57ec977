"""Any-order autoregressive transformer for tables: exact likelihoods and exact conditional sampling.

A row is a sequence with one position per modelled column. For an order o of the columns,

    p(row) = prod_t p(x[o_t] | x[o_1], ..., x[o_t-1])

and a small causal transformer (nanoGPT-like, no positional embeddings) computes every factor:
the input at position t is the previous column's value token (plus its position within its bin)
and a query embedding saying which column comes next; the output is that column's distribution.

Tokens
- categorical and boolean columns use the shared TableEncoder's categories: the most frequent
  `max_categories`, an OTHER bucket for the rest, and null. A value folded into OTHER has
  probability p(OTHER) * (its share of the bucket in training), so probabilities stay normalised.
- numerical, integer and datetime columns use `tokenize.BinnedColumn`: a quantile-bin token and a
  uniform position within the bin (integers and datetimes: uniform over the grid points of the
  bin, a probability mass; numerical columns: a density, plus point masses for "atoms").
- ID and constant columns are not modelled: IDs are minted and constants filled at decode time,
  and they contribute 0 nats to the log-likelihood.

Likelihood: `log_likelihood` is exact, in nats per row, under the canonical order (the schema's
column order), or any other order passed as `order`; `log_likelihood_by_column` splits it into
the factors above. Rows the model cannot produce (a value outside the schema's range or
categories, a datetime off the column's time grid) get -inf.

Training orders: a random prefix (a random subset of the columns, in random order) followed by
the remaining columns in canonical order; with probability `canonical_fraction` the prefix is
empty. These are exactly the orders used at inference (canonical for likelihoods and plain
samples; conditioned columns first for conditional samples), which costs far less capacity than
learning all C! orders (the restricted order set of Shih et al., 2022, "MAC").

Conditional sampling, with no rejection for categorical and point conditions and one range:
columns given a value are revealed first; columns given a range (low, high) come next and are
sampled from their distribution truncated to the range (bins reweighted by the share of their mass
inside the range, then a uniform value within the part of the bin inside it); the other columns
follow. With two or more ranges in a row, sequential truncation alone would over-weight values of
the first ranged column that make the later ranges unlikely; each draw is therefore accepted with
probability prod P(later range | prefix), which makes it exact, and rows still pending after
`max_rejection_rounds` rounds keep their last draw (every row satisfies every condition either
way; a warning says the distribution of those rows is approximate).

Sampling runs on the device in batches, one transformer step per column with a key/value cache,
so its cost is linear in the number of columns. `temperature` (all sampled columns) and `top_p`
(nucleus sampling, unconstrained columns only) come from the config; both default to 1.0 (the
model's own distribution, for which conditional samples are exact).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from synthpipe.generators.base import BaseGenerator, TrainConfig, derive_seed
from synthpipe.generators.errors import ConfigError
from synthpipe.generators.ids import generate_ids
from synthpipe.generators.schema import ColumnKind
from synthpipe.generators.tokenize import BinnedColumn
from synthpipe.generators.transforms import (
    OTHER,
    CategoricalEncoder,
    ContinuousEncoder,
    _restore_categorical,
    _restore_constant,
    _restore_ids,
)

# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Causal multi-head self-attention; with a key/value cache it processes one new position."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.n_heads, self.dropout = n_heads, dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None, pos: int = 0
    ) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = (
            t.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2) for t in self.qkv(x).split(d, dim=2)
        )
        if cache is None:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:  # one new position: it may attend to every cached one and to itself
            keys, values = cache
            keys[:, :, pos : pos + T] = k
            values[:, :, pos : pos + T] = v
            y = F.scaled_dot_product_attention(q, keys[:, :, : pos + T], values[:, :, : pos + T])
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, d)))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model), nn.Dropout(dropout)
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
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, dropout) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, max(self.bos, 1))
        self.n_heads = n_heads

    def embed(
        self,
        prev_token: torch.Tensor,
        prev_col: torch.Tensor,
        prev_frac: torch.Tensor,
        target_col: torch.Tensor,
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

    def new_cache(
        self, batch: int, length: int, device: torch.device
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
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


@dataclass
class ARConfig(TrainConfig):
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    dropout: float = 0.1
    n_bins: int = 48  # quantile bins per numerical/integer/datetime column (atoms included)
    canonical_fraction: float = 0.5  # training rows that use the canonical order
    temperature: float = 1.0  # sampling: >1 flattens, <1 sharpens every sampled column
    top_p: float = 1.0  # sampling: nucleus mass kept for unconstrained columns
    max_rejection_rounds: int = 50  # rows with 2+ range conditions: exact acceptance rounds
    epochs: int = 300
    batch_size: int = 256
    learning_rate: float = 2e-3
    eval_every: int = 2
    patience: int = 8


@dataclass
class _Plan:
    """Per-row conditions as tensors: mode 0 = sample, 1 = revealed, 2 = sample within a range."""

    mode: torch.Tensor  # int8 [B, C]
    token: torch.Tensor  # long [B, C] revealed tokens
    frac: torch.Tensor  # float [B, C]
    value: torch.Tensor  # float64 [B, C] revealed values (model units; OTHER member index)
    low: torch.Tensor  # float64 [B, C] ranges (-inf/inf when free)
    high: torch.Tensor
    snap_low: torch.Tensor
    snap_high: torch.Tensor
    mass: torch.Tensor  # float64 [B, C] marginal probability of each range (narrowest is sampled first)

    def take(self, rows: torch.Tensor | slice) -> _Plan:
        return _Plan(*(getattr(self, f.name)[rows] for f in fields(self)))


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------


class AutoregressiveTransformer(BaseGenerator):
    name = "autoregressive"
    Config = ARConfig
    supports_conditions = "any"

    # ---- tokens ----------------------------------------------------------------------------------

    def _fit_preprocessing(self, train: pd.DataFrame) -> None:
        rng = np.random.default_rng(derive_seed(self.config.seed, 3))
        schema = self.encoder_.schema_
        self.columns_ = [c.name for c in schema.columns if c.name in self.encoder_.encoders_]
        self.binned_: dict[str, BinnedColumn] = {}
        for name in self.columns_:
            enc = self.encoder_.encoders_[name]
            if isinstance(enc, ContinuousEncoder):
                self.binned_[name] = BinnedColumn.fit(
                    schema[name],
                    train[name],
                    self.config.n_bins,
                    self.config.max_fit_rows,
                    rng,
                    enc.datetime_unit,
                )

    def _extra_state(self) -> dict[str, Any]:
        return {"columns": self.columns_, "binned": {k: b.state_dict() for k, b in self.binned_.items()}}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        schema = self.encoder_.schema_
        self.columns_ = list(state["columns"])
        self.binned_ = {k: BinnedColumn.from_state_dict(schema[k], s) for k, s in state["binned"].items()}

    def _category(self, name: str, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Categorical values -> (token, index within OTHER or -1, log share within OTHER)."""
        enc: CategoricalEncoder = self.encoder_.encoders_[name]
        values = series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series
        head = [c for c in enc.categories if c is not None and c != OTHER]
        token = pd.Categorical(values, categories=pd.Index(head, dtype=object)).codes.astype(np.int64)
        null = series.isna().to_numpy()
        member = np.full(len(series), -1, dtype=np.int64)
        if enc.tail:
            member = pd.Categorical(values, categories=pd.Index(enc.tail, dtype=object)).codes.astype(
                np.int64
            )
        log_within = np.zeros(len(series))
        folded = (token < 0) & ~null & (member >= 0)
        if folded.any():
            token[folded] = enc.categories.index(OTHER)
            log_within[folded] = np.log(np.asarray(enc.tail_probs))[member[folded]]
        if enc.has_null:
            token[null] = len(enc.categories) - 1
        else:
            log_within[null] = -np.inf
        unseen = token < 0
        token[unseen], log_within[unseen] = 0, -np.inf
        return token, member, log_within

    def _tokenize(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows -> tokens [n, C], position within bin [n, C], log within-bin density/mass [n, C]."""
        self.encoder_.schema_.check_compatible(df)
        n, C = len(df), len(self.columns_)
        tokens, frac, log_within = (
            np.zeros((n, C), np.int64),
            np.full((n, C), 0.5, np.float32),
            np.zeros((n, C)),
        )
        for i, name in enumerate(self.columns_):
            if name in self.binned_:
                tokens[:, i], frac[:, i], log_within[:, i] = self.binned_[name].tokenize(df[name])
            else:
                tokens[:, i], _, log_within[:, i] = self._category(name, df[name])
        return tokens, frac, log_within

    def _encode_rows(self, df: pd.DataFrame) -> tuple[torch.Tensor, ...]:
        tokens, frac, log_within = self._tokenize(df)
        dev = self.device_
        return (
            torch.as_tensor(tokens, device=dev),
            torch.as_tensor(frac, device=dev),
            torch.as_tensor(log_within, device=dev),
        )

    # ---- model -------------------------------------------------------------------------------------

    def _vocab_sizes(self) -> list[int]:
        return [
            self.binned_[n].n_tokens if n in self.binned_ else len(self.encoder_.encoders_[n].categories)
            for n in self.columns_
        ]

    def _build(self) -> None:
        cfg = self.config
        self.model_ = ARTransformer(self._vocab_sizes(), cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dropout)
        self.model_.to(self.device_)
        self.optimizer_ = torch.optim.AdamW(
            self.model_.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self._sampling_tables()

    def _modules(self) -> dict[str, nn.Module]:
        return {"transformer": self.model_}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adamw": self.optimizer_}

    def _validate_config(self) -> None:
        super()._validate_config()
        cfg = self.config
        checks = [
            (
                "d_model",
                cfg.d_model >= 1 and cfg.n_heads >= 1 and cfg.d_model % cfg.n_heads == 0,
                "must be a positive multiple of n_heads",
            ),
            ("n_layers", cfg.n_layers >= 1, "must be >= 1"),
            ("n_bins", cfg.n_bins >= 2, "must be >= 2"),
            ("canonical_fraction", 0 <= cfg.canonical_fraction <= 1, "must be in [0, 1]"),
            ("dropout", 0 <= cfg.dropout < 1, "must be in [0, 1)"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ConfigError(f"{self.name} generator: {name} {what}, got {getattr(cfg, name)!r}")
        self._validate_sampling_config()

    def _validate_sampling_config(self) -> None:
        cfg = self.config
        if not cfg.temperature > 0:
            raise ConfigError(f"{self.name} generator: temperature must be > 0, got {cfg.temperature!r}")
        if not 0 < cfg.top_p <= 1:
            raise ConfigError(f"{self.name} generator: top_p must be in (0, 1], got {cfg.top_p!r}")

    # ---- training ----------------------------------------------------------------------------------

    def _orders(self, batch: int) -> torch.Tensor:
        """A random prefix of columns (random order) then the rest in canonical order, [batch, C]."""
        C, g = len(self.columns_), self.generator_
        size = torch.randint(0, C + 1, (batch,), generator=g)
        size[torch.rand(batch, generator=g) < self.config.canonical_fraction] = 0
        priority = torch.rand(batch, C, generator=g)
        in_prefix = priority.argsort(dim=1).argsort(dim=1) < size[:, None]
        key = torch.where(in_prefix, priority, 1.0 + torch.arange(C, dtype=torch.float32))
        return key.argsort(dim=1).to(self.device_)

    def _canonical(self, batch: int) -> torch.Tensor:
        return torch.arange(len(self.columns_), device=self.device_).expand(batch, -1)

    def _token_log_probs(self, tokens: torch.Tensor, frac: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """log p(token of column c | columns before c in `order`), [B, C] in column order."""
        hidden = self.model_(tokens, frac, order)
        position = order.argsort(dim=1).unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        hidden = hidden.gather(1, position)  # [B, C, d]: the position that predicts each column
        out = []
        for c in range(len(self.columns_)):
            log_p = F.log_softmax(self.model_.column_logits(hidden[:, c], c).float(), dim=-1)
            out.append(log_p.gather(1, tokens[:, c : c + 1]).squeeze(1))
        return torch.stack(out, dim=1)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        tokens, frac, _ = self.train_
        if not self.columns_:
            return {"loss": 0.0}
        total, n = 0.0, 0
        for idx in self.batches(len(tokens), self.config.batch_size):
            order = self._orders(len(idx))
            with self.autocast():
                loss = -self._token_log_probs(tokens[idx], frac[idx], order).sum(dim=1).mean()
            self.optimizer_.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model_.parameters(), 1.0)
            self.optimizer_.step()
            total += loss.item() * len(idx)
            n += len(idx)
        return {"loss": total / max(n, 1)}  # nats per row over the tokens (within-bin terms are fixed)

    def _validation_loss(self) -> float:
        """Held-out negative log-likelihood, nats per row, canonical order (rows with -inf skipped)."""
        log_lik = self._log_likelihood_matrix(*self.val_).sum(dim=1)
        finite = torch.isfinite(log_lik)
        return float(-log_lik[finite].mean()) if finite.any() else math.inf

    # ---- likelihood --------------------------------------------------------------------------------

    @property
    def likelihood_kind(self) -> str:
        return "exact"

    def _log_likelihood_matrix(
        self,
        tokens: torch.Tensor,
        frac: torch.Tensor,
        log_within: torch.Tensor,
        order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Exact log p per column and row, float64 [n, C], in batches."""
        out = []
        with torch.no_grad():
            for start in range(0, len(tokens), 4096):
                sl = slice(start, start + 4096)
                n = len(tokens[sl])
                o = self._canonical(n) if order is None else order.expand(n, -1)
                log_p = (
                    self._token_log_probs(tokens[sl], frac[sl], o) if self.columns_ else log_within[sl] * 0
                )
                out.append(log_p.double() + log_within[sl])
        return torch.cat(out) if out else torch.zeros_like(log_within)

    def log_likelihood_by_column(
        self, data: pd.DataFrame, order: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Exact log-likelihood per row and column, in nats: log p(column | earlier columns in the
        order). Densities for numerical columns, probabilities for the others; ID and constant
        columns are 0. `order` lists the modelled columns (default: the schema's order)."""
        self._check_fitted()
        for module in self._modules().values():
            module.eval()
        tokens, frac, log_within = self._encode_rows(data)
        per_column = (
            self._log_likelihood_matrix(tokens, frac, log_within, self._order_tensor(order)).cpu().numpy()
        )
        out = pd.DataFrame(0.0, index=data.index, columns=self.encoder_.schema_.names)
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

    # ---- sampling ----------------------------------------------------------------------------------

    def _sampling_tables(self) -> None:
        """Per-column constants for the sampler, on the device."""
        dev, f64 = self.device_, torch.float64
        self._bins_t: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._tails_t: dict[int, tuple[int, torch.Tensor]] = {}
        for c, name in enumerate(self.columns_):
            if name in self.binned_:
                b = self.binned_[name]
                pad = [math.nan] * int(b.has_null)  # the null token has no range
                self._bins_t[c] = (
                    torch.tensor([*b.lo, *pad], dtype=f64, device=dev),
                    torch.tensor([*b.hi, *pad], dtype=f64, device=dev),
                )
            else:
                enc = self.encoder_.encoders_[name]
                if enc.tail:
                    probs = torch.tensor(enc.tail_probs, dtype=f64, device=dev)
                    self._tails_t[c] = (enc.categories.index(OTHER), probs)

    def _plan(self, conditions: pd.DataFrame | None, n: int) -> _Plan:
        """Conditions (normalised by the base class) -> per-row tensors on the device."""
        C = len(self.columns_)
        mode = np.zeros((n, C), np.int8)
        token, frac, value = (
            np.zeros((n, C), np.int64),
            np.full((n, C), 0.5, np.float32),
            np.full((n, C), -1.0),
        )
        low, high = np.full((n, C), -np.inf), np.full((n, C), np.inf)
        snap_low, snap_high, mass = low.copy(), high.copy(), np.zeros((n, C))
        for name in [] if conditions is None else conditions.columns:
            if name not in self.columns_:
                kind = self.encoder_.schema_[name].kind.value
                raise ConfigError(
                    f"cannot condition on {name!r}: {kind} columns are not modelled (they are minted/filled)"
                )
            i, cells = self.columns_.index(name), conditions[name]
            if name not in self.binned_:
                given = cells.notna().to_numpy()
                tok, member, _ = self._category(name, cells)
                mode[given, i], token[given, i], value[given, i] = 1, tok[given], member[given]
                continue
            binned = self.binned_[name]
            resolved: dict[Any, tuple] = {}
            for r, cell in enumerate(cells):
                if cell is None:
                    continue
                if cell not in resolved:
                    lo, hi = cell
                    if lo is not None and hi is not None and lo == hi:
                        u = binned.point_units(lo)
                        t, f, _ = binned.tokenize_units(np.array([u]), np.zeros(1, dtype=bool))
                        resolved[cell] = (1, t[0], f[0], u, None)
                    else:
                        resolved[cell] = (2, 0, 0.5, -1.0, binned.range_units(lo, hi))
                m, t, f, u, rng = resolved[cell]
                mode[r, i], token[r, i], frac[r, i], value[r, i] = m, t, f, u
                if rng is not None:
                    low[r, i], high[r, i], snap_low[r, i], snap_high[r, i] = (
                        rng.low,
                        rng.high,
                        rng.snap_low,
                        rng.snap_high,
                    )
                    mass[r, i] = self._marginal(i) @ np.append(binned.overlap(rng), [0.0] * binned.has_null)
        dev = self.device_
        return _Plan(
            *(
                torch.as_tensor(a, device=dev)
                for a in (mode, token, frac, value, low, high, snap_low, snap_high, mass)
            )
        )

    def _marginal(self, c: int) -> np.ndarray:
        """p(token of column c) with nothing revealed (the first position of an order)."""
        if c not in self._marginals:  # reset for every sample() call
            bos = torch.tensor([self.model_.bos], device=self.device_)
            zero, half = (
                torch.zeros(1, dtype=torch.long, device=self.device_),
                torch.full((1,), 0.5, device=self.device_),
            )
            with torch.no_grad():
                hidden = self.model_.step(
                    bos, zero, half, zero + c, self.model_.new_cache(1, 1, self.device_), 0
                )
                probs = torch.softmax(self.model_.column_logits(hidden, c).double(), dim=-1)
            self._marginals[c] = probs[0].cpu().numpy()
        return self._marginals[c]

    def _sample_encoded(
        self, n: int, generator: torch.Generator, conditions: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(values float64 [n, C]: model units, NaN for null, OTHER member index for categoricals;
        tokens int64 [n, C]) for the modelled columns in canonical order."""
        self._validate_sampling_config()
        self._marginals = {}  # filled lazily by _plan, for the current weights
        plan = self._plan(conditions, n)
        values, tokens = np.zeros((n, len(self.columns_))), np.zeros((n, len(self.columns_)), np.int64)
        if not self.columns_:
            return values, tokens
        cfg = self.config
        per_row = max(cfg.n_layers * 2 * len(self.columns_) * cfg.d_model, 1)  # cache floats per row
        chunk = max(256, (2**28 if self.device_.type == "cuda" else 2**25) // per_row)
        for start in range(0, n, chunk):
            part = plan.take(slice(start, start + chunk))
            v, t = self._sample_exact(part, generator)
            values[start : start + len(v)], tokens[start : start + len(v)] = v.cpu().numpy(), t.cpu().numpy()
        return values, tokens

    def _sample_exact(self, plan: _Plan, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample every row; rows with 2+ ranges are accepted with probability prod P(later range)."""
        values = torch.empty(plan.mode.shape, dtype=torch.float64, device=self.device_)
        tokens = torch.empty(plan.mode.shape, dtype=torch.long, device=self.device_)
        pending = torch.arange(len(plan.mode), device=self.device_)
        rounds = self.config.max_rejection_rounds
        for round_ in range(max(rounds, 1)):
            v, t, log_w = self._sample_pass(plan.take(pending), generator)
            accept = (
                torch.rand(len(pending), generator=generator, device=self.device_, dtype=torch.float64)
                < log_w.exp()
            )
            if round_ == max(rounds, 1) - 1 and not accept.all():
                warnings.warn(
                    f"{int((~accept).sum())} row(s) with several range conditions kept their last draw after "
                    f"{rounds} acceptance rounds; every row satisfies the conditions but the joint distribution "
                    "of those rows is approximate (the ranges are jointly unlikely under the model)",
                    stacklevel=2,
                )
                accept[:] = True
            values[pending[accept]], tokens[pending[accept]] = v[accept], t[accept]
            pending = pending[~accept]
            if not len(pending):
                break
        return values, tokens

    def _sample_pass(self, plan: _Plan, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """One draw per row, one cached transformer step per column: revealed columns first,
        ranged next, the rest in canonical order. Returns (values, tokens, log acceptance weight)."""
        B, C = plan.mode.shape
        dev = self.device_
        # revealed, then ranged (narrowest first: later ranges then tend to be likely, so few
        # draws are rejected), then free columns; canonical order within each group
        group = torch.where(plan.mode == 1, 0.0, torch.where(plan.mode == 2, 3.0 + plan.mass, 6.0))
        order = (group + 1e-9 * torch.arange(C, device=dev)).argsort(dim=1)
        tokens, frac, values = plan.token.clone(), plan.frac.clone(), plan.value.clone()
        log_w = torch.zeros(B, dtype=torch.float64, device=dev)
        ranged_before = torch.zeros(B, dtype=torch.bool, device=dev)
        rows = torch.arange(B, device=dev)
        cache = self.model_.new_cache(B, C, dev)
        prev_token = torch.full((B,), self.model_.bos, dtype=torch.long, device=dev)
        prev_col = torch.zeros(B, dtype=torch.long, device=dev)
        prev_frac = torch.full((B,), 0.5, device=dev)
        for t in range(C):
            col = order[:, t]
            hidden = self.model_.step(prev_token, prev_col, prev_frac, col, cache, t)
            to_sample = plan.mode[rows, col] != 1
            for c in torch.unique(col[to_sample]).tolist():
                sel = (to_sample & (col == c)).nonzero().squeeze(1)
                self._sample_column(
                    c, hidden[sel], sel, plan, tokens, frac, values, log_w, ranged_before, generator
                )
            prev_token = tokens[rows, col] + self.model_.offsets[col]
            prev_col, prev_frac = col, frac[rows, col]
        return values, tokens, log_w

    def _sample_column(
        self,
        c: int,
        hidden: torch.Tensor,
        sel: torch.Tensor,
        plan: _Plan,
        tokens: torch.Tensor,
        frac: torch.Tensor,
        values: torch.Tensor,
        log_w: torch.Tensor,
        ranged_before: torch.Tensor,
        generator: torch.Generator,
    ) -> None:
        """Draw column c for rows `sel` (in place): a token, then a value within its bin."""
        cfg = self.config
        logits = self.model_.column_logits(hidden, c).float() / cfg.temperature
        ranged = plan.mode[sel, c] == 2
        bounds = [getattr(plan, f)[sel, c] for f in ("low", "high", "snap_low", "snap_high")]
        if ranged.any():  # truncate: weight each bin by the share of its mass inside the range
            share = self._range_share(c, bounds[0], bounds[1])
            untruncated = logits
            logits = torch.where(ranged[:, None], logits + share.log().float(), logits)
            log_mass = (torch.logsumexp(logits, dim=1) - torch.logsumexp(untruncated, dim=1)).double()
            later = ranged & ranged_before[sel]
            log_w[sel[later]] += log_mass[later]
            ranged_before[sel[ranged]] = True
        if cfg.top_p < 1:
            logits = torch.where(ranged[:, None], logits, _nucleus(logits, cfg.top_p))
        token = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).squeeze(1)
        tokens[sel, c] = token
        if c in self._bins_t:
            values[sel, c], frac[sel, c] = self._value_in_bin(c, token, *bounds, generator)
        elif c in self._tails_t:  # a member of the OTHER bucket, by its training frequency
            other, probs = self._tails_t[c]
            folded = token == other
            values[sel, c] = -1.0
            if folded.any():
                draw = torch.multinomial(probs, int(folded.sum()), replacement=True, generator=generator)
                values[sel[folded], c] = draw.double()

    def _range_share(self, c: int, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """[b, n_tokens] share of each bin's mass within [low, high] (0 for the null token)."""
        lo, hi = self._bins_t[c]
        a, b = torch.maximum(lo, low[:, None]), torch.minimum(hi, high[:, None])
        if self.binned_[self.columns_[c]].grid:
            share = (b - a + 1).clamp(min=0) / (hi - lo + 1)
        else:
            width = hi - lo
            share = torch.where(width > 0, (b - a).clamp(min=0) / width.clamp(min=1e-300), (a <= b).double())
        return torch.nan_to_num(share, nan=0.0)

    def _value_in_bin(
        self,
        c: int,
        token: torch.Tensor,
        low: torch.Tensor,
        high: torch.Tensor,
        snap_low: torch.Tensor,
        snap_high: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A uniform value within the bin (and the range), and its position within the bin."""
        binned = self.binned_[self.columns_[c]]
        lo, hi = self._bins_t[c]
        lo, hi = lo[token], hi[token]
        a, b = torch.maximum(lo, low), torch.minimum(hi, high)
        u = torch.rand(len(token), generator=generator, device=self.device_, dtype=torch.float64)
        if binned.grid:
            x = torch.minimum(torch.floor(a + u * (b - a + 1)), b)
            position = (x - lo + 0.5) / (hi - lo + 1)
        else:
            x = torch.minimum(torch.maximum(a + u * (b - a), a), b)
            if binned.decimals is not None:  # the emitted value is rounded: round here, stay in range
                scale = 10.0**binned.decimals
                x = torch.minimum(torch.maximum(torch.round(x * scale) / scale, snap_low), snap_high)
            width = hi - lo
            position = torch.where(width > 0, (x - lo) / width.clamp(min=1e-300), torch.full_like(x, 0.5))
        position = torch.nan_to_num(position, nan=0.5).clamp(0, 1).float()  # null token: NaN value
        return x, position

    def _decode(self, values: np.ndarray, codes: np.ndarray, seed: int, start_index: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        n = len(codes)
        out = {}
        for column in self.encoder_.schema_.columns:
            name = column.name
            if column.kind == ColumnKind.ID:
                out[name] = _restore_ids(generate_ids(column.id_format, n, start_index, rng), column)
            elif column.kind == ColumnKind.CONSTANT:
                out[name] = _restore_constant(column, n)
            elif name in self.binned_:
                i, binned = self.columns_.index(name), self.binned_[name]
                null = codes[:, i] == binned.null_token if binned.has_null else np.zeros(n, dtype=bool)
                out[name] = binned.from_units(values[:, i], null)
            else:
                i, enc = self.columns_.index(name), self.encoder_.encoders_[name]
                lookup = np.empty(len(enc.categories), dtype=object)
                lookup[:] = enc.categories
                cells = lookup[codes[:, i]]
                if enc.tail:
                    tail = np.empty(len(enc.tail), dtype=object)
                    tail[:] = enc.tail
                    folded = cells == OTHER
                    cells[folded] = tail[values[folded, i].astype(np.int64)]
                out[name] = _restore_categorical(cells, column)
        return pd.DataFrame(out, columns=self.encoder_.schema_.names)


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most probable tokens whose cumulative probability first reaches top_p."""
    probs = torch.softmax(logits, dim=1)
    sorted_probs, index = probs.sort(dim=1, descending=True)
    drop = sorted_probs.cumsum(dim=1) - sorted_probs > top_p
    return logits.masked_fill(torch.zeros_like(drop).scatter(1, index, drop), -math.inf)
