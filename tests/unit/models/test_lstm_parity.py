"""Our LSTM encoder, frontend and windowing against Resemblyzer's own code and weights."""


import numpy as np
import pytest
import torch

from speakembed.models.frontend import MelFrontend, slaney_mel_filterbank
from speakembed.models.registry import load_encoder
from speakembed.models.windows import plan_partial_windows
from speakembed.pipelines.audio.decode import load_audio, normalize_loudness
from helpers import REPOSITORY

EXAMPLES = sorted((REPOSITORY / "examples" / "audio").glob("*.flac"))
resemblyzer = pytest.importorskip("resemblyzer", reason="parity needs resemblyzer (pip install --no-deps resemblyzer)")
librosa = pytest.importorskip("librosa")


@pytest.fixture(scope="module")
def reference_encoder():
    return resemblyzer.VoiceEncoder("cpu", verbose=False)


@pytest.fixture(scope="module")
def our_encoder():
    return load_encoder("lstm", "cpu")


def test_mel_filterbank_matches_librosa():
    ours = slaney_mel_filterbank(16000, 400, 40)
    theirs = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)


def test_mel_features_match_resemblyzer_preprocessing():
    waveform = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    theirs = resemblyzer.audio.wav_to_mel_spectrogram(waveform)
    ours = MelFrontend()(torch.from_numpy(waveform)).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-6 * theirs.max())


@pytest.mark.parametrize("num_samples", [100, 8000, 16000, 25600, 25700, 30000, 48000, 123456])
def test_partial_windows_match_resemblyzer_slices(num_samples):
    # rate 1.25 windows/s = a hop of 80 frames = our 50 % overlap of 160-frame windows
    _, mel_slices = resemblyzer.VoiceEncoder.compute_partial_slices(num_samples, rate=1.25, min_coverage=0.75)
    plan = plan_partial_windows(num_samples, hop_length=160, window_frames=160, hop_frames=80)
    assert plan.starts == [window.start for window in mel_slices]
    assert plan.padded_samples >= num_samples


@pytest.mark.skipif(len(EXAMPLES) < 3, reason="examples/audio is missing")
def test_embeddings_match_resemblyzer_embed_utterance(reference_encoder, our_encoder):
    waveforms = [normalize_loudness(load_audio(path)) for path in EXAMPLES]
    waveforms.append(np.concatenate(waveforms[:3]))  # a long input: many windows
    ours = our_encoder.embed(waveforms)
    theirs = np.stack([reference_encoder.embed_utterance(w, rate=1.25) for w in waveforms])
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() >= 0.999, cosines
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.skipif(len(EXAMPLES) < 3, reason="examples/audio is missing")
def test_batching_does_not_change_embeddings(our_encoder):
    waveforms = [normalize_loudness(load_audio(path)) for path in EXAMPLES]
    together = our_encoder.embed(waveforms, max_windows_per_batch=7)
    alone = np.concatenate([our_encoder.embed([w]) for w in waveforms])
    np.testing.assert_allclose(together, alone, atol=1e-5)
