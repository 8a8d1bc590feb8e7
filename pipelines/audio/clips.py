"""Clips to enrol or identify: a file (or a region of one, as a segments manifest gives), or samples
already in memory with their sample rate (the Python API). Each becomes the speech an encoder
embeds through the same steps as `spk embed` (pipelines/audio/speech.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakembed.pipelines.audio.speech import SpeechSamples, prepare_speech, speech_in_waveform
from speakembed.pipelines.base.errors import SpeakEmbedError, UsageError
from speakembed.pipelines.base.progress import Progress, report_progress

BATCH_CLIPS = 32  # clips embedded together (their windows share forward passes)


@dataclass(frozen=True)
class Clip:
    """One clip. `name` labels it in ids and messages; either `path` (with an optional region,
    seconds) or `samples` (samples,) float at `sample_rate` Hz."""

    name: str
    path: Path | None = None
    samples: np.ndarray | None = None
    sample_rate: int | None = None
    start_s: float = 0.0
    duration_s: float | None = None

    @classmethod
    def of_item(cls, item) -> "Clip":
        """The clip of a `data.items.Item` (a file or a region of one), named by its item id."""
        return cls(item.item_id, Path(item.path), start_s=item.start_s, duration_s=item.duration_s)

    @classmethod
    def of_samples(cls, name: str, samples, sample_rate: int) -> "Clip":
        """A clip of samples in memory: mono (samples,) or (samples, channels), averaged to mono."""
        waveform = np.asarray(samples, dtype=np.float32)
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=1)
        if waveform.ndim != 1:
            raise UsageError(f"{name}: samples must be (samples,) or (samples, channels), got shape {waveform.shape}")
        if not sample_rate or int(sample_rate) <= 0:
            raise UsageError(f"{name}: give the sample rate of the samples (sample_rate=16000, ...)")
        return cls(name, samples=waveform, sample_rate=int(sample_rate))

    @property
    def source(self) -> str:
        """Where the clip came from: the file's absolute path, or its name for samples."""
        return str(self.path.absolute()) if self.path is not None else self.name

    def speech(self, spec, vad: str, max_duration_s: float | None = None) -> SpeechSamples:
        """The speech `spec`'s encoder embeds (see `prepare_speech`); raises its typed errors."""
        if self.path is not None:
            return prepare_speech(self.path, spec, vad, start_s=self.start_s, duration_s=self.duration_s,
                                  max_duration_s=max_duration_s)
        from speakembed.models.signal import resample

        waveform = resample(self.samples, self.sample_rate, spec.sample_rate)
        return speech_in_waveform(waveform, spec, vad, name=self.name)

    def audio_sha256(self) -> str:
        """sha256 of the audio: the file's bytes (its region's bounds too), or the float32 samples
        and rate; the same recording enrolled twice has the same hash."""
        digest = hashlib.sha256()
        if self.path is None:
            digest.update(f"{self.sample_rate}:".encode())
            digest.update(np.ascontiguousarray(self.samples, dtype=np.float32).tobytes())
            return digest.hexdigest()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if self.start_s or self.duration_s is not None:
            digest.update(f"[{self.start_s}:{self.duration_s}]".encode())
        return digest.hexdigest()


def speech_of_clips(clips: list[Clip], spec, vad: str,
                    max_duration_s: float | None = None) -> list[SpeechSamples | SpeakEmbedError]:
    """Each clip's speech, or the typed error that says why it has none (in the clips' order)."""
    results: list[SpeechSamples | SpeakEmbedError] = []
    for clip in clips:
        try:
            results.append(clip.speech(spec, vad, max_duration_s))
        except SpeakEmbedError as error:
            results.append(error)
    return results


def embed_speech(speech: list[np.ndarray], embedder, progress: Progress | None = None,
                 step: str = "embedding") -> np.ndarray:
    """Embeddings (len(speech), D) float32 of speech waveforms, BATCH_CLIPS at a time."""
    rows = [np.zeros((0, embedder.embedding_size), dtype=np.float32)]
    for first in range(0, len(speech), BATCH_CLIPS):
        rows.append(embedder.embed([np.asarray(samples) for samples in speech[first:first + BATCH_CLIPS]]))
        report_progress(progress, step, min(first + BATCH_CLIPS, len(speech)), len(speech))
    return np.concatenate(rows)
