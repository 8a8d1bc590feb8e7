"""First pass of diarisation: stream a recording once, block by block, and keep only what the
later stages need — speech regions and one speaker embedding per sliding window.

Memory stays bounded by the block length: audio is decoded, resampled, voice-detected and
embedded block by block, and only the regions and window embeddings (1 KB per window) remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speakembed.models.embedder import SpeakerEmbedder
from speakembed.pipelines.audio.decode import INT16_MAX, stream_audio
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.audio.vad import speech_regions

VAD_CONTEXT_S = 1.0  # audio before a block that the VAD sees again, so regions join across blocks
LOUDNESS_TARGET_DBFS = -30.0  # as the encoder's training data (Resemblyzer's normalisation)


@dataclass
class WindowAnalysis:
    """Sample rate in Hz; regions and window starts in samples; embeddings (windows, D) float32."""

    sample_rate: int
    num_samples: int
    speech: list[tuple[int, int]]
    window_starts: np.ndarray
    window_samples: int
    embeddings: np.ndarray

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        return self.num_samples / self.sample_rate

    @property
    def speech_s(self) -> float:
        """Seconds of speech the VAD kept."""
        return sum(end - start for start, end in self.speech) / self.sample_rate

    def window_centres_s(self) -> np.ndarray:
        """Centre time of every analysis window, (windows,) in seconds."""
        return (self.window_starts + self.window_samples / 2) / self.sample_rate


def analyse_recording(path: Path, embedder: SpeakerEmbedder, *, vad: str, hop_s: float, min_speech_fraction: float,
                      block_s: float = 60.0, total_s: float | None = None, progress: Progress | None = None) -> WindowAnalysis:
    """Speech regions and sliding-window embeddings of one recording, in one streaming pass.

    Windows are the encoder's native length (`spec.window_frames`), start every `hop_s` seconds
    and are embedded when at least `min_speech_fraction` of them is speech. Each window is
    loudness-normalised on its own speech, as whole utterances are before embedding.
    """
    rate = embedder.spec.sample_rate
    hop_length = embedder.frontend.config.hop_length
    hop = max(hop_length, int(round(hop_s * rate / hop_length)) * hop_length)  # whole feature frames
    window = embedder.spec.window_frames * hop_length
    state = _StreamState(rate, window, hop)
    for block in stream_audio(path, rate, block_s):
        state.add_block(block, vad)
        state.embed_ready_windows(embedder, min_speech_fraction, final=False)
        report_progress(progress, "analysing audio", int(state.num_samples / rate), int(total_s or 0))
    state.embed_ready_windows(embedder, min_speech_fraction, final=True)
    return state.result(embedder.embedding_size)


class _StreamState:
    """The rolling buffer of a streaming pass and what has been found so far."""

    def __init__(self, rate: int, window: int, hop: int):
        self.rate, self.window, self.hop = rate, window, hop
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0  # global index of buffer[0]
        self.num_samples = 0
        self.next_window = 0  # global start of the next window to embed
        self.speech: list[tuple[int, int]] = []
        self.starts: list[int] = []
        self.embeddings: list[np.ndarray] = []

    def add_block(self, block: np.ndarray, vad: str) -> None:
        block_start = self.num_samples
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)])
        self.num_samples += len(block)
        context_start = max(self.buffer_start, block_start - int(VAD_CONTEXT_S * self.rate))
        seen = self.buffer[context_start - self.buffer_start :]
        for start, end in speech_regions(seen, self.rate, vad):
            self._add_region(max(start + context_start, block_start), end + context_start)

    def _add_region(self, start: int, end: int) -> None:
        if end <= start:
            return
        if self.speech and start <= self.speech[-1][1]:
            self.speech[-1] = (self.speech[-1][0], max(self.speech[-1][1], end))
        else:
            self.speech.append((start, end))

    def embed_ready_windows(self, embedder: SpeakerEmbedder, min_speech_fraction: float, *, final: bool) -> None:
        """Embed every window that lies wholly inside the audio seen so far; at the end of a
        recording shorter than one window, its one zero-padded window."""
        starts = []
        while self.next_window + self.window <= self.num_samples:
            starts.append(self.next_window)
            self.next_window += self.hop
        if final and self.next_window == 0 and self.num_samples > 0:
            starts.append(0)
            self.next_window = self.hop
        chosen = [start for start in starts if self._speech_samples(start, start + self.window) >= min_speech_fraction * min(self.window, self.num_samples)]
        if chosen:
            self._embed(embedder, chosen)
        # keep the VAD context and the audio of windows not yet embedded
        self._trim(max(self.buffer_start, min(self.next_window, self.num_samples - int(VAD_CONTEXT_S * self.rate))))

    def _speech_samples(self, start: int, end: int) -> int:
        return sum(min(end, b) - max(start, a) for a, b in self._overlapping(start, end))

    def _overlapping(self, start: int, end: int):
        """Speech regions overlapping [start, end). Windows are always near the end of what has
        been seen, so the sorted regions are walked backwards: the cost does not grow with the
        recording's length."""
        for region_start, region_end in reversed(self.speech):
            if region_end <= start:
                return
            if region_start < end:
                yield region_start, region_end

    def _embed(self, embedder: SpeakerEmbedder, starts: list[int]) -> None:
        first, last_end = starts[0], starts[-1] + self.window
        audio = np.zeros(last_end - first, dtype=np.float32)
        available = self.buffer[first - self.buffer_start : last_end - self.buffer_start]
        audio[: len(available)] = available
        hop_length = embedder.frontend.config.hop_length
        windows = embedder.slice_windows(embedder.features(audio), [(start - first) // hop_length for start in starts])
        gains = torch.tensor([self._power_gain(audio, first, start) for start in starts], dtype=windows.dtype)
        embeddings = embedder.encode_windows(windows * gains.to(windows.device)[:, None, None])
        self.starts.extend(starts)
        self.embeddings.append(embeddings.cpu().numpy())

    def _power_gain(self, audio: np.ndarray, first: int, start: int) -> float:
        """Feature (power) scale that raises the window's speech to the target loudness."""
        end = start + self.window
        parts = [audio[max(a, start) - first : min(b, end) - first] for a, b in reversed(list(self._overlapping(start, end)))]
        speech = np.concatenate(parts) if parts else audio[start - first : end - first]
        rms = float(np.sqrt(np.mean(np.square(speech.astype(np.float64) * INT16_MAX)))) if len(speech) else 0.0
        if rms == 0.0:
            return 1.0
        change_db = max(0.0, LOUDNESS_TARGET_DBFS - 20 * np.log10(rms / INT16_MAX))
        return float(10 ** (change_db / 10))  # amplitude gain squared: the features are power

    def _trim(self, keep_from: int) -> None:
        self.buffer = self.buffer[keep_from - self.buffer_start :]
        self.buffer_start = keep_from

    def result(self, embedding_size: int) -> WindowAnalysis:
        embeddings = np.concatenate(self.embeddings) if self.embeddings else np.zeros((0, embedding_size), np.float32)
        return WindowAnalysis(self.rate, self.num_samples, self.speech, np.array(self.starts, dtype=np.int64),
                              self.window, embeddings)
