"""TVAE-class variational autoencoder for tables (Xu et al., 2019), readable top to bottom.

Rows are encoded by the mode-specific codec shared with the GAN (generators/mode_codec.py);
the decoder emits a Gaussian mean for every continuous value (with a learned per-column scale)
and logits for every discrete block. `log_likelihood` returns the per-row ELBO: a lower bound on
log p(row) in the encoded space, in nats. A null cell contributes its null flag only: its value
and mode are placeholders that decoding discards, so neither training nor the bound fits them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from synthpipe.generators.base import BaseGenerator, TrainConfig
from synthpipe.generators.categorical import draw_blocks
from synthpipe.generators.mode_codec import EncodedTable

# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, data_dim: int, hidden: list[int], latent_dim: int):
        super().__init__()
        self.body = mlp([data_dim, *hidden])
        self.mu = nn.Linear(hidden[-1], latent_dim)
        self.logvar = nn.Linear(hidden[-1], latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h).clamp(-10, 10)


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, hidden: list[int], data_dim: int, n_values: int):
        super().__init__()
        self.body = nn.Sequential(mlp([latent_dim, *hidden]), nn.Linear(hidden[-1], data_dim))
        self.log_sigma = nn.Parameter(torch.full((n_values,), math.log(0.1)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


@dataclass
class TVAEConfig(TrainConfig):
    latent_dim: int = 128
    hidden_dims: tuple[int, ...] = (128, 128)
    loss_factor: float = 2.0  # weight of reconstruction against KL, as in TVAE
    epochs: int = 300
    batch_size: int = 500


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------


class TVAE(BaseGenerator):
    name = "vae"
    Config = TVAEConfig
    loss_names = ("loss", "kl")

    def _build(self) -> None:
        cfg, enc = self.config, self.codec_
        hidden = list(cfg.hidden_dims)
        self.encoder_net_ = Encoder(enc.dense_dim_, hidden, cfg.latent_dim).to(self.device_)
        self.decoder_net_ = Decoder(cfg.latent_dim, hidden[::-1], enc.dense_dim_, enc.n_values_).to(self.device_)
        params = list(self.encoder_net_.parameters()) + list(self.decoder_net_.parameters())
        self.optimizer_ = torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        spans = enc.spans_
        self._value_cols = torch.tensor([s.start for s in spans if not s.is_discrete], device=self.device_)
        self._discrete = [(s.start, s.width, s.index) for s in spans if s.is_discrete]
        # A null cell's value and mode are placeholders (the main mode's centre, see
        # ContinuousEncoder.encode) that decoding discards, so they are not part of the row's
        # likelihood: fitted, they drew the value head to the centre and collapsed its scale,
        # and non-null samples piled up at the mode centres (issue 13).
        null_code = {s.column: s.index for s in spans if s.role == "null"}
        self._value_null = torch.tensor(
            [null_code.get(s.column, -1) for s in spans if not s.is_discrete], device=self.device_
        )
        self._mode_null = {s.index: null_code[s.column] for s in spans if s.role == "mode" and s.column in null_code}
        # for sampling: blocks of equal width drawn together, [n, blocks, width] by one gather
        self._width_groups = []
        for width in sorted({w for _, w, _ in self._discrete}):
            group = [(start, index) for start, w, index in self._discrete if w == width]
            columns = torch.tensor([start + k for start, _ in group for k in range(width)], device=self.device_)
            codes = torch.tensor([index for _, index in group], device=self.device_)
            self._width_groups.append((width, columns, codes))

    def _modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder_net_, "decoder": self.decoder_net_}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer_}

    def _elbo_terms(self, values: torch.Tensor, codes: torch.Tensor, sample_z: bool) -> tuple[torch.Tensor, ...]:
        """Per-row reconstruction log-likelihood and KL divergence."""
        dense = self.codec_.to_dense(values, codes)
        mu, logvar = self.encoder_net_(dense)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample_z else mu
        out = self.decoder_net_(z).float()
        log_lik = torch.zeros(len(values), device=values.device)
        if len(self._value_cols):
            mean = torch.tanh(out[:, self._value_cols])
            log_sigma = self.decoder_net_.log_sigma
            terms = -0.5 * ((values - mean) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
            log_lik = log_lik + (terms * self._observed(codes, self._value_null)).sum(dim=1)
        for start, width, index in self._discrete:
            nll = F.cross_entropy(out[:, start : start + width], codes[:, index], reduction="none")
            if index in self._mode_null:
                nll = nll * (codes[:, self._mode_null[index]] == 0)
            log_lik = log_lik - nll
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
        return log_lik, kl.float()

    @staticmethod
    def _observed(codes: torch.Tensor, null_index: torch.Tensor) -> torch.Tensor:
        """[rows, len(null_index)]: 1 where the cell is not null (index -1: never null), else 0."""
        flags = codes[:, null_index.clamp(min=0)]
        return ((flags == 0) | (null_index < 0)).to(torch.float32)

    def _train_step(self, step: int) -> torch.Tensor:
        values, codes = self.train_
        idx = self.batch(step)
        with self.autocast():
            log_lik, kl = self._elbo_terms(values[idx], codes[idx], sample_z=True)
            loss = (-self.config.loss_factor * log_lik + kl).mean()
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_.step()
        with torch.no_grad():  # TVAE keeps the decoder's scales in a sensible range
            self.decoder_net_.log_sigma.clamp_(math.log(0.01), math.log(1.0))
        return torch.stack([loss.detach().float(), kl.detach().mean()])

    def _validation_loss(self) -> float:
        """Negative ELBO per held-out row."""
        values, codes = self.val_
        log_lik, kl = self._elbo_terms(values, codes, sample_z=False)
        return float((kl - log_lik).mean())

    def _sample_block(self, n: int, generator: torch.Generator, conditions: Any) -> EncodedTable:
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device_)
        out = self.decoder_net_(z).float()
        values = torch.zeros(n, self.codec_.n_values_, device=self.device_)
        if len(self._value_cols):
            noise = torch.randn(n, len(self._value_cols), generator=generator, device=self.device_)
            values = torch.tanh(out[:, self._value_cols]) + noise * self.decoder_net_.log_sigma.exp()
        codes = torch.zeros(n, self.codec_.n_codes_, dtype=torch.long, device=self.device_)
        u = torch.rand(n, self.codec_.n_codes_, generator=generator, device=self.device_)
        for width, columns, index in self._width_groups:
            codes[:, index] = draw_blocks(out[:, columns].view(n, len(index), width), u[:, index])
        return EncodedTable(values.cpu().numpy(), codes.cpu().numpy())

    # ---- likelihood ------------------------------------------------------------------------------

    @property
    def likelihood_kind(self) -> str:
        return "bound"

    def log_likelihood(self, data: pd.DataFrame) -> np.ndarray:
        """Per-row ELBO (nats), a lower bound on log p(row) in the encoded space."""
        self._check_fitted()
        encoded = self.codec_.encode(data)
        values, codes = self._to_device(encoded)
        out = []
        with torch.no_grad():
            for start in range(0, len(codes), 10_000):
                log_lik, kl = self._elbo_terms(values[start : start + 10_000], codes[start : start + 10_000], False)
                out.append((log_lik - kl).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _extra_state(self) -> dict[str, Any]:
        return {}
