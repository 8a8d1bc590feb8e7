"""prepare_speech / speech_in_waveform: a clip that holds sound but in which the VAD keeps too
little is embedded from its energy-trimmed (or whole) signal and flagged; only empty, silent and
too-short audio fails."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

import synth
from speakembed.models.registry import encoder_spec
from speakembed.pipelines.audio import speech as speech_module
from speakembed.pipelines.audio.speech import SpeechSamples, prepare_speech, speech_in_waveform
from speakembed.pipelines.base.errors import UnusableAudioError

RATE = 16000
SPEC = encoder_spec("lstm")


def quiet_tone(duration_s: float, rms_dbfs: float = -40.0) -> np.ndarray:
    """A steady 220 Hz harmonic tone: sound, but no speech to Silero (nor to the energy VAD,
    which sees no onset above its floor)."""
    time = np.arange(int(duration_s * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * k * 220 * time) / k for k in range(1, 6))
    return (tone * 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(tone**2))).astype(np.float32)


def with_silence(signal: np.ndarray, before_s: float, after_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * RATE), np.float32), signal, np.zeros(int(after_s * RATE), np.float32)])


def test_tone_that_silero_rejects_is_embedded_trimmed_and_flagged(tmp_path):
    clip = with_silence(quiet_tone(1.5), before_s=0.5, after_s=0.5)
    path = tmp_path / "cartoon.wav"
    soundfile.write(str(path), clip, RATE, subtype="PCM_16")
    speech = prepare_speech(path, SPEC, "silero")
    assert isinstance(speech, SpeechSamples) and speech.vad_fallback
    assert speech.dtype == np.float32 and speech.ndim == 1
    # the digital silence around the tone is trimmed (to the 20 ms frame), the tone itself kept
    assert abs(len(speech) - 1.5 * RATE) <= 2 * 320


def test_vad_that_finds_nothing_falls_back_to_the_energy_trimmed_clip(monkeypatch):
    monkeypatch.setattr(speech_module, "speech_regions", lambda waveform, rate, method: [])
    voice = with_silence(synth.speaker_voice("A", 2.0, RATE, seed=1), before_s=1.0, after_s=0.0)
    speech = speech_in_waveform(voice, SPEC, "silero")
    assert speech.vad_fallback
    assert 1.5 * RATE < len(speech) <= 2.0 * RATE + 320  # the leading second of zeros is gone


def test_vad_that_keeps_too_little_falls_back_too(monkeypatch):
    monkeypatch.setattr(speech_module, "speech_regions", lambda waveform, rate, method: [(0, int(0.1 * RATE))])
    speech = speech_in_waveform(synth.speaker_voice("B", 2.0, RATE, seed=2), SPEC, "energy")
    assert speech.vad_fallback and len(speech) >= SPEC.min_input_s * RATE


def test_whole_clip_is_used_when_trimming_leaves_too_little(monkeypatch):
    """A loud click in a faint hum: trimming keeps only the click, shorter than the encoder needs."""
    monkeypatch.setattr(speech_module, "speech_regions", lambda waveform, rate, method: [])
    clip = quiet_tone(1.0, rms_dbfs=-55.0)
    clip[8000:8100] = 0.9
    speech = speech_in_waveform(clip, SPEC, "silero")
    assert speech.vad_fallback and len(speech) == len(clip)


def test_speech_that_the_vad_finds_is_not_flagged():
    speech = speech_in_waveform(synth.speaker_voice("A", 2.5, RATE, seed=3), SPEC, "energy")
    assert not speech.vad_fallback and SPEC.min_input_s * RATE <= len(speech) < 2.5 * RATE


@pytest.mark.parametrize("waveform, reason", [
    (np.zeros(0, np.float32), "empty"),
    (np.zeros(2 * RATE, np.float32), "silent"),
    (np.full(2 * RATE, 1e-4, np.float32), "silent"),  # -80 dBFS: below the silence floor
    (synth.speaker_voice("A", 0.2, RATE, seed=5), "too_short"),
])
def test_empty_silent_and_too_short_audio_still_fail(waveform, reason):
    with pytest.raises(UnusableAudioError) as raised:
        speech_in_waveform(waveform, SPEC, "energy")
    assert raised.value.reason == reason
