"""The encoder registry is the one place that knows an encoder family: every registered encoder is
complete, importing it is cheap, a new family needs nothing but its EncoderSpec, and --device
mistakes are one-line usage errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from helpers import spk
from speakembed.models import registry
from speakembed.models.registry import EncoderSpec, Training
from speakembed.pipelines.base.errors import UsageError
from speakembed.pipelines.training.config import TrainConfig, load_config



def test_every_encoder_has_a_spec_with_a_frontend():
    names = registry.encoder_names()
    assert {"lstm", "whisper"} <= set(names) and list(registry.ENCODERS) == list(names)
    for name in names:
        spec = registry.encoder_spec(name)
        assert spec.frontend in registry.frontend_names(), name
        assert spec.locate_weights is not None and spec.embedding_size > 0, name
    for name, spec in registry.family_specs().items():
        assert spec.name == name and spec.frontend in registry.frontend_names()
        assert callable(spec.make_frontend)


def test_trainable_families_have_their_defaults_applied():
    assert set(registry.trainable_names()) == {"lstm", "conv-transformer", "whisper"}
    known = {item.name for item in dataclasses.fields(TrainConfig)}
    for name in registry.trainable_names():
        defaults = registry.trainable_spec(name).training.defaults
        assert set(defaults) <= known, name
        config = load_config(None, [], encoder=name)
        for key, value in defaults.items():
            assert getattr(config, key) == value, (name, key)
    assert registry.trainable_spec("whisper").training.defaults["loss"] == "triplet-ntxent"


def test_unknown_names_are_usage_errors():
    with pytest.raises(UsageError, match="unknown encoder 'ecapa'"):
        registry.encoder_spec("ecapa")
    with pytest.raises(UsageError, match="cannot train encoder 'whisper-head'"):
        registry.trainable_spec("whisper-head")  # a checkpoint, not a family
    with pytest.raises(UsageError, match="unknown frontend 'mfcc'"):
        registry.frontend_spec("mfcc")


def test_importing_the_registry_imports_no_torch_and_reads_no_card():
    code = ("import sys; from speakembed.models.registry import DEFAULT_ENCODER, ENCODERS, PRETRAINED, family_specs, "
            "_shipped_spec; print('torch' in sys.modules, family_specs.cache_info().currsize, "
            "_shipped_spec.cache_info().currsize)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.split() == ["False", "0", "0"], result.stderr


def test_importing_the_embed_job_imports_no_torch():
    code = "import sys, speakembed.pipelines.embed; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.strip() == "False", result.stderr


# ----------------------------------------------------------------------------- a new family


def _fake_network(arguments: dict, base_weights: dict | None = None):
    from speakembed.models.lstm import LSTMEncoder

    return LSTMEncoder(n_mels=24, **arguments)


@pytest.fixture
def fake_family():
    """A family registered for one test: 24 linear mels of its own frontend, an LSTM, and a
    training default of its own. Nothing else in the code base knows it."""
    from speakembed.models.frontend import MelConfig

    spec = EncoderSpec(
        name="fake-lstm", description="a test family", sample_rate=16000, embedding_size=256, min_input_s=0.5,
        window_frames=100, hop_frames=50, mel=MelConfig(n_mels=24, log=False), frontend="fake-24",
        build_network=lambda: _fake_network({}), locate_weights=None, read_state_dict=registry._safetensors_state_dict,
        training=Training(build_network=_fake_network, defaults={"crop_frames": 80}, legacy_arguments={"num_layers": 1}),
    )
    registry.register(spec)
    yield spec
    registry.unregister(spec.name)


def test_a_new_family_is_one_spec(fake_family, make_wav, tmp_path):
    """Preprocess with its frontend, train it, load the checkpoint and embed: all through the CLI
    and the registry, with no other change."""
    from speakembed.models.checkpoints import checkpoint_arguments
    from speakembed.pipelines import preprocess
    from speakembed.pipelines.data.features import read_features
    from speakembed.pipelines.training import pooled_cache

    assert "fake-24" in registry.frontend_names()
    spec, mel = preprocess.frontend_spec("fake-24")
    assert spec is fake_family and mel.n_mels == 24 and mel.log
    config = load_config(None, [], encoder="fake-lstm")
    assert config.crop_frames == 80 and not pooled_cache.applies(config)
    assert checkpoint_arguments({"encoder": "fake-lstm", "arguments": {}}) == {"num_layers": 1}

    for speaker in ("A", "B"):
        for take in (1, 2):
            make_wav(f"corpus/{speaker}/{take}.wav", speaker=speaker, duration_s=1.5)
    result = spk("preprocess", "folder", tmp_path / "corpus", "--out", tmp_path / "prep", "--frontend", "fake-24",
                 "--vad", "energy", "--dev-fraction", "0", "--test-fraction", "0", "--retrieval-per-speaker", "0", "-q")
    assert result.exit_code == 0, result.output
    store = read_features(tmp_path / "prep")
    assert store.attrs["frontend_name"] == "fake-24" and store.n_mels == 24
    result = spk("train", "--data", tmp_path / "prep", "--out", tmp_path / "model", "--encoder", "fake-lstm",
                 "--steps", "2", "--device", "cpu", "-q",
                 *[arg for setting in ("speakers_per_batch=2", "utterances_per_speaker=2", "warmup_steps=1",
                                       "model.hidden_size=16", "model.num_layers=1", "model.embedding_size=8") for arg in ("--set", setting)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "model" / "train_config.json").read_text())["crop_frames"] == 80

    embedder = registry.load_encoder(checkpoint=tmp_path / "model", device="cpu")
    assert embedder.spec.name == "fake-lstm" and embedder.embedding_size == 8 and embedder.spec.mel.log
    assert embedder.embed([torch.randn(16000).numpy() * 0.1]).shape == (1, 8)


# ----------------------------------------------------------------------------- devices


@pytest.fixture
def no_cuda(monkeypatch):
    """This process's torch as the CPU wheel: no CUDA build, no GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)


def test_pick_device_without_cuda(no_cuda):
    assert registry.pick_device() == torch.device("cpu") and registry.pick_device("cpu") == torch.device("cpu")
    for device in ("cuda", "cuda:1"):
        with pytest.raises(UsageError, match=rf"--device {device}: .*built without CUDA; install a CUDA build of torch"):
            registry.pick_device(device)
    for device in ("gpu", "cuda:x", "meta"):
        with pytest.raises(UsageError, match=rf"--device {device}: not a device"):
            registry.pick_device(device)


def test_train_checks_its_device(no_cuda):
    from speakembed.pipelines import train

    with pytest.raises(UsageError, match="CUDA"):
        train._device(load_config(None, [], device="cuda"), rank=0)


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ") or "Error" in result.output
    return result.output


def test_cli_device_mistakes_exit_2_with_one_line(no_cuda, make_wav):
    first, second = make_wav("a.wav", speaker="A", duration_s=1.0), make_wav("b.wav", speaker="B", duration_s=1.0)
    output = one_line_error(spk("verify", first, second, "--device", "cuda"), 2)
    assert "see README, GPU / CUDA" in output
    assert "not a device" in one_line_error(spk("verify", first, second, "--device", "gpu"), 2)


def test_cli_training_setting_mistakes_exit_2(no_cuda, tmp_path):
    cases = [(["--set", "stepz=3"], "unknown training settings"), (["--set", "steps"], "KEY=VALUE"),
             (["--encoder", "ecapa"], "cannot train encoder 'ecapa'"), (["--loss", "arcface"], "unknown loss"),
             (["--device", "cuda"], "built without CUDA")]
    for arguments, message in cases:
        result = spk("train", "--data", tmp_path, "--out", tmp_path / "model", *arguments)
        assert message in one_line_error(result, 2), arguments
