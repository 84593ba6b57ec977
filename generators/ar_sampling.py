"""Exact (conditional) sampling from the autoregressive transformer: a plan, then one cached
transformer step per column for the whole batch.

Plan. Per row: revealed columns first (a condition gave their value), ranged columns next
(narrowest marginal mass first, so later ranges tend to be likely), then the free columns in
canonical order. Every row is one sequence; rows with different plans share each step.

Step. At position t every row feeds the token it revealed or drew at t-1 and asks for its own
next column; the draw for column c is a pure function of its logits and the row's plan:
- a token by Gumbel-max on the logits (argmax(logits / temperature + Gumbel noise) is an exact
  draw from softmax(logits / temperature), with no softmax or cumulative sum over the
  vocabulary); a ranged cell adds log(share of each bin's mass inside the range), which
  truncates the distribution exactly; `top_p` < 1 masks free cells to their nucleus first;
- then a value uniform within the bin (and the range), and its position within the bin.

Protected range. A free cell of a binned column never draws a bin past the column's protected
range (`tokenize.protected_range`: its 5th smallest and largest training values). Training
rows are censored into that range, so the model gives those bins little mass, but not none;
skipping them makes "what fewer than 5 rows show at a column's end is not reproduced" hold for
every emitted row instead of almost every one. A range condition still reaches them (its
truncation is exact under the unrestricted model), and the likelihood stays the unrestricted
model's, so a held-out row out there keeps a finite log-probability; free draws are thus exact
draws from the model restricted to the protected range, renormalised. Categorical columns do
the same with an OTHER class that folds only protected values (seen in fewer than
`min_category_count` training rows, `transforms.CategoricalEncoder`): a free cell never draws
it, a condition naming such a value still gives it.

Rows with two or more ranges: sequential truncation alone over-weights values of the first
ranged column that make later ranges unlikely, so a row's draw is accepted with probability
prod P(later range | prefix); rows still pending after `max_rejection_rounds` keep their last
draw (they satisfy every condition; a warning says their joint distribution is approximate).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch

from synthpipe.generators.ar_codec import RANGED, REVEALED, BinTable, ConditionPlan, SampledRows, TokenCodec


@dataclass
class _Rows:
    """A ConditionPlan on the device, for a subset of rows (`take`)."""

    mode: torch.Tensor  # int8 [B, C]
    token: torch.Tensor  # long [B, C]
    frac: torch.Tensor  # float32 [B, C]
    value: torch.Tensor  # float64 [B, C]
    bounds: torch.Tensor  # float64 [4, B, C]
    share_index: torch.Tensor  # long [B, C]: row of the column's share table, -1 when not ranged
    mass: torch.Tensor  # float64 [B, C]: marginal probability of the row's range (orders ranges)

    def take(self, rows: torch.Tensor | slice) -> _Rows:
        out = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "bounds"}
        return _Rows(bounds=self.bounds[:, rows], **out)


@dataclass
class Draw:
    """One column's draw for some rows: token, value in model units (or -1), position in bin,
    and log P(range) under the untruncated distribution (0 where not ranged)."""

    token: torch.Tensor
    value: torch.Tensor
    frac: torch.Tensor
    log_mass: torch.Tensor


class Sampler:
    """Draws SampledRows for a ConditionPlan from a trained ARTransformer."""

    def __init__(
        self,
        model: torch.nn.Module,
        codec: TokenCodec,
        device: torch.device,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_rejection_rounds: int = 50,
    ):
        self.model, self.device = model, device
        self.temperature, self.top_p, self.rounds = temperature, top_p, max(max_rejection_rounds, 1)
        self.bins: dict[int, BinTable] = {}
        self.skip: dict[int, torch.Tensor] = {}  # column -> 0 / -inf per token for free draws
        as_t = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
        for i in range(len(codec.columns)):
            table = codec.bins(i)
            if table is not None:
                self.bins[i] = table._replace(
                    lo=as_t(table.lo),
                    hi=as_t(table.hi),
                    rest=as_t(table.rest),
                    support=as_t(table.support),
                    support_weight=as_t(None if table.support_weight is None else _log(table.support_weight)),
                )
                inside = ~table.beyond & ~np.isnan(table.lo)
                if table.beyond.any() and inside.any():
                    self.skip[i] = torch.where(
                        torch.as_tensor(table.beyond, device=device), -math.inf, 0.0
                    ).float()
                continue
            never = codec.protected_tokens(i)  # an OTHER class of protected values only
            if never is not None:
                self.skip[i] = torch.where(torch.as_tensor(never, device=device), -math.inf, 0.0).float()

    # ---- the plan -------------------------------------------------------------------------------

    def sample(self, plan: ConditionPlan, generator: torch.Generator, chunk: int) -> SampledRows:
        n, C = plan.mode.shape
        tokens, values = np.zeros((n, C), np.int64), np.zeros((n, C))
        if not C:
            return SampledRows(tokens, values)
        self.shares = {
            c: torch.as_tensor(table, dtype=torch.float64, device=self.device) for c, (_, table) in plan.share.items()
        }
        rows = self._to_device(plan)
        for start in range(0, n, chunk):
            t, v = self._sample_exact(rows.take(slice(start, start + chunk)), generator)
            tokens[start : start + len(t)], values[start : start + len(t)] = t.cpu().numpy(), v.cpu().numpy()
        return SampledRows(tokens, values)

    def _to_device(self, plan: ConditionPlan) -> _Rows:
        n, C = plan.mode.shape
        share_index = np.full((n, C), -1, np.int64)
        mass = np.zeros((n, C))
        for c, (index, table) in plan.share.items():
            share_index[:, c] = index
            mass[:, c] = np.where(index >= 0, (table @ self.marginal(c))[index], 0.0)
        dev = self.device
        return _Rows(
            *(torch.as_tensor(a, device=dev) for a in (plan.mode, plan.token, plan.frac, plan.value, plan.bounds)),
            torch.as_tensor(share_index, device=dev),
            torch.as_tensor(mass, device=dev),
        )

    def marginal(self, c: int) -> np.ndarray:
        """p(token of column c) with nothing revealed (the first position of an order)."""
        m, dev = self.model, self.device
        start = torch.tensor([m.bos], device=dev)
        zero, half = torch.zeros(1, dtype=torch.long, device=dev), torch.full((1,), 0.5, device=dev)
        hidden = m.step(start, zero, half, zero + c, m.new_cache(1, 1, dev), 0)
        return torch.softmax(m.column_logits(hidden, c).double(), dim=-1)[0].cpu().numpy()

    @staticmethod
    def order(rows: _Rows) -> torch.Tensor:
        """[B, C]: revealed, then ranged (narrowest first), then free; canonical within a group."""
        group = torch.where(rows.mode == REVEALED, 0.0, torch.where(rows.mode == RANGED, 3.0 + rows.mass, 6.0))
        C = rows.mode.shape[1]
        return (group + 1e-9 * torch.arange(C, device=rows.mode.device)).argsort(dim=1)

    # ---- passes ---------------------------------------------------------------------------------

    def _sample_exact(self, rows: _Rows, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Every row once; rows with 2+ ranges are accepted with probability prod P(later range)."""
        tokens = torch.empty(rows.mode.shape, dtype=torch.long, device=self.device)
        values = torch.empty(rows.mode.shape, dtype=torch.float64, device=self.device)
        pending = torch.arange(len(rows.mode), device=self.device)
        for round_ in range(self.rounds):
            t, v, log_w = self._pass(rows.take(pending), generator)
            u = torch.rand(len(pending), generator=generator, device=self.device, dtype=torch.float64)
            accept = u < log_w.exp()
            if round_ == self.rounds - 1 and not accept.all():
                warnings.warn(
                    f"{int((~accept).sum())} row(s) with several range conditions kept their last draw after "
                    f"{self.rounds} acceptance rounds; every row satisfies the conditions but the joint distribution "
                    "of those rows is approximate (the ranges are jointly unlikely under the model)",
                    stacklevel=4,
                )
                accept[:] = True
            tokens[pending[accept]], values[pending[accept]] = t[accept], v[accept]
            pending = pending[~accept]
            if not len(pending):
                break
        return tokens, values

    def _pass(self, rows: _Rows, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One draw per row: (tokens, values, log acceptance weight)."""
        m, dev = self.model, self.device
        B, C = rows.mode.shape
        order = self.order(rows)
        tokens, values, frac = rows.token.clone(), rows.value.clone(), rows.frac.clone()
        log_w = torch.zeros(B, dtype=torch.float64, device=dev)
        ranges_seen = torch.zeros(B, dtype=torch.long, device=dev)
        every = torch.arange(B, device=dev)
        cache = m.new_cache(B, C, dev)
        prev_token = torch.full((B,), m.bos, dtype=torch.long, device=dev)
        prev_col, prev_frac = torch.zeros(B, dtype=torch.long, device=dev), torch.full((B,), 0.5, device=dev)
        for t in range(C):
            col = order[:, t]
            hidden = self._first_step(col, cache) if t == 0 else None
            if hidden is None:
                hidden = m.step(prev_token, prev_col, prev_frac, col, cache, t)
            drawn = rows.mode[every, col] != REVEALED
            for c in torch.unique(col[drawn]).tolist():
                sel = (drawn & (col == c)).nonzero().squeeze(1)
                draw = self.draw(c, hidden[sel], rows.take(sel), generator)
                tokens[sel, c], values[sel, c], frac[sel, c] = draw.token, draw.value, draw.frac
                ranged = rows.mode[sel, c] == RANGED
                log_w[sel] += torch.where(ranged & (ranges_seen[sel] > 0), draw.log_mass, 0.0)
                ranges_seen[sel] += ranged.long()
            prev_token = tokens[every, col] + m.offsets[col]
            prev_col, prev_frac = col, frac[every, col]
        return tokens, values, log_w

    def _first_step(self, col: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
        """Position 0 when every row asks for the same column: the input is the same for all
        rows, so one row's step (and keys/values) serves the whole batch."""
        if not bool((col == col[0]).all()):
            return None
        m, dev = self.model, self.device
        one = m.new_cache(1, 1, dev)
        start, zero = torch.tensor([m.bos], device=dev), torch.zeros(1, dtype=torch.long, device=dev)
        hidden = m.step(start, zero, torch.full((1,), 0.5, device=dev), col[:1], one, 0)
        for (keys, values), (key, value) in zip(cache, one):
            keys[:, :, :1], values[:, :, :1] = key, value
        return hidden.expand(len(col), -1)

    def _support_or_uniform(
        self,
        table: BinTable,
        token: torch.Tensor,
        a: torch.Tensor,
        b: torch.Tensor,
        uniform: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Grid bins with support: a support value inside [a, b] by its share, or the uniform draw
        by the rest's share of the points inside [a, b] (the token was drawn with these shares)."""
        values = table.support[token]  # [n, K], NaN padding
        log_weight = torch.where((values >= a[:, None]) & (values <= b[:, None]), table.support_weight[token], -math.inf)
        points = (b - a + 1).clamp(min=0) / (table.hi[token] - table.lo[token] + 1)
        log_rest = torch.log(table.rest[token] * points)
        log_rest = torch.where(log_rest.isnan(), 0.0, log_rest)  # the null token: its value is NaN anyway
        # index of the drawn support value per row; K (= values.shape[1]) is the uniform rest
        choice = gumbel_argmax(torch.cat([log_weight, log_rest.unsqueeze(1)], dim=1), generator)
        picked = values.gather(1, choice.clamp(max=values.shape[1] - 1).unsqueeze(1)).squeeze(1)
        return torch.where(choice < values.shape[1], picked, uniform)

    # ---- the step -------------------------------------------------------------------------------

    def draw(self, c: int, hidden: torch.Tensor, rows: _Rows, generator: torch.Generator) -> Draw:
        """Column c for these rows: a token (Gumbel-max, truncated to the range), then a value."""
        logits = self.model.column_logits(hidden, c).float() / self.temperature
        index = rows.share_index[:, c]
        ranged = index >= 0
        log_mass = torch.zeros(len(hidden), dtype=torch.float64, device=self.device)
        if ranged.any():  # weight each bin by the share of its mass inside the range
            log_share = self.shares[c][index.clamp(min=0)].log().float()
            truncated = torch.where(ranged[:, None], logits + log_share, logits)
            log_mass = (torch.logsumexp(truncated, dim=1) - torch.logsumexp(logits, dim=1)).double()
            logits = truncated
        if c in self.skip:  # free cells never land past the protected range (see the module doc)
            logits = torch.where(ranged[:, None], logits, logits + self.skip[c])
        if self.top_p < 1:
            logits = torch.where(ranged[:, None], logits, nucleus(logits, self.top_p))
        token = gumbel_argmax(logits, generator)
        if c not in self.bins:
            return Draw(token, torch.full_like(log_mass, -1.0), torch.full_like(logits[:, 0], 0.5), log_mass)
        value, frac = self.value_in_bin(c, token, rows.bounds[:, :, c], generator)
        return Draw(token, value, frac, log_mass)

    def value_in_bin(
        self, c: int, token: torch.Tensor, bounds: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A value within the bin (and the range), and its position within the bin: uniform, or on
        a grid one of the bin's support values by its share, else uniform over the bin's points."""
        table = self.bins[c]
        lo, hi, grid, decimals = table.lo[token], table.hi[token], table.grid, table.decimals
        low, high, snap_low, snap_high = bounds
        a, b = torch.maximum(lo, low), torch.minimum(hi, high)
        u = torch.rand(len(token), generator=generator, device=self.device, dtype=torch.float64)
        if grid:
            x = torch.minimum(torch.floor(a + u * (b - a + 1)), b)
            if table.support is not None:
                x = self._support_or_uniform(table, token, a, b, x, generator)
            position = (x - lo + 0.5) / (hi - lo + 1)
        else:
            x = torch.minimum(torch.maximum(a + u * (b - a), a), b)
            if decimals is not None:  # the emitted value is rounded: round here, stay in range
                scale = 10.0**decimals
                x = torch.minimum(torch.maximum(torch.round(x * scale) / scale, snap_low), snap_high)
            width = hi - lo
            position = torch.where(width > 0, (x - lo) / width.clamp(min=1e-300), torch.full_like(x, 0.5))
        return x, torch.nan_to_num(position, nan=0.5).clamp(0, 1).float()  # null token: NaN value


def _log(weights: np.ndarray) -> np.ndarray:
    """log with log(0) = -inf and no warning (support padding)."""
    with np.errstate(divide="ignore"):
        return np.log(weights)


def gumbel_argmax(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An exact draw from softmax(logits) per row: argmax(logits + Gumbel(0, 1) noise)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    return (logits - torch.log(-torch.log(u))).argmax(dim=1)


def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most probable tokens whose cumulative probability first reaches top_p."""
    probs = torch.softmax(logits, dim=1)
    sorted_probs, index = probs.sort(dim=1, descending=True)
    drop = sorted_probs.cumsum(dim=1) - sorted_probs > top_p
    return logits.masked_fill(torch.zeros_like(drop).scatter(1, index, drop), -math.inf)
