"""From a file to the speech an encoder embeds: decode, check, normalise loudness, keep speech.

Only audio that cannot hold a voice fails: empty, silent (peak below -70 dBFS) or, as a whole,
shorter than the encoder's minimum. When the VAD keeps less speech than the encoder needs (it
finds none in some real voices: dubbed cartoon characters, children), the clip is embedded from its
energy-trimmed signal instead, or whole when even that is too short, and the result says so
(`SpeechSamples.vad_fallback`), so a batch can count and flag such items instead of dropping them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakembed.models.registry import EncoderSpec
from speakembed.pipelines.audio.decode import check_usable, load_audio, normalize_loudness
from speakembed.pipelines.audio.vad import energy_trim_region, keep_speech, speech_regions


class SpeechSamples(np.ndarray):
    """Speech samples, float32 (samples,), that remember how they were found: `vad_fallback` is
    True when the VAD kept too little and the energy-trimmed (or whole) clip stands in for speech.

    A plain ndarray otherwise, so callers that only want samples need no change."""

    vad_fallback: bool = False

    @classmethod
    def of(cls, samples: np.ndarray, vad_fallback: bool) -> "SpeechSamples":
        """`samples` (samples,) as float32 SpeechSamples carrying the `vad_fallback` flag."""
        speech = np.asarray(samples, dtype=np.float32).view(cls)
        speech.vad_fallback = vad_fallback
        return speech

    def __array_finalize__(self, source) -> None:
        self.vad_fallback = getattr(source, "vad_fallback", False)


def prepare_speech(
    path: str | Path,
    spec: EncoderSpec,
    vad: str = "silero",
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    max_duration_s: float | None = None,
) -> SpeechSamples:
    """Speech samples of `path` (or of its region) ready for `spec`'s encoder, float32 (samples,).

    Raises the typed errors of `load_audio`, and UnusableAudioError when the audio is empty,
    silent or shorter than `spec.min_input_s`. See `speech_in_waveform` for the VAD fallback.
    """
    waveform = load_audio(
        path, spec.sample_rate, start_s=start_s, duration_s=duration_s, max_duration_s=max_duration_s
    )
    return speech_in_waveform(waveform, spec, vad, name=str(path))


def speech_in_waveform(waveform: np.ndarray, spec: EncoderSpec, vad: str = "silero", *, name: str = "audio") -> SpeechSamples:
    """The speech of a waveform at `spec.sample_rate`, loudness-normalised, float32 (samples,);
    `name` labels the errors (UnusableAudioError when empty, silent or shorter than the minimum).

    When the VAD keeps less than `spec.min_input_s` of speech, the energy-trimmed waveform is
    returned instead (the whole waveform if trimming leaves too little), with `vad_fallback` set.
    """
    check_usable(waveform, spec.sample_rate, name, spec.min_input_s)
    waveform = normalize_loudness(waveform)
    minimum = spec.min_input_s * spec.sample_rate
    speech = keep_speech(waveform, speech_regions(waveform, spec.sample_rate, vad))
    if len(speech) >= minimum:
        return SpeechSamples.of(speech, vad_fallback=False)
    start, end = energy_trim_region(waveform, spec.sample_rate)
    trimmed = waveform[start:end] if end - start >= minimum else waveform  # check_usable: long enough
    return SpeechSamples.of(trimmed, vad_fallback=True)
