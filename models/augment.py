"""Data augmentation for training speaker encoders: waveform noise, reverberation, gain, speed
perturbation, telephone and lossy-codec channels, and SpecAugment masks on features.

Every random draw comes from an explicit `np.random.Generator`, so a seed reproduces an output
exactly. Waveforms are mono float32 (samples,) at `sample_rate` Hz (16 kHz by default).

Speed perturbation changes pitch and formants together, so a perturbed speaker no longer sounds
like the original: as in Kaldi recipes, each (speaker, factor) of the usual 0.9 / 1.1 becomes a
new pseudo-speaker (`perturbed_speaker_label`). That belongs to data preparation, where labels
are set (`Augmenter.speed_variants`). The random chain of `Augmenter.__call__` only allows a mild
change (a few percent, `speed_perturb_fixed_length`), well inside one speaker's own variation.

The channel stages model what happens to speech after the microphone: a telephone line
(`telephone_band`: 8 kHz, 300-3400 Hz, mu-law) and a lossy codec (`lossy_round_trip`: Vorbis or
MP3 through libsndfile, in memory).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import torch

NOISE_KINDS = ("white", "pink", "babble")
SPEC_AUGMENT_FILLS = ("mean", "zero")
RT60_DECAY = 3 * np.log(10)  # amplitude falls by 60 dB (a factor 1000) over one RT60
TELEPHONE_RATE = 8000  # Hz: narrowband telephony
TELEPHONE_BAND_HZ = (300.0, 3400.0)  # the ITU-T G.712 voice channel
TELEPHONE_FILTER_ORDER = 6  # per edge and pass: 3 dB down at the band edges, over 20 dB 200 Hz beyond
G711_BITS = 8
GSM_LIKE_BITS = (5, 6)  # coarser quantisation (15-27 dB SNR), about as noisy as a low-bit-rate mobile codec
LINE_HEADROOM_DB = (0.0, 20.0)  # how far below the codec's full scale the talker's peaks reach
LOSSY_CODECS = {"vorbis": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}  # name: libsndfile (format, subtype)
CODEC_COMPRESSION = (0.0, 0.9)  # libsndfile compression level: 0 best quality, 1 lowest bit rate


def mean_power(waveform: np.ndarray) -> float:
    """Mean square, in float64 so long clips do not lose precision."""
    return float(np.mean(np.square(waveform, dtype=np.float64))) if len(waveform) else 0.0


def peak_level(waveform: np.ndarray) -> float:
    """Largest absolute sample (0 for an empty waveform)."""
    return float(np.max(np.abs(waveform))) if len(waveform) else 0.0


def synthetic_noise(kind: str, num_samples: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Unit-RMS noise (num_samples,) float32: "white", "pink" (1/f power) or "babble" (several
    speech-band noises, each switched on and off at a syllable rate, like a crowd far away)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {NOISE_KINDS}")
    if num_samples == 0:
        return np.zeros(0, dtype=np.float32)
    if kind == "white":
        noise = rng.standard_normal(num_samples)
    elif kind == "pink":
        noise = _shaped_noise(num_samples, rng, sample_rate, low_hz=0.0, high_hz=sample_rate / 2)
    else:
        noise = _babble(num_samples, rng, sample_rate)
    return (noise / np.sqrt(max(mean_power(noise), 1e-20))).astype(np.float32)


def _shaped_noise(num_samples: int, rng: np.random.Generator, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Pink (1/f power) noise restricted to [low_hz, high_hz], shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    gains = 1.0 / np.sqrt(np.maximum(frequencies, frequencies[1] if num_samples > 1 else 1.0))
    gains[(frequencies < low_hz) | (frequencies > high_hz)] = 0.0
    return np.fft.irfft(spectrum * gains, n=num_samples)


def _babble(num_samples: int, rng: np.random.Generator, sample_rate: int, voices: int = 6) -> np.ndarray:
    time = np.arange(num_samples) / sample_rate
    mixture = np.zeros(num_samples)
    for _ in range(voices):
        voice = _shaped_noise(num_samples, rng, sample_rate, low_hz=100.0, high_hz=4000.0)
        syllable_hz, phase = rng.uniform(2.0, 6.0), rng.uniform(0, 2 * np.pi)
        envelope = np.maximum(0.0, np.sin(2 * np.pi * syllable_hz * time + phase))
        mixture += voice / np.sqrt(max(mean_power(voice), 1e-20)) * envelope
    return mixture


def fit_noise(noise: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A random `num_samples` stretch of a noise recording, tiled when the recording is shorter."""
    if len(noise) == 0:
        raise ValueError("empty noise recording")
    if len(noise) < num_samples:
        noise = np.tile(noise, int(np.ceil(num_samples / len(noise))))
    start = int(rng.integers(0, len(noise) - num_samples + 1))
    return noise[start : start + num_samples]


def add_noise(waveform: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """waveform + noise scaled so that power(waveform) / power(noise) is `snr_db` dB.

    Powers are means over the whole clip; `noise` has the waveform's length (see `fit_noise`).
    A silent waveform is returned unchanged (any noise level would be an infinite SNR error).
    """
    if noise.shape != waveform.shape:
        raise ValueError(f"noise shape {noise.shape} differs from waveform shape {waveform.shape}")
    signal_power, noise_power = mean_power(waveform), mean_power(noise)
    if noise_power == 0.0:
        raise ValueError("the noise is silent; cannot reach a finite SNR")
    if signal_power == 0.0:
        return waveform.astype(np.float32, copy=True)
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (waveform + scale * noise).astype(np.float32)



def synthetic_rir(rt60_s: float, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Room impulse response (samples,) float32: a direct-path impulse followed by Gaussian noise
    decaying exponentially by 60 dB over `rt60_s` seconds (a diffuse late reverberation tail)."""
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be positive, got {rt60_s}")
    length = max(2, int(rt60_s * sample_rate))
    time = np.arange(length) / sample_rate
    response = rng.standard_normal(length) * np.exp(-RT60_DECAY * time / rt60_s)
    response[0] = 0.0
    response /= np.sqrt(np.sum(np.square(response)))
    response[0] = 1.0  # direct sound as loud as the whole tail's energy
    return response.astype(np.float32)


def reverberate(waveform: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """Causal convolution with `impulse_response`, cut to the input length and rescaled to the
    input's RMS level (the room changes the timbre, not the loudness)."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(waveform.astype(np.float64), impulse_response.astype(np.float64))[: len(waveform)]
    wet_power = mean_power(wet)
    if wet_power == 0.0:
        return waveform.astype(np.float32, copy=True)
    return (wet * np.sqrt(mean_power(waveform) / wet_power)).astype(np.float32)


def apply_gain(waveform: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by `gain_db` dB. No clipping: features are computed in float, so peaks above 1 are
    harmless, while clipping would add distortion the encoder never meets at inference."""
    return (waveform * 10 ** (gain_db / 20)).astype(np.float32)


def speed_perturb(waveform: np.ndarray, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """Play `factor` times faster (pitch and formants shift with it), as sox `speed`: the clip is
    read as if recorded at sample_rate * factor and resampled to sample_rate, so its length
    becomes len / factor."""
    from speakembed.models.signal import resample

    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    return resample(waveform.astype(np.float32, copy=False), int(round(sample_rate * factor)), sample_rate)


def speed_perturb_fixed_length(waveform: np.ndarray, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """`speed_perturb`, then cut or zero-padded at the end back to the input length (samples,)
    float32: the in-loop speed change of `Augmenter`, meant for factors within a few percent of 1."""
    return _fit_length(speed_perturb(waveform, factor, sample_rate), len(waveform))


def _fit_length(waveform: np.ndarray, num_samples: int) -> np.ndarray:
    """The first `num_samples` samples, zero-padded at the end when shorter; float32."""
    fitted = np.zeros(num_samples, dtype=np.float32)
    kept = min(num_samples, len(waveform))
    fitted[:kept] = waveform[:kept]
    return fitted


def mu_law_quantise(waveform: np.ndarray, bits: int = G711_BITS, mu: float = 255.0) -> np.ndarray:
    """Mu-law companding (G.711's curve) with `bits`-bit quantisation, expanded back: the
    quantisation noise follows the signal's level, as on a digital telephone line.

    waveform (samples,) within [-1, 1] (full scale); returns float32 of the same shape.
    """
    if bits < 2:
        raise ValueError(f"need at least 2 bits, got {bits}")
    clipped = np.clip(waveform.astype(np.float64), -1.0, 1.0)
    compressed = np.sign(clipped) * np.log1p(mu * np.abs(clipped)) / np.log1p(mu)
    steps = 2 ** (bits - 1) - 1  # per sign, around an exact zero (digital silence stays silent)
    quantised = np.round(compressed * steps) / steps
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu).astype(np.float32)


def telephone_band(waveform: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """A narrowband telephone call (samples,) float32, same length: resampled to 8 kHz,
    band-passed to 300-3400 Hz (causal Butterworth, like a line filter), mu-law coded at a
    random line level, band-passed again at the receiving end and resampled back up to
    `sample_rate`.

    Half the calls use G.711's 8 bits; the others a coarser 5 or 6 bits, a stand-in for the
    noisier low-bit-rate mobile codecs (GSM), not an implementation of one. The output keeps the
    input's level (what lies outside the band is lost).
    """
    from scipy.signal import sosfilt

    from speakembed.models.signal import resample

    if sample_rate < TELEPHONE_RATE:
        raise ValueError(f"telephone_band needs a sample rate of at least {TELEPHONE_RATE} Hz, got {sample_rate}")
    if len(waveform) == 0:
        return waveform.astype(np.float32, copy=True)
    band_pass = _telephone_filter()
    narrow = sosfilt(band_pass, resample(waveform.astype(np.float32), sample_rate, TELEPHONE_RATE))
    bits = G711_BITS if rng.random() < 0.5 else int(rng.choice(GSM_LIKE_BITS))
    full_scale = peak_level(narrow) * 10 ** (rng.uniform(*LINE_HEADROOM_DB) / 20)
    if full_scale > 0.0:
        # the receiving end filters too (G.712 masks both directions), which keeps the
        # quantisation noise inside the band
        narrow = sosfilt(band_pass, mu_law_quantise(narrow / full_scale, bits) * full_scale)
    return _fit_length(resample(narrow.astype(np.float32), TELEPHONE_RATE, sample_rate), len(waveform))


@lru_cache(maxsize=1)
def _telephone_filter() -> np.ndarray:
    from scipy.signal import butter

    return butter(TELEPHONE_FILTER_ORDER, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE, output="sos")


@lru_cache(maxsize=1)
def available_lossy_codecs() -> tuple[str, ...]:
    """The names of `LOSSY_CODECS` this machine's libsndfile can write (Vorbis from 1.0.18, MP3
    from 1.1.0)."""
    import soundfile

    return tuple(name for name, (container, subtype) in LOSSY_CODECS.items()
                 if subtype in soundfile.available_subtypes(container))


def codec_round_trip(waveform: np.ndarray, codec: str, compression_level: float,
                     sample_rate: int = 16000) -> np.ndarray:
    """Encode with a lossy `codec` ("vorbis" or "mp3") and decode again, in memory; (samples,)
    float32 of the input's length and level. `compression_level` in [0, 1]: 0 is the best
    quality, 1 the lowest bit rate (libsndfile's setting; MP3 refuses exactly 1)."""
    import soundfile

    if codec not in available_lossy_codecs():
        raise ValueError(f"codec {codec!r} is not available here; choose one of {available_lossy_codecs()}")
    if not 0.0 <= compression_level <= 1.0:
        raise ValueError(f"compression_level must lie in [0, 1], got {compression_level}")
    peak = peak_level(waveform)
    if peak == 0.0:  # silence (or nothing) codes to itself
        return waveform.astype(np.float32, copy=True)
    container, subtype = LOSSY_CODECS[codec]
    encoded = io.BytesIO()
    # Coded at full scale: the encoders take samples in [-1, 1], and a float clip may exceed it.
    soundfile.write(encoded, waveform / peak, sample_rate, format=container, subtype=subtype,
                    compression_level=compression_level)
    encoded.seek(0)
    decoded, _ = soundfile.read(encoded, dtype="float32")
    return _fit_length(decoded * peak, len(waveform))


def lossy_round_trip(waveform: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """`codec_round_trip` through a random available codec at a random compression level in
    `CODEC_COMPRESSION`; (samples,) float32, same length. 10-15 ms for a 2 s clip."""
    codecs = available_lossy_codecs()
    if not codecs:
        raise ValueError("this libsndfile writes no lossy codec (Vorbis or MP3); set codec_probability to 0")
    codec = codecs[int(rng.integers(len(codecs)))]
    return codec_round_trip(waveform, codec, float(rng.uniform(*CODEC_COMPRESSION)), sample_rate)


def perturbed_speaker_label(speaker: str, factor: float) -> str:
    """Kaldi's pseudo-speaker name for a speed-perturbed speaker: ("alice", 0.9) -> "sp0.9-alice";
    factor 1 keeps the original label."""
    return speaker if factor == 1.0 else f"sp{factor:g}-{speaker}"


def spec_augment(features: torch.Tensor, rng: np.random.Generator, time_masks: int = 1, freq_masks: int = 1,
                 max_time_width: int = 10, max_freq_width: int = 5, min_width: int = 1, fill: str = "mean") -> torch.Tensor:
    """SpecAugment (Park et al. 2019) time and frequency masking of one utterance, out of place.

    features (frames, n_mels). Draws exactly `time_masks` spans of frames and `freq_masks` bands
    of mel channels, widths uniform in [min_width, max_*_width], that never overlap or touch, so
    the requested number of masks is always visible. Masked cells get the utterance's mean
    ("mean", the natural choice for log-mels, where 0 is not silence) or 0 ("zero").
    """
    if features.dim() != 2:
        raise ValueError(f"expected features of shape (frames, n_mels), got {tuple(features.shape)}")
    if fill not in SPEC_AUGMENT_FILLS:
        raise ValueError(f"fill must be one of {SPEC_AUGMENT_FILLS}, got {fill!r}")
    frames, mels = features.shape
    value = features.mean() if fill == "mean" else torch.zeros((), dtype=features.dtype, device=features.device)
    masked = features.clone()
    for start, width in mask_spans(frames, time_masks, min_width, max_time_width, rng):
        masked[start : start + width, :] = value
    for start, width in mask_spans(mels, freq_masks, min_width, max_freq_width, rng):
        masked[:, start : start + width] = value
    return masked


def _check_range(name: str, low_high: tuple[float, float]) -> None:
    """Raise ValueError unless `low_high` is a [low, high] pair with low <= high."""
    if len(low_high) != 2 or low_high[0] > low_high[1]:
        raise ValueError(f"{name} must be a [low, high] range, got {list(low_high)}")


class _Settings:
    """Base of the frozen dataclasses of augmentation settings: `from_dict`."""

    @classmethod
    def from_dict(cls, values: Mapping):
        """Defaults overridden by `values` (JSON-style: lists for ranges); raises ValueError naming
        unknown settings."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown augmentation settings {unknown}; known: {', '.join(sorted(known))}")
        tuples = {key: tuple(value) for key, value in values.items() if isinstance(value, (list, tuple))}
        return cls(**{**values, **tuples})


@dataclass(frozen=True)
class FeatureAugmentConfig(_Settings):
    """Label-preserving augmentation of training features (frames, n_mels), in feature units:
    SpecAugment masks (`spec_augment`'s arguments), then a level shift drawn from `level_shift`
    [low, high] added to every cell (a gain change: g dB is 0.23 g in natural-log mels, g / 40 in
    Whisper's scaled log10 mels), then Gaussian noise of `noise_std`. The defaults mask one band
    and one span and change nothing else."""

    time_masks: int = 1
    freq_masks: int = 1
    max_time_width: int = 10  # frames (10 ms each)
    max_freq_width: int = 5  # mel bands
    fill: str = "mean"
    level_shift: tuple[float, float] = (0.0, 0.0)
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        _check_range("level_shift", self.level_shift)
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be non-negative, got {self.noise_std}")
        if self.fill not in SPEC_AUGMENT_FILLS:
            raise ValueError(f"fill must be one of {SPEC_AUGMENT_FILLS}, got {self.fill!r}")

    def check_fits(self, frames: int, mels: int | None = None) -> None:
        """Raise ValueError when the masks cannot fit apart in (frames, mels) features (mels None:
        the time masks only)."""
        for count, width, size, what in ((self.time_masks, self.max_time_width, frames, "frames"),
                                         (self.freq_masks, self.max_freq_width, mels, "mel bands")):
            if size is not None and not masks_fit(count, width, size):
                raise ValueError(f"{count} masks of up to {width} {what} do not fit apart in {size} {what}")


def augment_features(features: torch.Tensor, rng: np.random.Generator,
                     config: FeatureAugmentConfig = FeatureAugmentConfig()) -> torch.Tensor:
    """`config`'s augmentation of one utterance's features (frames, n_mels), out of place. The
    shift and the noise draw from `rng` only when enabled, so the default config draws exactly as
    `spec_augment` with its default arguments."""
    augmented = spec_augment(features, rng, config.time_masks, config.freq_masks, config.max_time_width,
                             config.max_freq_width, fill=config.fill)
    if config.level_shift != (0.0, 0.0):
        augmented = augmented + float(rng.uniform(*config.level_shift))
    if config.noise_std > 0:
        noise = rng.standard_normal(tuple(augmented.shape)).astype(np.float32) * config.noise_std
        augmented = augmented + torch.from_numpy(noise).to(augmented.device, augmented.dtype)
    return augmented


def masks_fit(count: int, max_width: int, size: int) -> bool:
    """Whether `count` spans of up to `max_width` cells always fit apart (one cell between) in `size`."""
    return count == 0 or count * (max_width + 1) - 1 <= size


def mask_spans(size: int, count: int, min_width: int, max_width: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`count` disjoint, non-adjacent (start, width) spans inside range(size), sorted by start.

    Widths are drawn first; the leftover cells are then split at random into the gaps before,
    between (at least one cell each) and after the spans, so every placement is reachable.
    """
    if count < 0 or min_width < 1 or max_width < min_width:
        raise ValueError(f"need count >= 0 and 1 <= min_width <= max_width, got {count}, {min_width}, {max_width}")
    if count == 0:
        return []
    if not masks_fit(count, max_width, size):
        raise ValueError(f"{count} masks of up to {max_width} cells do not fit apart in {size} cells")
    widths = rng.integers(min_width, max_width + 1, size=count)
    spare = size - int(widths.sum()) - (count - 1)  # cells left after the spans and their separators
    cuts = np.sort(rng.integers(0, spare + 1, size=count))
    gaps = np.diff(np.concatenate([[0], cuts])) + np.r_[0, np.ones(count - 1, dtype=int)]
    starts = np.cumsum(gaps + np.r_[0, widths[:-1]])
    return [(int(start), int(width)) for start, width in zip(starts, widths)]


@dataclass(frozen=True)
class AugmentConfig(_Settings):
    """Probabilities (0..1) and [low, high] ranges of the random chain; units in the names.

    `speed_range` is kept within a few percent of 1 on purpose: speed moves pitch and formants
    together, and at Kaldi's 0.9 / 1.1 the result counts as another speaker (`speed_factors`,
    offline); within +-5 % the shift (under a semitone) stays inside one speaker's own variation
    from day to day, so the label still holds.
    """

    sample_rate: int = 16000
    reverb_probability: float = 0.3
    rt60_s: tuple[float, float] = (0.2, 0.8)
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (5.0, 20.0)
    noise_kinds: tuple[str, ...] = NOISE_KINDS  # synthetic kinds, used when no noise folder is given
    noise_dir: str | None = None  # a folder of noise recordings, used instead of synthetic noise
    gain_probability: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)  # for speed_variants (new pseudo-speakers)
    speed_probability: float = 0.2  # in-loop, label-preserving speed change
    speed_range: tuple[float, float] = (0.95, 1.05)
    telephone_probability: float = 0.2  # narrowband telephone channel (telephone_band)
    codec_probability: float = 0.2  # lossy codec round trip (lossy_round_trip)

    def __post_init__(self) -> None:
        for name in ("reverb_probability", "noise_probability", "gain_probability", "speed_probability",
                     "telephone_probability", "codec_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("rt60_s", "snr_db", "gain_db", "speed_range"):
            _check_range(name, getattr(self, name))
        for name in ("rt60_s", "speed_range"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name} must be positive, got {list(getattr(self, name))}")
        unknown_kinds = sorted(set(self.noise_kinds) - set(NOISE_KINDS))
        if not self.noise_kinds or unknown_kinds:
            raise ValueError(f"noise_kinds must be a non-empty subset of {NOISE_KINDS}, got {list(self.noise_kinds)}")
        if not self.speed_factors or min(self.speed_factors) <= 0:
            raise ValueError(f"speed_factors must be positive, got {list(self.speed_factors)}")
        if self.telephone_probability > 0 and self.sample_rate < TELEPHONE_RATE:
            raise ValueError(f"telephone_probability needs a sample_rate of at least {TELEPHONE_RATE} Hz, "
                             f"got {self.sample_rate}")


class Augmenter:
    """A random, label-preserving chain in the order sound travels, each stage applied with its
    probability: a mild speed change (the talker), reverberation (the room reverberates the
    talker), additive noise (taken to be recorded as is), gain (the microphone level), then the
    channel: a telephone line and a lossy codec.

    A stage whose probability is 0 draws nothing from the rng, except the original three
    (reverberation, noise, gain), which always draw, so a chain without the speed and channel
    stages reproduces the draws of the chain that preceded them.

    `noises` (recordings at `sample_rate`) overrides `noise_dir`; both replace synthetic noise.
    """

    def __init__(self, config: Mapping | AugmentConfig | None = None, noises: Sequence[np.ndarray] | None = None):
        self.config = config if isinstance(config, AugmentConfig) else AugmentConfig.from_dict(config or {})
        if noises is None and self.config.noise_dir is not None:
            raise ValueError("noise_dir is read by speakembed.pipelines.training.augmentation.make_augmenter; "
                             "pass the loaded recordings as `noises`")
        if self.config.codec_probability > 0 and not available_lossy_codecs():
            raise ValueError("codec_probability needs a lossy codec (Vorbis or MP3), which this libsndfile "
                             "cannot write; set codec_probability to 0")
        self.noises = list(noises or [])

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augmented copy of a mono waveform (samples,), same length, float32."""
        config, rate = self.config, self.config.sample_rate
        augmented = np.array(waveform, dtype=np.float32)  # a copy: the caller's array is never changed
        if _happens(config.speed_probability, rng):
            augmented = speed_perturb_fixed_length(augmented, rng.uniform(*config.speed_range), rate)
        if rng.random() < config.reverb_probability:
            rir = synthetic_rir(rng.uniform(*config.rt60_s), rng, rate)
            augmented = reverberate(augmented, rir)
        if rng.random() < config.noise_probability and len(augmented):
            augmented = add_noise(augmented, self._noise(len(augmented), rng), rng.uniform(*config.snr_db))
        if rng.random() < config.gain_probability:
            augmented = apply_gain(augmented, rng.uniform(*config.gain_db))
        if _happens(config.telephone_probability, rng):
            augmented = telephone_band(augmented, rng, rate)
        if _happens(config.codec_probability, rng):
            augmented = lossy_round_trip(augmented, rng, rate)
        return augmented

    def _noise(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        if self.noises:
            return fit_noise(self.noises[int(rng.integers(len(self.noises)))], num_samples, rng)
        kind = self.config.noise_kinds[int(rng.integers(len(self.config.noise_kinds)))]
        return synthetic_noise(kind, num_samples, rng, self.config.sample_rate)

    def speed_variants(self, waveform: np.ndarray, speaker: str) -> list[tuple[str, np.ndarray]]:
        """(pseudo-speaker label, waveform) for each configured speed factor (Kaldi's 3-way
        speed perturbation; factor 1 returns the original speaker and waveform)."""
        return [(perturbed_speaker_label(speaker, factor), speed_perturb(waveform, factor, self.config.sample_rate))
                for factor in self.config.speed_factors]


def _happens(probability: float, rng: np.random.Generator) -> bool:
    """Whether a stage of probability `probability` applies; draws from `rng` only when it may."""
    return probability > 0 and rng.random() < probability
