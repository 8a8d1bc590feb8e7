"""WhisperSpeakerEncoder and WhisperEmbedder on a tiny random Whisper (fast, no weights needed):
masked pooling, sliced vs padded computation, unit norm, freezing, layer weights, long inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from speakembed.models.embedder import WhisperEmbedder  # noqa: E402
from speakembed.models.frontend import WhisperFrontend, whisper_log_mel  # noqa: E402
from speakembed.models.registry import encoder_spec  # noqa: E402
from speakembed.models.whisper_encoder import WhisperSpeakerEncoder  # noqa: E402

TINY = {"num_mel_bins": 80, "d_model": 32, "encoder_layers": 3, "encoder_attention_heads": 4,
        "encoder_ffn_dim": 64, "max_source_positions": 1500}
RATE = 16000


def tiny_encoder(seed: int = 0, **options) -> WhisperSpeakerEncoder:
    torch.manual_seed(seed)
    return WhisperSpeakerEncoder(TINY, **{"head_hidden": 24, "embedding_size": 16, **options}).eval()


def features(frames: int, seed: int = 0) -> torch.Tensor:
    """Whisper-like log-mel frames (frames, 80)."""
    return torch.randn(frames, 80, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_output_is_unit_length_with_and_without_head():
    batch = torch.stack([features(200, seed) for seed in range(3)])
    with torch.no_grad():
        embedded = tiny_encoder()(batch)
        plain = tiny_encoder(head_hidden=None)(batch)
    assert embedded.shape == (3, 16) and plain.shape == (3, TINY["d_model"])
    torch.testing.assert_close(embedded.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(plain.norm(dim=1), torch.ones(3))
    assert tiny_encoder().embedding_size == 16 and tiny_encoder(head_hidden=None).embedding_size == TINY["d_model"]


@pytest.mark.parametrize("frames", [101, 150])  # odd and even: the stride-2 convolution's last position
def test_padding_in_a_batch_changes_nothing(frames):
    encoder = tiny_encoder()
    clip = features(frames)
    garbage = torch.full((260 - frames, 80), 7.0)  # anything may sit in the padding
    batch = torch.stack([torch.cat([clip, garbage]), features(260, seed=1)])
    with torch.no_grad():
        alone = encoder(clip[None])
        padded = encoder(batch, torch.tensor([frames, 260]))
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=0)


def test_sliced_positions_equal_the_computation_padded_to_30_s():
    encoder = tiny_encoder(layer_weights=[0.1, 0.2, 0.3, 0.4])
    clip = features(300)
    silence = torch.full((3000 - 300, 80), -0.5)  # what WhisperFrontend gives for zero-padded audio
    with torch.no_grad():
        sliced = encoder(clip[None])
        padded = encoder(torch.cat([clip, silence])[None], torch.tensor([300]))
        unmasked = tiny_encoder(layer_weights=[0.1, 0.2, 0.3, 0.4], mask_padding=False)(
            torch.cat([clip, silence])[None], torch.tensor([300]))
    torch.testing.assert_close(padded, sliced, atol=1e-5, rtol=0)
    assert not torch.allclose(unmasked, sliced, atol=1e-3)  # Whisper's own unmasked padding differs


def test_masked_pooling_averages_only_valid_positions():
    encoder = tiny_encoder(head_hidden=None, layer_weights=[0, 0, 0, 1], learn_layer_weights=False)
    batch = torch.stack([features(120), features(120, seed=1)])
    with torch.no_grad():
        states, valid = encoder.layer_states(batch, torch.tensor([120, 51]))
        pooled = encoder(batch, torch.tensor([120, 51]))
    assert valid.sum(dim=1).tolist() == [60, 26]  # ceil(frames / 2) positions of 20 ms
    expected = states[-1][1, :26].mean(dim=0)
    torch.testing.assert_close(pooled[1], expected / expected.norm(), atol=1e-5, rtol=0)


def test_fixed_layer_weights_skip_the_blocks_above_the_last_used_state():
    encoder = tiny_encoder(layer_weights=[0, 1, 1, 0], learn_layer_weights=False)
    calls = []
    for index, block in enumerate(encoder.encoder.layers):
        block.register_forward_hook(lambda module, args, output, index=index: calls.append(index))
    with torch.no_grad():
        encoder(features(100)[None])
    assert calls == [0, 1]
    torch.testing.assert_close(encoder.layer_weights(), torch.tensor([0, 0.5, 0.5, 0]))
    assert not any("layer" in name for name, _ in encoder.named_parameters() if "encoder" not in name)


def test_learnable_layer_weights_start_from_the_given_mix_and_get_gradients():
    encoder = tiny_encoder(layer_weights=[1, 1, 2, 0])
    torch.testing.assert_close(encoder.layer_weights(), torch.tensor([0.25, 0.25, 0.5, 0.0]), atol=1e-3, rtol=0)
    encoder.train()
    encoder(torch.stack([features(80), features(80, 1)])).sum().backward()
    assert encoder.layer_logits.grad is not None and encoder.layer_logits.grad.abs().sum() > 0


@pytest.mark.parametrize("trainable", [0, 1, 3])
def test_freeze_and_fine_tune_top_layers(trainable):
    encoder = tiny_encoder(trainable_layers=trainable)
    trainable_names = {name for name, parameter in encoder.named_parameters() if parameter.requires_grad}
    blocks = {f"encoder.layers.{index}." for index in range(3 - trainable, 3)}
    expected = {name for name, _ in encoder.named_parameters()
                if not name.startswith("encoder.") or name.startswith(tuple(blocks))
                or (trainable and name.startswith("encoder.layer_norm."))}
    assert trainable_names == expected
    assert not any(name.startswith(("encoder.conv", "encoder.embed_positions")) for name in trainable_names)
    encoder.train()
    encoder(torch.stack([features(80), features(80, 1)])).sum().backward()
    with_gradients = {name for name, parameter in encoder.named_parameters() if parameter.grad is not None}
    assert with_gradients == trainable_names
    assert encoder.config()["trainable_layers"] == trainable


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match="trainable_layers"):
        tiny_encoder(trainable_layers=4)
    with pytest.raises(ValueError, match="layer_weights"):
        tiny_encoder(layer_weights=[1, 1])
    with pytest.raises(ValueError, match="layer_weights"):
        tiny_encoder(layer_weights=[0, 0, 0, 0])
    encoder = tiny_encoder()
    with pytest.raises(ValueError, match="3000"):
        encoder(features(3002)[None])
    with pytest.raises(ValueError, match=r"\(batch, frames, 80\)"):
        encoder(torch.zeros(1, 80, 100))
    with pytest.raises(ValueError, match="lengths"):
        encoder(features(100)[None], torch.tensor([101]))


def test_config_round_trips():
    encoder = tiny_encoder(layer_weights=[0, 1, 1, 0], trainable_layers=1)
    rebuilt = WhisperSpeakerEncoder(**encoder.config())
    assert rebuilt.config() == encoder.config()
    assert set(rebuilt.state_dict()) == set(encoder.state_dict())


# ----------------------------------------------------------------------------- frontend and embedder


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * RATE)) / RATE
    tone = np.sin(2 * np.pi * (150 + 40 * np.sin(2 * np.pi * 0.7 * time)) * time)
    return (0.3 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * time)) + 0.01 * rng.standard_normal(len(time))).astype(np.float32)


def test_frontend_gives_the_first_frames_of_whisper_30_s_features():
    clip = speech_like(2.345)
    frames = WhisperFrontend()(torch.from_numpy(clip))
    padded = whisper_log_mel(torch.from_numpy(np.pad(clip, (0, 30 * RATE - len(clip))))[None])[0]
    assert frames.shape == (len(clip) // 160, 80)
    torch.testing.assert_close(frames, padded[:, : len(frames)].T, atol=1e-5, rtol=0)


def tiny_embedder() -> WhisperEmbedder:
    spec = dataclasses.replace(encoder_spec("whisper"), embedding_size=TINY["d_model"])
    network = tiny_encoder(head_hidden=None)
    return WhisperEmbedder(spec, network, WhisperFrontend(), torch.device("cpu"), "0" * 64)


def test_embedder_windows_inputs_longer_than_30_s_and_averages_by_duration():
    embedder = tiny_embedder()
    long_clip = speech_like(65.0)
    seen = []
    forward = embedder.network.forward
    embedder.network.forward = lambda batch, lengths: seen.extend(lengths.tolist()) or forward(batch, lengths)
    embedding = embedder.embed([long_clip])[0]
    assert len(seen) == 3 and max(seen) <= 3000 and sum(seen) in range(len(long_clip) // 160 - 2, len(long_clip) // 160 + 1)

    from speakembed.models.engines.asr import split_windows

    pieces = split_windows(long_clip)
    parts = embedder.embed(pieces)
    expected = (parts * np.array([len(piece) // 160 for piece in pieces])[:, None]).sum(axis=0)
    np.testing.assert_allclose(embedding, expected / np.linalg.norm(expected), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embedding), 1.0, atol=1e-5)


def test_embedder_batches_clips_of_different_lengths_like_single_clips():
    embedder = tiny_embedder()
    clips = [speech_like(seconds, seed) for seed, seconds in enumerate([1.0, 3.7, 0.6, 2.2])]
    together = embedder.embed(clips, max_windows_per_batch=3)
    alone = np.concatenate([embedder.embed([clip]) for clip in clips])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, TINY["d_model"])
    assert not embedder.embed([np.zeros(100, np.float32)]).any()  # shorter than one frame: a zero row


def test_embedder_encodes_fixed_windows_for_diarisation():
    embedder = tiny_embedder()
    frames = embedder.features(speech_like(3.0))
    windows = embedder.slice_windows(frames, [0, 80, 140])
    assert windows.shape == (3, 160, 80)
    np.testing.assert_allclose(embedder.encode_windows(windows).norm(dim=1).numpy(), 1.0, atol=1e-5)


def test_whisper_is_registered_with_its_own_embedder():
    spec = encoder_spec("whisper")
    assert spec.embedding_size == 512 and spec.mel.n_mels == 80 and spec.make_embedder is not None
