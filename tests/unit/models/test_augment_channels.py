"""The speed and channel stages of waveform augmentation (telephone band, lossy codecs), the
reverberation decay, and the full chain with every stage switched on."""

import numpy as np
import pytest

from speakembed.models.augment import (
    Augmenter,
    available_lossy_codecs,
    codec_round_trip,
    lossy_round_trip,
    mu_law_quantise,
    reverberate,
    speed_perturb_fixed_length,
    synthetic_noise,
    synthetic_rir,
    telephone_band,
)

RATE = 16000
PROBABILITIES = ("speed_probability", "reverb_probability", "noise_probability", "gain_probability",
                 "telephone_probability", "codec_probability")


def snr_db(reference: np.ndarray, degraded: np.ndarray) -> float:
    error = reference.astype(np.float64) - degraded
    return 10 * np.log10(np.sum(np.square(reference, dtype=np.float64)) / np.sum(np.square(error)))


def band_power(waveform: np.ndarray, low_hz: float, high_hz: float) -> float:
    """Power of the waveform's spectrum between low_hz (included) and high_hz."""
    power = np.abs(np.fft.rfft(waveform.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(waveform), 1.0 / RATE)
    return float(power[(frequencies >= low_hz) & (frequencies < high_hz)].sum())


def power_change_db(before: np.ndarray, after: np.ndarray, low_hz: float, high_hz: float) -> float:
    return 10 * np.log10(band_power(after, low_hz, high_hz) / band_power(before, low_hz, high_hz))


@pytest.fixture
def white_noise() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(2 * RATE)).astype(np.float32)


@pytest.fixture
def speech_like() -> np.ndarray:
    """2 s of a 150 Hz harmonic tone, amplitude-modulated at 4 Hz."""
    time = np.arange(2 * RATE) / RATE
    tone = sum(np.sin(2 * np.pi * 150 * k * time) / k for k in range(1, 8))
    return (0.1 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * time))).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))  # both quantisers (8 bits and the coarser ones) and several line levels
def test_telephone_band_keeps_300_to_3400_hz_only(white_noise, seed):
    phoned = telephone_band(white_noise, np.random.default_rng(seed))
    assert phoned.shape == white_noise.shape and phoned.dtype == np.float32
    assert power_change_db(white_noise, phoned, 3600, RATE / 2) < -30
    assert power_change_db(white_noise, phoned, 0, 250) < -20
    assert abs(power_change_db(white_noise, phoned, 400, 3200)) < 1.0


def test_telephone_band_is_seeded_and_handles_odd_and_empty_clips(speech_like):
    odd = speech_like[:RATE + 1]
    first = telephone_band(odd, np.random.default_rng(3))
    np.testing.assert_array_equal(first, telephone_band(odd, np.random.default_rng(3)))
    assert first.shape == odd.shape
    assert telephone_band(np.zeros(0, dtype=np.float32), np.random.default_rng(0)).shape == (0,)
    with pytest.raises(ValueError):
        telephone_band(speech_like, np.random.default_rng(0), sample_rate=4000)


def test_mu_law_noise_follows_the_level():
    time = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * 440 * time)
    g711 = [snr_db(level * tone, mu_law_quantise(level * tone, 8)) for level in (1.0, 0.01)]
    assert min(g711) > 33  # a uniform 8-bit quantiser would lose 40 dB on the quiet tone
    assert abs(g711[0] - g711[1]) < 5
    assert snr_db(tone, mu_law_quantise(tone, 5)) < g711[0] - 12  # coarser: noisier
    np.testing.assert_array_equal(mu_law_quantise(np.zeros(8)), np.zeros(8))  # digital silence stays silent


def decay_time_s(waveform: np.ndarray, start: int) -> float:
    """Reverberation time from the Schroeder energy decay curve after `start` (the T20 fit,
    between -5 and -25 dB, extrapolated to 60 dB)."""
    remaining = np.cumsum(np.square(waveform[start:], dtype=np.float64)[::-1])[::-1]
    decay_db = 10 * np.log10(remaining / remaining[0])
    fitted = (decay_db <= -5) & (decay_db >= -25)
    slope_db_per_s = np.polyfit(np.flatnonzero(fitted) / RATE, decay_db[fitted], 1)[0]
    return -60 / slope_db_per_s


def test_reverberation_adds_a_tail_that_decays_over_rt60():
    click = np.zeros(int(1.5 * RATE), dtype=np.float32)
    start = RATE // 10
    click[start] = 1.0
    after_50_ms = start + RATE // 20
    measured = []
    for rt60_s in (0.3, 0.9):
        wet = reverberate(click, synthetic_rir(rt60_s, np.random.default_rng(1)))
        tail_share = np.sum(np.square(wet[after_50_ms:], dtype=np.float64)) / np.sum(np.square(wet, dtype=np.float64))
        assert tail_share > 0.03  # the dry click has none
        measured.append(decay_time_s(wet, start))
        assert abs(measured[-1] - rt60_s) < 0.15 * rt60_s
    assert measured[1] > 2 * measured[0]


@pytest.mark.parametrize("codec", available_lossy_codecs())
@pytest.mark.parametrize("compression_level", [0.0, 0.5, 0.9])
def test_codec_round_trip_is_close_but_lossy(speech_like, codec, compression_level):
    decoded = codec_round_trip(speech_like, codec, compression_level)
    assert decoded.shape == speech_like.shape and decoded.dtype == np.float32
    assert 15 < snr_db(speech_like, decoded) < 70


def test_codec_round_trip_keeps_loud_clips_level(speech_like):
    loud = 10 * speech_like  # peaks above full scale: coded at full scale, then scaled back
    decoded = codec_round_trip(loud, available_lossy_codecs()[0], 0.5)
    assert snr_db(loud, decoded) > 15


def test_lossy_round_trip_is_seeded_and_keeps_length(speech_like):
    odd = speech_like[:RATE + 7]
    first = lossy_round_trip(odd, np.random.default_rng(2))
    np.testing.assert_array_equal(first, lossy_round_trip(odd, np.random.default_rng(2)))
    assert first.shape == odd.shape and first.dtype == np.float32
    assert not np.array_equal(first, lossy_round_trip(odd, np.random.default_rng(3)))
    with pytest.raises(ValueError):
        codec_round_trip(odd, "flac", 0.5)
    with pytest.raises(ValueError):
        codec_round_trip(odd, available_lossy_codecs()[0], 1.5)


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_mild_speed_change_keeps_length_and_moves_pitch(factor):
    time = np.arange(2 * RATE) / RATE
    tone = np.sin(2 * np.pi * 1000 * time).astype(np.float32)
    faster = speed_perturb_fixed_length(tone, factor)
    assert faster.shape == tone.shape and faster.dtype == np.float32
    peak_hz = np.fft.rfftfreq(len(faster), 1.0 / RATE)[np.argmax(np.abs(np.fft.rfft(faster)))]
    assert abs(peak_hz - 1000 * factor) < 2


def only(*stages: str) -> dict:
    return {name: float(name in stages) for name in PROBABILITIES}


@pytest.mark.parametrize("stages", [(name,) for name in PROBABILITIES] + [PROBABILITIES])
def test_each_stage_is_seeded_and_varies_with_the_seed(speech_like, stages):
    augment = Augmenter(only(*stages))
    first = augment(speech_like, np.random.default_rng(7))
    np.testing.assert_array_equal(first, augment(speech_like, np.random.default_rng(7)))
    assert first.shape == speech_like.shape and first.dtype == np.float32
    assert not np.allclose(first, augment(speech_like, np.random.default_rng(8)))
    assert not np.allclose(first, speech_like)


def test_the_channel_comes_after_the_noise(speech_like):
    noisy = Augmenter(only("noise_probability"))(speech_like, np.random.default_rng(0))
    phoned = Augmenter(only("noise_probability", "telephone_probability"))(speech_like, np.random.default_rng(0))
    assert power_change_db(noisy, phoned, 3600, RATE / 2) < -30  # the noise went through the telephone too


def test_disabled_new_stages_draw_nothing(speech_like):
    rng = np.random.default_rng(0)
    Augmenter(only())(speech_like, rng)
    reference = np.random.default_rng(0)
    reference.random(3)  # reverberation, noise and gain always draw once each
    assert rng.random() == reference.random()


@pytest.mark.parametrize("settings", [{"telephone_probability": 1.5}, {"codec_probability": -0.1},
                                      {"speed_probability": 2.0}, {"speed_range": [1.05, 0.95]},
                                      {"speed_range": [0.0, 1.05]}, {"speed_range": [1.0]},
                                      {"telephone_probability": 0.5, "sample_rate": 4000}])
def test_bad_channel_settings_raise(settings):
    with pytest.raises(ValueError):
        Augmenter(settings)


def test_noise_through_the_full_chain_stays_finite():
    augment = Augmenter(only(*PROBABILITIES))
    for seed in range(5):
        noise = synthetic_noise("babble", RATE, np.random.default_rng(seed))
        assert np.isfinite(augment(noise, np.random.default_rng(seed))).all()
