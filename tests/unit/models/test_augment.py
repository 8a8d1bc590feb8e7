"""Waveform augmentations, speed perturbation labels and SpecAugment masks."""

import numpy as np
import pytest
import soundfile
import torch

from speakembed.models.augment import (
    Augmenter,
    add_noise,
    fit_noise,
    mask_spans,
    perturbed_speaker_label,
    reverberate,
    spec_augment,
    speed_perturb,
    synthetic_noise,
    synthetic_rir,
)
from speakembed.pipelines.base.errors import InputNotFoundError
from speakembed.pipelines.training.augmentation import load_noise_folder

RATE = 16000


def level_db(waveform: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(waveform, dtype=np.float64)))


@pytest.fixture
def speech_like() -> np.ndarray:
    """2 s of a 150 Hz harmonic tone, amplitude-modulated at 4 Hz."""
    time = np.arange(2 * RATE) / RATE
    tone = sum(np.sin(2 * np.pi * 150 * k * time) / k for k in range(1, 8))
    return (0.1 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * time))).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_added_noise_has_the_requested_snr(speech_like, kind, snr_db):
    noise = synthetic_noise(kind, len(speech_like), np.random.default_rng(0))
    noisy = add_noise(speech_like, noise, snr_db)
    measured = level_db(speech_like) - level_db(noisy - speech_like)
    assert abs(measured - snr_db) < 0.5


def test_noise_folder_is_loaded_and_fitted(tmp_path, speech_like):
    soundfile.write(tmp_path / "hum.wav", 0.05 * np.random.default_rng(1).standard_normal(RATE // 2), RATE)
    soundfile.write(tmp_path / "silence.wav", np.zeros(RATE), RATE)
    noises = load_noise_folder(tmp_path)
    assert len(noises) == 1  # the silent file is skipped
    noise = fit_noise(noises[0], len(speech_like), np.random.default_rng(0))  # tiled: shorter than the clip
    noisy = add_noise(speech_like, noise, 5.0)
    assert abs(level_db(speech_like) - level_db(noisy - speech_like) - 5.0) < 0.5
    with pytest.raises(InputNotFoundError):
        load_noise_folder(tmp_path / "missing")


def test_reverberation_keeps_length_and_level(speech_like):
    for rt60_s in (0.2, 0.6, 1.0):
        wet = reverberate(speech_like, synthetic_rir(rt60_s, np.random.default_rng(3)))
        assert wet.shape == speech_like.shape and wet.dtype == np.float32
        assert abs(level_db(wet) - level_db(speech_like)) < 1.0
        assert not np.allclose(wet, speech_like)


def test_impulse_response_decays_by_60_db_over_rt60():
    rir = synthetic_rir(0.5, np.random.default_rng(4))
    assert len(rir) == RATE // 2
    head, tail = rir[1:800], rir[-800:]  # first and last 50 ms of the tail
    assert 50 < level_db(head) - level_db(tail) < 70


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_length_by_one_over_factor(speech_like, factor):
    perturbed = speed_perturb(speech_like, factor)
    assert abs(len(perturbed) - len(speech_like) / factor) <= 1


def test_perturbed_speaker_labels():
    assert perturbed_speaker_label("alice", 0.9) == "sp0.9-alice"
    assert perturbed_speaker_label("alice", 1.1) == "sp1.1-alice"
    assert perturbed_speaker_label("alice", 1.0) == "alice"
    variants = Augmenter().speed_variants(np.zeros(RATE, dtype=np.float32), "bob")
    assert [label for label, _ in variants] == ["sp0.9-bob", "bob", "sp1.1-bob"]


def test_augmenter_is_reproducible(speech_like):
    augment = Augmenter({"noise_probability": 1.0, "reverb_probability": 1.0, "gain_probability": 1.0})
    first = augment(speech_like, np.random.default_rng(7))
    again = augment(speech_like, np.random.default_rng(7))
    other = augment(speech_like, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert first.shape == speech_like.shape and first.dtype == np.float32
    assert not np.allclose(first, other)


def test_augmenter_with_zero_probabilities_is_the_identity(speech_like):
    augment = Augmenter({name: 0 for name in ("noise_probability", "reverb_probability", "gain_probability",
                                              "speed_probability", "telephone_probability", "codec_probability")})
    output = augment(speech_like, np.random.default_rng(0))
    np.testing.assert_array_equal(output, speech_like)
    assert output is not speech_like


@pytest.mark.parametrize("settings", [{"noise_probability": 2.0}, {"snr_db": [20, 5]}, {"noise_kinds": ["brown"]},
                                      {"rt60_s": [0, 1]}, {"speed_factor": [1.0]}])
def test_bad_augment_settings_raise(settings):
    with pytest.raises(ValueError):
        Augmenter(settings)


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_spec_augment_masks_the_requested_bands(fill):
    features = torch.randn(160, 40) - 5.0
    masked = spec_augment(features, np.random.default_rng(0), time_masks=2, freq_masks=3,
                          max_time_width=10, max_freq_width=4, fill=fill)
    value = 0.0 if fill == "zero" else features.mean().item()
    band_masked = (masked == value).all(dim=0).numpy()
    frame_masked = (masked == value).all(dim=1).numpy()
    assert _count_runs(band_masked) == 3 and 3 <= band_masked.sum() <= 12
    assert _count_runs(frame_masked) == 2 and 2 <= frame_masked.sum() <= 20
    keep = ~torch.from_numpy(band_masked)[None, :] & ~torch.from_numpy(frame_masked)[:, None]
    assert torch.equal(masked[keep], features[keep])  # the rest is untouched
    np.testing.assert_array_equal(features.numpy(), features.numpy())  # input not modified in place


def test_spec_augment_is_reproducible_and_validates():
    features = torch.randn(100, 40)
    first = spec_augment(features, np.random.default_rng(5))
    np.testing.assert_array_equal(first.numpy(), spec_augment(features, np.random.default_rng(5)).numpy())
    with pytest.raises(ValueError):
        spec_augment(torch.randn(2, 100, 40), np.random.default_rng(0))
    with pytest.raises(ValueError):
        spec_augment(features, np.random.default_rng(0), freq_masks=10, max_freq_width=5)  # cannot fit apart


def test_mask_spans_are_disjoint_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(200):
        spans = mask_spans(20, 3, 1, 5, rng)
        assert len(spans) == 3
        assert spans[0][0] >= 0 and spans[-1][0] + spans[-1][1] <= 20
        assert all(start + width < next_start for (start, width), (next_start, _) in zip(spans, spans[1:]))


def _count_runs(flags: np.ndarray) -> int:
    return int(np.sum(np.diff(np.concatenate([[0], flags.astype(int)])) == 1))
