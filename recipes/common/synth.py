"""Synthetic "speakers" for tests: cheap source-filter voices, so no test needs real recordings.

A voice is a harmonic (glottal-like) source at a slowly wandering fundamental f0, shaped by a
-6 dB/octave spectral tilt, passed through a cascade of formant resonators (the Klatt cascade
form) whose frequencies glide between vowel targets, gated by a syllable-rate envelope with
pauses, with short fricative-like noise bursts at syllable onsets. Distinct f0 and formants give
distinct long-term spectra, which is what a speaker encoder keys on; different seeds give
different "utterances" (timing, vowels, intonation) of the same speaker.

The moving formants and the fricatives matter: with fixed formants Silero VAD (the pipeline's
VAD) finds no speech in these clips; with them it marks the syllables as speech and the pauses
as non-speech, as an energy VAD does.

Nothing here reads or downloads anything. All rates in Hz, durations in seconds, levels in dBFS.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile
from scipy.signal import butter, lfilter

PEAK_DBFS = -3.0
SYLLABLE_RATE_HZ = 4.0  # typical speech syllable rate; energy VADs expect modulation around 2-8 Hz
HARMONIC_CEILING_HZ = 8000.0  # no harmonics above this: speech holds little energy there, and it bounds the cost
NOISE_FLOOR_DBFS = -65.0  # pauses hold a faint room-noise floor rather than digital zeros, as real recordings do
VOWEL_STEP_S = 0.125  # a new vowel target twice per syllable; formants glide linearly between targets
FILTER_HOP_S = 0.005  # formant coefficients are updated every 5 ms (filter state carries across)

# Formant ratios to a speaker's neutral (schwa-like) formants for a few vowel qualities: the
# speaker's vocal tract sets the scale, the vowel sets the pattern (roughly /ə i u a e o/).
VOWEL_RATIOS = np.array(
    [[1.0, 1.0, 1.0], [0.45, 1.9, 1.2], [0.5, 0.75, 0.95], [1.2, 1.05, 1.0], [0.6, 1.6, 1.1], [0.75, 0.8, 0.9]]
)


class Speaker(NamedTuple):
    """A synthetic speaker: mean fundamental frequency and formant centre frequencies, in Hz."""

    f0_hz: float
    formants_hz: tuple[float, ...]


# Far enough apart in f0 and vocal-tract shape that their long-term spectra clearly differ.
SPEAKERS: dict[str, Speaker] = {
    "A": Speaker(105.0, (640.0, 1150.0, 2450.0)),  # low adult male
    "B": Speaker(215.0, (850.0, 1700.0, 2950.0)),  # adult female
    "C": Speaker(300.0, (1000.0, 2150.0, 3350.0)),  # child-like, short vocal tract
    "D": Speaker(140.0, (480.0, 1550.0, 2550.0)),  # second male, different vowel space
}


def voice(
    f0_hz: float,
    formants_hz: tuple[float, ...] | list[float],
    duration_s: float,
    sample_rate: int = 16000,
    seed: int = 0,
) -> np.ndarray:
    """A speech-like mono waveform, float32, shape (round(duration_s * sample_rate),), peak -3 dBFS."""
    rng = np.random.default_rng(seed)
    num_samples = int(round(duration_s * sample_rate))
    if num_samples == 0:
        return np.zeros(0, dtype=np.float32)
    source = _glottal_source(f0_hz, num_samples, sample_rate, rng)
    source += rng.normal(0.0, 0.02, num_samples)  # aspiration: a voice is never a pure harmonic series
    tracks = _formant_tracks(np.asarray(formants_hz, dtype=np.float64), num_samples, sample_rate, rng)
    voiced = _formant_filter(source, tracks, sample_rate)
    envelope, onsets = _syllable_envelope(num_samples, sample_rate, rng)
    speech = voiced / np.max(np.abs(voiced)) * envelope
    speech += _fricatives(onsets, num_samples, sample_rate, rng)
    speech += rng.normal(0.0, 10 ** (NOISE_FLOOR_DBFS / 20), num_samples)
    return scale_peak(speech, PEAK_DBFS)


def speaker_voice(name: str, duration_s: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """`voice` for the named entry of SPEAKERS."""
    f0_hz, formants_hz = SPEAKERS[name]
    return voice(f0_hz, formants_hz, duration_s, sample_rate, seed)


def to_channels(waveform: np.ndarray, channels: int, sample_rate: int) -> np.ndarray:
    """Shape (samples, channels). Extra channels are delayed (0.5 ms per channel) and quieter copies,
    so a downmix differs from any single channel, as with a real stereo microphone pair."""
    if channels == 1:
        return waveform
    delay = max(1, int(0.0005 * sample_rate))
    columns = [np.concatenate([np.zeros(c * delay, np.float32), waveform[: len(waveform) - c * delay]]) * 0.8**c
               for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


def scale_peak(waveform: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale so the largest absolute sample sits at `target_dbfs`; silence is returned unchanged."""
    peak = float(np.max(np.abs(waveform))) if len(waveform) else 0.0
    if peak == 0.0:
        return waveform.astype(np.float32)
    return (waveform * (10 ** (target_dbfs / 20) / peak)).astype(np.float32)


@functools.cache
def can_write(format: str) -> bool:
    """Whether this libsndfile build encodes `format` (MP3 needs libsndfile >= 1.1 built with LAME)."""
    try:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(1600, np.float32), 16000, format=format)
        return True
    except Exception:  # soundfile raises TypeError, ValueError or LibsndfileError depending on the build
        return False


@dataclass(frozen=True)
class ClipSpec:
    """One file of the `audio_dir` fixture: where it goes and what it must hold when read back."""

    path: str  # relative to the fixture folder; the top folder names the speaker (spkA -> "A")
    duration_s: float
    sample_rate: int = 16000
    channels: int = 1
    subtype: str | None = "PCM_16"  # None: the container's own codec (Vorbis, MPEG layer III)
    seed: int = 0

    @property
    def speaker(self) -> str:
        return self.path.split("/")[0].removeprefix("spk")

    @property
    def format(self) -> str:
        return {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}[self.path.rsplit(".", 1)[1].lower()]

    @property
    def lossy(self) -> bool:
        return self.format in ("OGG", "MP3")


# The nested folder the `audio_dir` fixture writes: 3 speakers, mixed formats, rates, channel
# counts, sample types and a non-ASCII name. MP3 entries are left out where libsndfile cannot encode.
AUDIO_DIR_LAYOUT: tuple[ClipSpec, ...] = (
    ClipSpec("spkA/a1.wav", 2.0, subtype="PCM_16", seed=1),
    ClipSpec("spkA/a2.flac", 2.5, seed=2),
    ClipSpec("spkA/a3_stereo_44k.wav", 2.0, sample_rate=44100, channels=2, seed=3),
    ClipSpec("spkB/b1.wav", 2.0, subtype="FLOAT", seed=11),
    ClipSpec("spkB/b2.ogg", 2.5, subtype=None, seed=12),
    ClipSpec("spkB/bébé_ü.wav", 2.0, seed=13),
    ClipSpec("spkC/c1.mp3", 3.0, subtype=None, seed=21),
    ClipSpec("spkC/c2.wav", 2.0, seed=22),
    ClipSpec("spkC/c3.flac", 2.0, seed=23),
)


def write_spec(root: Path, spec: ClipSpec) -> Path:
    """Synthesise and write one ClipSpec under `root`; returns the file's path."""
    path = root / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    waveform = speaker_voice(spec.speaker, spec.duration_s, spec.sample_rate, spec.seed)
    samples = to_channels(waveform, spec.channels, spec.sample_rate)
    soundfile.write(str(path), samples, spec.sample_rate, format=spec.format, subtype=spec.subtype)
    return path


def _glottal_source(f0_hz: float, num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics of a wandering f0 with amplitude 1/k (-6 dB/octave: glottal -12 plus lip radiation +6)."""
    t = np.arange(num_samples) / sample_rate
    # Intonation: a slow rise/fall (~0.4 Hz) plus jitter, random values at 25 Hz interpolated so that
    # f0 moves smoothly instead of jumping sample to sample.
    control = rng.normal(0.0, 0.012, size=int(t[-1] * 25) + 2)
    jitter = np.interp(t * 25, np.arange(len(control)), control)
    f0 = f0_hz * (1 + 0.05 * np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 2 * np.pi)) + jitter)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    # Highest harmonic stays below the ceiling and Nyquist even at the top of the f0 excursion.
    ceiling = min(HARMONIC_CEILING_HZ, 0.45 * sample_rate)
    num_harmonics = max(1, int(ceiling // float(f0.max())))
    source = np.zeros(num_samples)
    for k in range(1, num_harmonics + 1):
        source += np.sin(k * phase) / k
    return source


def _formant_tracks(
    formants_hz: np.ndarray, num_samples: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Per-sample formant frequencies, shape (samples, formants): glides between random vowel targets."""
    knots = np.arange(0, num_samples + int(VOWEL_STEP_S * sample_rate), int(VOWEL_STEP_S * sample_rate))
    ratios = np.ones((len(knots), len(formants_hz)))
    width = min(len(formants_hz), VOWEL_RATIOS.shape[1])  # formants beyond the third keep their place
    ratios[:, :width] = VOWEL_RATIOS[rng.integers(len(VOWEL_RATIOS), size=len(knots)), :width]
    samples = np.arange(num_samples)
    tracks = np.stack([np.interp(samples, knots, ratios[:, j]) for j in range(len(formants_hz))], axis=1)
    return np.minimum(tracks * formants_hz, 0.45 * sample_rate)


def _formant_filter(signal: np.ndarray, tracks: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cascade of second-order resonators with unity gain at DC (Klatt 1980's cascade branch).

    Coefficients follow `tracks` (Hz, shape (samples, formants)) in 5 ms hops; each resonator's
    state carries over between hops so the glides do not click.
    """
    hop = max(1, int(FILTER_HOP_S * sample_rate))
    states = [np.zeros(2) for _ in range(tracks.shape[1])]
    output = np.empty_like(signal)
    for start in range(0, len(signal), hop):
        block = signal[start : start + hop]
        for j, frequency in enumerate(tracks[start]):
            bandwidth = 50.0 + 0.05 * frequency  # wider at higher formants, as in measured vowels
            r = np.exp(-np.pi * bandwidth / sample_rate)
            a = [1.0, -2 * r * np.cos(2 * np.pi * frequency / sample_rate), r * r]
            block, states[j] = lfilter([sum(a)], a, block, zi=states[j])
        output[start : start + hop] = block
    return output


def _fricatives(onsets: np.ndarray, num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited noise bursts (2.5-7 kHz, 40-90 ms) centred on syllable onsets, like /s/, /t/, /f/."""
    nyquist = 0.5 * sample_rate
    b, a = butter(2, [2500 / nyquist, min(7000, 0.9 * nyquist) / nyquist], btype="band")
    noise = lfilter(b, a, rng.normal(0.0, 1.0, num_samples))
    noise /= np.max(np.abs(noise))
    gain = np.zeros(num_samples)
    for onset in onsets:
        length = int(rng.uniform(0.04, 0.09) * sample_rate)
        start = max(0, onset - length // 2)
        span = gain[start : start + length]
        span[:] = np.hanning(len(span)) * rng.uniform(0.2, 0.5)
    return noise * gain


def _syllable_envelope(num_samples: int, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude envelope (syllables ~4 Hz, words of 2-4 syllables, pauses 0.15-0.35 s) and syllable onsets.

    Pauses are true gaps in the envelope, so a VAD sees speech and non-speech regions.
    Speech starts after 30 ms, so even a 0.2 s clip holds a syllable.
    """
    envelope = np.zeros(num_samples)
    onsets = []
    position = int(0.03 * sample_rate)
    while position < num_samples:
        for _ in range(rng.integers(2, 5)):  # one "word"
            length = int(rng.uniform(0.7, 1.3) / SYLLABLE_RATE_HZ * sample_rate)
            end = min(position + length, num_samples)
            shape = np.hanning(length + 2)[1:-1] ** 0.5 * rng.uniform(0.5, 1.0)
            envelope[position:end] = shape[: end - position]
            onsets.append(position)
            position = end + int(rng.uniform(0.0, 0.03) * sample_rate)  # brief closure between syllables
            if position >= num_samples:
                break
        position += int(rng.uniform(0.15, 0.35) * sample_rate)
    fade = min(num_samples, int(0.01 * sample_rate))
    envelope[num_samples - fade :] *= np.linspace(1.0, 0.0, fade)  # no click where the clip is cut
    return envelope, np.asarray(onsets, dtype=np.int64)
