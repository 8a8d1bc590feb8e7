"""Frontend + network + partial windows: waveforms in, L2-normalised speaker embeddings out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from speakembed.models.frontend import MelFrontend
from speakembed.models.normalize import l2_normalize
from speakembed.models.windows import plan_partial_windows

if TYPE_CHECKING:
    from speakembed.models.registry import EncoderSpec


@dataclass
class SpeakerEmbedder:
    """A loaded encoder ready to embed 16 kHz (or `spec.sample_rate`) mono waveforms.

    `encoder_id` names the encoder and its weights (`lstm@<sha256 prefix>`); it is written into
    every store and score file so that results from different weights are never mixed.
    """

    spec: EncoderSpec
    network: torch.nn.Module
    frontend: MelFrontend
    device: torch.device
    weights_sha256: str

    @property
    def encoder_id(self) -> str:
        """`name@hash`: the encoder family and the first 12 hex digits of its weights' sha256."""
        return f"{self.spec.name}@{self.weights_sha256[:12]}"

    @property
    def embedding_size(self) -> int:
        """Size D of the embeddings."""
        return self.spec.embedding_size

    def features(self, waveform: np.ndarray) -> torch.Tensor:
        """Frontend features of a mono waveform: (frames, n_mels), one frame per hop (10 ms)."""
        return self.frontend(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)).to(self.device))

    def slice_windows(self, features: torch.Tensor, starts: list[int]) -> torch.Tensor:
        """Windows of `spec.window_frames` frames at the given start frames: (windows, frames, n_mels)."""
        return torch.stack([features[start : start + self.spec.window_frames] for start in starts])

    def window_features(self, waveform: np.ndarray) -> torch.Tensor:
        """Partial windows covering one waveform: (num_windows, window_frames, n_mels), zero-padded;
        a clip shorter than one window is first repeated to fill it when `spec.short_clips` says so."""
        window_samples = self.spec.window_frames * self.frontend.config.hop_length
        if self.spec.short_clips == "repeat" and 0 < len(waveform) < window_samples:
            waveform = np.tile(waveform, -(-window_samples // len(waveform)))[:window_samples]
        plan = plan_partial_windows(
            len(waveform), self.frontend.config.hop_length, self.spec.window_frames, self.spec.hop_frames
        )
        padded = np.zeros(plan.padded_samples, dtype=np.float32)
        padded[: len(waveform)] = waveform
        return self.slice_windows(self.features(padded), plan.starts)

    @torch.inference_mode()
    def encode_windows(self, windows: torch.Tensor, max_windows_per_batch: int = 256) -> torch.Tensor:
        """One unit-length embedding per window: (windows, frames, n_mels) -> (windows, D)."""
        return torch.cat([self.network(batch) for batch in windows.split(max_windows_per_batch)])

    @torch.inference_mode()
    def embed(self, waveforms: list[np.ndarray], max_windows_per_batch: int = 256) -> np.ndarray:
        """Embed each waveform: (num_waveforms, embedding_size) float32, rows of unit length.

        Each waveform's partial-window embeddings are averaged and renormalised. Windows of all
        waveforms are pooled into batches of up to `max_windows_per_batch`, so many short files
        cost a few large forward passes instead of one small pass each.
        """
        if not waveforms:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        windows = [self.window_features(waveform) for waveform in waveforms]
        owner = torch.repeat_interleave(
            torch.arange(len(windows), device=self.device),
            torch.tensor([len(w) for w in windows], device=self.device),
        )
        window_embeddings = self.encode_windows(torch.cat(windows), max_windows_per_batch)
        sums = torch.zeros(len(waveforms), self.embedding_size, device=self.device)
        sums.index_add_(0, owner, window_embeddings)
        return l2_normalize(sums).cpu().numpy().astype(np.float32)


@dataclass
class WhisperEmbedder(SpeakerEmbedder):
    """Whole utterances instead of partial windows, for an encoder with `EncoderSpec.whole_utterances`
    (the Whisper family: `frontend` is a `WhisperFrontend`, `network` a `WhisperSpeakerEncoder`,
    which takes (batch, frames, n_mels) features and their (batch,) lengths).

    A waveform is cut into pieces of at most 30 s (at the quietest moment near each 30 s mark),
    each piece is encoded whole, on its own frames only, and the piece embeddings are averaged,
    weighted by their duration, then renormalised. `encode_windows` (fixed windows, as the
    diarisation window analysis uses) works as in the base class.
    """

    @torch.inference_mode()
    def embed(self, waveforms: list[np.ndarray], max_windows_per_batch: int = 8) -> np.ndarray:
        """Embed each 16 kHz waveform (samples,): (num_waveforms, embedding_size) float32, unit rows.

        Pieces of all waveforms are encoded together, `max_windows_per_batch` at a time, in order
        of length (so little padding is encoded). A waveform shorter than one 10 ms frame gives a
        zero row.
        """
        from speakembed.models.engines.asr import split_windows

        pieces, owners = [], []
        for owner, waveform in enumerate(waveforms):
            for piece in split_windows(np.asarray(waveform, dtype=np.float32)):
                if self.frontend.num_frames(len(piece)) > 0:
                    pieces.append(self.features(piece))
                    owners.append(owner)
        if not pieces:
            return np.zeros((len(waveforms), self.embedding_size), dtype=np.float32)
        embeddings = self.encode_pieces(pieces, max_windows_per_batch)
        return duration_weighted_mean(embeddings, pieces, owners, len(waveforms)).cpu().numpy().astype(np.float32)

    @torch.inference_mode()
    def encode_pieces(self, pieces: list[torch.Tensor], max_pieces_per_batch: int = 8) -> torch.Tensor:
        """One unit-length embedding per piece of (frames_i, n_mels) features: (pieces, D)."""
        return encode_pieces(self.network, pieces, max_pieces_per_batch)


def encode_pieces(network: torch.nn.Module, pieces: list[torch.Tensor], max_pieces_per_batch: int = 8) -> torch.Tensor:
    """One embedding per piece of (frames_i, n_mels) features, by a network taking (batch, frames,
    n_mels) and lengths (batch,): (pieces, D), in the order given. Pieces are batched by length and
    zero-padded to the longest of their batch (the network masks the padding)."""
    order = sorted(range(len(pieces)), key=lambda index: len(pieces[index]))
    embeddings = []
    for start in range(0, len(order), max_pieces_per_batch):
        chosen = order[start : start + max_pieces_per_batch]
        batch = torch.nn.utils.rnn.pad_sequence([pieces[index] for index in chosen], batch_first=True)
        lengths = torch.tensor([len(pieces[index]) for index in chosen], device=batch.device)
        embeddings.append(network(batch, lengths))
    return torch.cat(embeddings)[torch.argsort(torch.tensor(order))]


def duration_weighted_mean(embeddings: torch.Tensor, pieces: list[torch.Tensor], owners: list[int], count: int) -> torch.Tensor:
    """Per owner, the mean of its pieces' embeddings (pieces, D) weighted by their frame counts,
    renormalised: (count, D) unit rows (a zero row for an owner without pieces)."""
    device = embeddings.device
    lengths = torch.tensor([len(piece) for piece in pieces], device=device, dtype=embeddings.dtype)
    sums = torch.zeros(count, embeddings.shape[1], device=device, dtype=embeddings.dtype)
    sums.index_add_(0, torch.tensor(owners, device=device), embeddings * lengths[:, None])
    return l2_normalize(sums)
