"""Conv-transformer speaker encoder: log-mel frames -> conv subsampling -> transformer -> masked
mean pooling -> linear -> L2.

Input: log-mel windows (batch, frames, n_mels), 10 ms frames, as `MelConfig(log=True)` produces;
optional `lengths` (batch,) counts the valid frames of each row, the rest being padding.
Output: unit-length embeddings (batch, embedding_size).

Layout, with the default sizes (~1.4 M parameters):
  per-utterance input normalisation over the valid frames: "level" (default: one mean/variance over
  all bands, which removes the recording level and keeps the spectral envelope that carries timbre)
  or "band" (mean/variance of each mel band, which also removes the long-term spectrum; at equal
  budget it doubled the dev EER, 12.9 % vs 5.5 %; checkpoints older than the option use it)
  2 x [Conv1d over time (kernel 5, stride 2) -> LayerNorm -> GELU]   (4x fewer time steps)
  linear to d_model + positional encoding (sinusoidal or learned) + dropout
  num_layers x pre-norm TransformerEncoderLayer (GELU) with a key padding mask, final LayerNorm
  mean over valid time steps -> linear to embedding_size -> L2 normalisation

Padding never changes an embedding: padded frames are zeroed before every convolution (so a
convolution sees exactly the zeros it would pad an unpadded input with), masked out of attention
and of the pooling. LayerNorm is used instead of BatchNorm for the same reason: its statistics
are per time step, so they do not depend on padding or on the batch.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from speakembed.models.normalize import EPSILON, l2_normalize

POSITIONAL_ENCODINGS = ("sinusoidal", "learned")
INPUT_NORMALIZATIONS = ("band", "level")
CONV_KERNEL = 5
CONV_STRIDE = 2  # per block; two blocks give 40 ms time steps


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(batch, frames) bool, True on the first `lengths[i]` frames of row i."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def normalize_per_utterance(mels: torch.Tensor, mask: torch.Tensor, per_band: bool = True) -> torch.Tensor:
    """Zero mean, unit variance over each row's valid frames; padding set to 0.

    mels (batch, frames, n_mels), mask (batch, frames) bool. `per_band`: statistics of each mel
    band (removes the channel offset and the long-term spectrum); otherwise one mean and variance
    over all bands (removes the level only, keeping the spectral envelope).
    """
    valid = mask.unsqueeze(-1)
    mels = mels.masked_fill(~valid, 0.0)  # padding may hold anything, even log(0) = -inf
    reduced = (1,) if per_band else (1, 2)
    count = valid.sum(dim=1, keepdim=True).to(mels.dtype) * (1 if per_band else mels.shape[2])
    mean = mels.sum(dim=reduced, keepdim=True) / count
    variance = (mels - mean).masked_fill(~valid, 0.0).square().sum(dim=reduced, keepdim=True) / count
    # The floor keeps a constant band (e.g. at the log floor of digital silence) finite.
    return ((mels - mean) * torch.rsqrt(variance + 1e-5)).masked_fill(~valid, 0.0)


class ConvBlock(nn.Module):
    """Strided Conv1d over time -> LayerNorm over channels -> GELU, on (batch, time, channels)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, CONV_KERNEL, stride=CONV_STRIDE, padding=CONV_KERNEL // 2)
        self.norm = nn.LayerNorm(out_channels)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output steps of inputs with `lengths` valid steps (the Conv1d length formula)."""
        (kernel,), (stride,), (padding,) = self.conv.kernel_size, self.conv.stride, self.conv.padding
        return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (batch, time, in_channels) -> ((batch, time', out_channels) with padding zeroed, lengths')."""
        outputs = self.conv(inputs.transpose(1, 2)).transpose(1, 2)
        lengths = self.output_lengths(lengths)
        outputs = nn.functional.gelu(self.norm(outputs))
        return outputs * frame_mask(lengths, outputs.shape[1]).unsqueeze(-1).to(outputs.dtype), lengths


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine encodings of Vaswani et al. (2017) for up to `max_steps` steps."""

    def __init__(self, max_steps: int, d_model: int):
        super().__init__()
        position = torch.arange(max_steps, dtype=torch.float32)[:, None]
        frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_steps, d_model)
        table[:, 0::2] = torch.sin(position * frequencies)
        table[:, 1::2] = torch.cos(position * frequencies)
        # Derived from the sizes alone, so it stays out of the state dict (and the checkpoint).
        self.register_buffer("table", table, persistent=False)

    def forward(self, steps: int) -> torch.Tensor:
        """(steps, d_model)."""
        return self.table[:steps]


class LearnedPositions(nn.Module):
    """A trained (max_steps, d_model) table, initialised small as BERT does."""

    def __init__(self, max_steps: int, d_model: int):
        super().__init__()
        self.table = nn.Parameter(torch.empty(max_steps, d_model))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the position table from N(0, 0.02^2)."""
        nn.init.normal_(self.table, std=0.02)

    def forward(self, steps: int) -> torch.Tensor:
        """(steps, d_model)."""
        return self.table[:steps]


class ConvTransformerEncoder(nn.Module):
    """Log-mel windows (batch, frames, n_mels) -> embeddings (batch, embedding_size), unit length.

    max_frames: the longest input accepted, in 10 ms frames (3000 = 30 s); it sizes the
    positional table. All constructor arguments are JSON values, so `config()` round-trips
    through a checkpoint's config.json.
    """

    def __init__(self, n_mels: int = 40, channels: int = 128, d_model: int = 192, num_layers: int = 4,
                 num_heads: int = 4, ff_dim: int = 384, dropout: float = 0.1, embedding_size: int = 256,
                 positional: str = "sinusoidal", max_frames: int = 3000, normalization: str = "level"):
        super().__init__()
        self._config = {"n_mels": n_mels, "channels": channels, "d_model": d_model, "num_layers": num_layers,
                        "num_heads": num_heads, "ff_dim": ff_dim, "dropout": dropout,
                        "embedding_size": embedding_size, "positional": positional, "max_frames": max_frames,
                        "normalization": normalization}
        _validate_arguments(self._config)
        self.subsample = nn.ModuleList([ConvBlock(n_mels, channels), ConvBlock(channels, channels)])
        self.input_projection = nn.Linear(channels, d_model)
        max_steps = int(self.output_lengths(torch.tensor([max_frames]))[0])
        positions = SinusoidalPositions if positional == "sinusoidal" else LearnedPositions
        self.positions = positions(max_steps, d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, ff_dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        # Pre-norm layers leave the residual stream unnormalised: a final LayerNorm closes it.
        # The nested-tensor fast path does not support norm_first, so it is turned off explicitly.
        self.transformer = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model),
                                                 enable_nested_tensor=False)
        self.output_projection = nn.Linear(d_model, embedding_size)

    @classmethod
    def from_config(cls, config: dict) -> "ConvTransformerEncoder":
        """Rebuild from `config()` (e.g. the "arguments" of a checkpoint's config.json)."""
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown ConvTransformerEncoder arguments {unknown}; known: {', '.join(sorted(known))}")
        return cls(**config)

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable."""
        return dict(self._config)

    @property
    def max_frames(self) -> int:
        """Longest input in feature frames that the position table covers."""
        return self._config["max_frames"]

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Transformer time steps (40 ms) of inputs with `lengths` frames (10 ms), shape kept."""
        for block in self.subsample:
            lengths = block.output_lengths(lengths)
        return lengths

    def forward(self, mels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """mels (batch, frames, n_mels) log-mel; lengths (batch,) valid frames, all valid when None.

        Returns (batch, embedding_size), unit length.
        """
        lengths = checked_lengths(mels, lengths, self._config["n_mels"], self.max_frames)
        per_band = self._config["normalization"] == "band"
        hidden = normalize_per_utterance(mels, frame_mask(lengths, mels.shape[1]), per_band)
        for block in self.subsample:
            hidden, lengths = block(hidden, lengths)
        steps = hidden.shape[1]
        hidden = self.dropout(self.input_projection(hidden) + self.positions(steps))
        valid = frame_mask(lengths, steps)
        hidden = self.transformer(hidden, src_key_padding_mask=~valid)
        weights = valid.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(EPSILON)
        return l2_normalize(self.output_projection(pooled))


def checked_lengths(features: torch.Tensor, lengths: torch.Tensor | None, n_mels: int, max_frames: int) -> torch.Tensor:
    """Valid frames per row of `features` (batch, frames, n_mels), as a (batch,) long tensor on its
    device: all frames when `lengths` is None. Raises ValueError for a wrong shape, more than
    `max_frames` frames, or a length outside [1, frames]."""
    if features.dim() != 3 or features.shape[2] != n_mels:
        raise ValueError(f"expected features of shape (batch, frames, {n_mels}), got {tuple(features.shape)}")
    batch, frames, _ = features.shape
    if frames > max_frames:
        raise ValueError(f"{frames} frames exceed max_frames={max_frames}; cut the input into windows")
    if lengths is None:
        return torch.full((batch,), frames, dtype=torch.long, device=features.device)
    if lengths.shape != (batch,):
        raise ValueError(f"expected lengths of shape ({batch},), got {tuple(lengths.shape)}")
    lengths = lengths.to(device=features.device, dtype=torch.long)
    if bool(((lengths < 1) | (lengths > frames)).any()):
        raise ValueError(f"lengths must lie in [1, {frames}], got {lengths.tolist()}")
    return lengths


def _validate_arguments(config: dict) -> None:
    """Raise ValueError for sizes a checkpoint or `--set model.x=...` could get wrong."""
    for name, value in config.items():
        if name not in ("dropout", "positional", "normalization") and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    d_model, num_heads = config["d_model"], config["num_heads"]
    if d_model % num_heads or d_model % 2:
        raise ValueError(f"d_model ({d_model}) must be even and divisible by num_heads ({num_heads})")
    if not isinstance(config["dropout"], (int, float)) or not 0.0 <= config["dropout"] < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {config['dropout']!r}")
    if config["positional"] not in POSITIONAL_ENCODINGS:
        raise ValueError(f"positional must be one of {POSITIONAL_ENCODINGS}, got {config['positional']!r}")
    if config["normalization"] not in INPUT_NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {INPUT_NORMALIZATIONS}, got {config['normalization']!r}")
