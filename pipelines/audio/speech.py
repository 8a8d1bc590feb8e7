"""From a file to the speech an encoder embeds: decode, check, normalise loudness, keep speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakembed.models.registry import EncoderSpec
from speakembed.pipelines.audio.decode import check_usable, load_audio, normalize_loudness
from speakembed.pipelines.base.errors import UnusableAudioError
from speakembed.pipelines.audio.vad import keep_speech, speech_regions


def prepare_speech(
    path: str | Path,
    spec: EncoderSpec,
    vad: str = "silero",
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """Speech samples of `path` (or of its region) ready for `spec`'s encoder, float32 (samples,).

    Raises the typed errors of `load_audio`, and UnusableAudioError when the audio is empty,
    silent, holds no speech according to the VAD, or less speech than `spec.min_input_s`.
    """
    waveform = load_audio(
        path, spec.sample_rate, start_s=start_s, duration_s=duration_s, max_duration_s=max_duration_s
    )
    return speech_in_waveform(waveform, spec, vad, name=str(path))


def speech_in_waveform(waveform: np.ndarray, spec: EncoderSpec, vad: str = "silero", *, name: str = "audio") -> np.ndarray:
    """The speech of a waveform at `spec.sample_rate`, loudness-normalised, float32 (samples,);
    `name` labels the errors (UnusableAudioError when empty, silent, without enough speech)."""
    check_usable(waveform, spec.sample_rate, name, spec.min_input_s)
    waveform = normalize_loudness(waveform)
    speech = keep_speech(waveform, speech_regions(waveform, spec.sample_rate, vad))
    if len(speech) == 0:
        raise UnusableAudioError(
            f"{name}: the '{vad}' voice-activity detector found no speech; check the recording or "
            "try --vad energy / --vad none",
            "no_speech",
        )
    if len(speech) < spec.min_input_s * spec.sample_rate:
        raise UnusableAudioError(
            f"{name}: only {len(speech) / spec.sample_rate:.2f} s of speech, the '{spec.name}' encoder "
            f"needs {spec.min_input_s:.2f} s; give a longer recording (or try --vad none)",
            "too_short",
        )
    return speech
