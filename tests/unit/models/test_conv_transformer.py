"""ConvTransformerEncoder: shapes, unit length, padding invariance, config round trip, size."""

import json

import pytest
import torch

from speakembed.models.conv_transformer import ConvTransformerEncoder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batches of a few windows gain nothing from intra-op threads, while thread barriers make
    every op slow on a busy machine: one thread keeps this module fast anywhere."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def encoder() -> ConvTransformerEncoder:
    torch.manual_seed(0)
    return ConvTransformerEncoder().eval()


def log_mels(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 40, generator=generator) * 2.0 - 8.0  # log-mel-like levels


def test_parameter_count_fits_the_budget(encoder):
    count = sum(parameter.numel() for parameter in encoder.parameters())
    print(f"ConvTransformerEncoder parameters: {count:,} ({count * 4 / 1e6:.1f} MB in float32)")
    assert count <= 2_500_000


def test_embeddings_have_unit_length(encoder):
    with torch.inference_mode():
        embeddings = encoder(log_mels(3, 160))
    assert embeddings.shape == (3, 256)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))


@pytest.mark.parametrize("positional, normalization", [("sinusoidal", "band"), ("learned", "band"), ("sinusoidal", "level")])
def test_padding_does_not_change_the_embedding(positional, normalization):
    torch.manual_seed(1)
    encoder = ConvTransformerEncoder(num_layers=2, positional=positional, normalization=normalization).eval()
    mels = log_mels(3, 160, seed=1)
    lengths = torch.tensor([160, 97, 42])  # odd lengths exercise the strided-conv rounding
    garbage = torch.full((3, 53, 40), 123.0)
    garbage[:, ::2] = float("-inf")  # log(0)
    padded = torch.cat([mels, garbage], dim=1)
    with torch.inference_mode():
        batched = encoder(padded, lengths)
        alone = torch.cat([encoder(mels[row : row + 1, : int(length)]) for row, length in enumerate(lengths)])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


def test_output_lengths_follow_the_conv_strides(encoder):
    lengths = torch.tensor([1, 2, 3, 4, 5, 160, 161])
    expected = torch.tensor([1, 1, 1, 1, 2, 40, 41])  # ceil(ceil(n / 2) / 2)
    assert torch.equal(encoder.output_lengths(lengths), expected)
    with torch.inference_mode():
        hidden = log_mels(1, 161)
        for block in encoder.subsample:
            hidden, _ = block(hidden, torch.tensor([hidden.shape[1]]))
    assert hidden.shape[1] == 41


def test_band_normalisation_ignores_channel_offsets():
    """With "band", a constant log-gain (microphone level) per mel band is removed before the network."""
    torch.manual_seed(2)
    encoder = ConvTransformerEncoder(num_layers=1, normalization="band").eval()
    mels = log_mels(2, 160, seed=2)
    offset = torch.linspace(-3.0, 3.0, 40)
    with torch.inference_mode():
        torch.testing.assert_close(encoder(mels + offset), encoder(mels), atol=1e-4, rtol=1e-4)


def test_level_normalisation_removes_the_level_and_keeps_the_spectral_envelope():
    """"level" removes one log-gain for all bands (the recording level) but, unlike "band", sees a
    tilt of the long-term spectrum, which carries the speaker's timbre."""
    torch.manual_seed(3)
    encoder = ConvTransformerEncoder(num_layers=1, normalization="level").eval()
    mels = log_mels(2, 160, seed=3)
    with torch.inference_mode():
        torch.testing.assert_close(encoder(mels + 2.5), encoder(mels), atol=1e-4, rtol=1e-4)
        tilted = encoder(mels + torch.linspace(-3.0, 3.0, 40))
    assert (tilted - encoder(mels)).abs().max() > 1e-2


def test_config_round_trips_through_json():
    encoder = ConvTransformerEncoder(d_model=64, num_heads=2, ff_dim=128, num_layers=1, positional="learned")
    rebuilt = ConvTransformerEncoder.from_config(json.loads(json.dumps(encoder.config())))
    assert rebuilt.config() == encoder.config()
    rebuilt.load_state_dict(encoder.state_dict())  # identical parameter names and shapes


def test_gradients_reach_every_parameter():
    encoder = ConvTransformerEncoder(num_layers=1, positional="learned")
    encoder(log_mels(2, 80), torch.tensor([80, 50])).sum().backward()
    assert all(parameter.grad is not None for parameter in encoder.parameters())


@pytest.mark.parametrize("arguments", [{"d_model": 190, "num_heads": 4}, {"positional": "rotary"},
                                       {"dropout": 1.5}, {"num_layers": 0}, {"unknown": 1},
                                       {"normalization": "global"}])
def test_bad_arguments_raise(arguments):
    with pytest.raises(ValueError):
        ConvTransformerEncoder.from_config(arguments)


def test_bad_inputs_raise(encoder):
    with pytest.raises(ValueError):
        encoder(torch.zeros(2, 160, 80))
    with pytest.raises(ValueError):
        encoder(torch.zeros(2, 160, 40), torch.tensor([160, 0]))
    with pytest.raises(ValueError):
        encoder(torch.zeros(2, 160, 40), torch.tensor([160]))
    with pytest.raises(ValueError):
        encoder(torch.zeros(1, encoder.max_frames + 1, 40))


def test_checkpoints_older_than_the_normalization_option_keep_band():
    from speakembed.models.checkpoints import checkpoint_arguments

    old = {"encoder": "conv-transformer", "arguments": {"d_model": 64}}
    assert checkpoint_arguments(old) == {"normalization": "band", "d_model": 64}
    new = {"encoder": "conv-transformer", "arguments": {"normalization": "level"}}
    assert checkpoint_arguments(new)["normalization"] == "level"
    assert checkpoint_arguments({"encoder": "lstm", "arguments": {}}) == {}
