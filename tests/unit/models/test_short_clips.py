"""A clip shorter than one window fills it the way the encoder was trained: repeated for the
encoders `spk train` makes (it tiles short utterances into its crops), zero-padded for the
pretrained LSTM (Resemblyzer's way)."""

import dataclasses

import numpy as np
import pytest

from speakembed.models.registry import encoder_spec, load_encoder


@pytest.fixture(scope="module")
def conv_transformer():
    return load_encoder("conv-transformer", "cpu")


def _clip(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def test_a_short_clip_is_repeated_to_fill_the_window(conv_transformer):
    clip = _clip(0.7)
    windows = conv_transformer.window_features(clip)
    tiled = np.tile(clip, 3)[: 160 * 160]
    assert windows.shape[0] == 1
    assert np.allclose(windows[0].numpy(), conv_transformer.features(tiled)[:160].numpy(), atol=1e-4)
    # no stretch of silence: every frame holds the clip's energy
    assert windows[0].min() > np.log(1e-4)


def test_zero_padding_is_kept_where_the_encoder_was_trained_so(conv_transformer):
    assert encoder_spec("lstm").short_clips == "zeros" and encoder_spec("conv-transformer").short_clips == "repeat"
    padded = dataclasses.replace(conv_transformer, spec=dataclasses.replace(conv_transformer.spec, short_clips="zeros"))
    windows = padded.window_features(_clip(0.7))
    assert windows[0, 100:].max() < np.log(1e-5)  # the frames after the clip are silence


def test_long_clips_are_windowed_as_before(conv_transformer):
    clip = _clip(3.0)
    plain = dataclasses.replace(conv_transformer, spec=dataclasses.replace(conv_transformer.spec, short_clips="zeros"))
    assert np.array_equal(conv_transformer.window_features(clip).numpy(), plain.window_features(clip).numpy())
