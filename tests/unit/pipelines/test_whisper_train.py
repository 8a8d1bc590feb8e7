"""Training the Whisper speaker encoder (issue #5, second half) on a tiny random Whisper: preprocess
--frontend whisper, spk train --encoder whisper (triplet + NT-Xent), checkpoints that hold only the
trained tensors, exact resume, and spk embed / evaluate with the checkpoint.

Nothing is downloaded and the packaged Whisper-base is never read: a tiny random Whisper is saved
as a Hugging Face folder and named by `whisper_model` (`--whisper-model`); its converted copy lands
in a temporary SPEAKEMBED_CACHE.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import assert_embeds_unit_vectors, assert_same_weights, kill_then_resume, spk, write_feature_corpus
from safetensors.torch import load_file, save_file

pytest.importorskip("transformers")

from speakembed.models.frontend import WHISPER_MEL  # noqa: E402
from speakembed.models.whisper_import import build_whisper_encoder, encoder_folder  # noqa: E402
from speakembed.pipelines import train  # noqa: E402
from speakembed.pipelines.base.errors import ManifestError, UsageError  # noqa: E402
from speakembed.pipelines.data.features import read_features, write_features  # noqa: E402
from speakembed.pipelines.data.manifests import read_table  # noqa: E402
from speakembed.pipelines.training.config import load_config  # noqa: E402

TINY = {"num_mel_bins": 80, "d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 4,
        "encoder_ffn_dim": 64, "max_source_positions": 1500}


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A random tiny Whisper saved as a Hugging Face folder; SPEAKEMBED_CACHE points at a temporary
    folder for the whole module. Returns the folder's path as a string."""
    folder = tmp_path_factory.mktemp("tiny-whisper")
    torch.manual_seed(0)
    encoder = build_whisper_encoder(TINY)
    (folder / "config.json").write_text(json.dumps({"model_type": "whisper", **TINY}))
    save_file({f"model.encoder.{name}": value.contiguous() for name, value in encoder.state_dict().items()},
              str(folder / "model.safetensors"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPEAKEMBED_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield str(folder)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Whisper-frontend features (80 bands of Whisper's scale) of 8 train + 3 dev speakers."""
    attrs = {"frontend": WHISPER_MEL.to_dict(), "frontend_name": "whisper", "vad": "energy", "sample_rate": 16000}
    return write_feature_corpus(tmp_path_factory.mktemp("whisper-features"), attrs, n_mels=80, mixing_std=0.3,
                                offset_std=0.1)


def tiny_config(tiny_whisper, *overrides, **settings):
    base = ["speakers_per_batch=4", "utterances_per_speaker=2", "crop_frames=60", "warmup_steps=2", "dev_utterances=12",
            "model.head_hidden=24", "model.embedding_size=16", f"whisper_model={tiny_whisper}"]
    return load_config(None, base + list(overrides), **{"encoder": "whisper", "steps": 4, "device": "cpu", **settings})


# ----------------------------------------------------------------------------- configuration


def test_whisper_defaults_and_loss_choice(tiny_whisper):
    config = load_config(None, [], encoder="whisper")
    assert (config.loss, config.crop_frames, config.spec_augment) == ("triplet-ntxent", 300, False)
    assert config.augment["time_masks"] == 2 and config.model == {}
    overridden = load_config(None, ["crop_frames=200", "augment.max_time_width=10", "loss=ge2e"], encoder="whisper")
    assert (overridden.crop_frames, overridden.loss, overridden.augment["time_masks"]) == (200, "ge2e", 2)
    assert overridden.augment["max_time_width"] == 10
    assert load_config(None, []).loss == "ge2e" and load_config(None, []).crop_frames == 160
    assert load_config(None, ["loss=triplet-ntxent"]).loss == "triplet-ntxent"  # any encoder may use either loss


@pytest.mark.parametrize("overrides, message", [
    (["loss=arcface"], "unknown loss"),
    (["encoder=lstm", "whisper_model=/x"], "whisper_model applies"),
    (["teacher=lstm"], "--teacher"),
    (["crop_frames=30"], "do not fit"),
    (["augment.noise_level=1"], "unknown augmentation settings"),
])
def test_bad_whisper_settings_are_clear(overrides, message):
    with pytest.raises(UsageError, match=message):
        load_config(None, overrides, encoder="whisper")


def test_training_views_are_the_crops_then_an_augmented_copy(tiny_whisper):
    config = tiny_config(tiny_whisper)
    batch = torch.randn(8, 60, 80)
    views = train.training_views(batch, config, step=3, rank=0)
    assert views.shape == (16, 60, 80)
    assert torch.equal(views[:8], batch) and not torch.equal(views[8:], batch)
    again = train.training_views(batch, config, step=3, rank=0)
    assert torch.equal(again, views)  # seeded by (seed, step, rank)
    embeddings = torch.nn.functional.normalize(torch.randn(16, 5), dim=1, p=2)
    loss = train.batch_loss(train.make_loss(config), embeddings, config)
    assert loss.ndim == 0 and torch.isfinite(loss)


# ----------------------------------------------------------------------------- training


def test_train_writes_a_checkpoint_of_the_trained_tensors_only(tiny_whisper, corpus, tmp_path):
    from speakembed.models.embedder import WhisperEmbedder
    from speakembed.models.registry import load_encoder

    report = train.run(corpus, tmp_path / "model", config=tiny_config(tiny_whisper, "eval_every=2", steps=4))
    assert [entry["step"] for entry in report.history] == [2, 4] and np.isfinite(report.final_loss)
    assert report.dev_eer is not None and 0.0 <= report.dev_eer <= 1.0  # 3 dev speakers, whole utterances
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["encoder"] == "whisper" and config["frontend"] == WHISPER_MEL.to_dict()
    base = encoder_folder(tiny_whisper)
    assert config["base_weights"] == {"source": tiny_whisper, "sha256": base.sha256}
    saved = load_file(str(tmp_path / "model" / "model.safetensors"))
    assert not any(name.startswith("encoder.") for name in saved)  # the frozen encoder is not copied
    assert {"layer_logits", "head.0.weight", "head.2.bias"} <= set(saved)

    embedder = load_encoder(checkpoint=tmp_path / "model", device="cpu")
    assert isinstance(embedder, WhisperEmbedder) and embedder.embedding_size == 16
    base_state = load_file(str(base.weights))
    for name, value in embedder.network.encoder.state_dict().items():
        assert torch.equal(value, base_state[name].float()), name
    torch.testing.assert_close(embedder.network.head[0].weight, saved["head.0.weight"])
    assert_embeds_unit_vectors(embedder, 16)


def test_resume_with_fine_tuned_blocks_continues_bit_for_bit(tiny_whisper, corpus, tmp_path):
    config = tiny_config(tiny_whisper, "model.trainable_layers=1", "spec_augment=true", "augment.noise_std=0.05",
                         "augment.level_shift=[-0.1, 0.1]", steps=6, checkpoint_every=3, eval_every=3)
    train.run(corpus, tmp_path / "straight", config=config)
    kill_then_resume(train.run, corpus, tmp_path / "killed", config)
    straight = assert_same_weights(tmp_path / "straight", tmp_path / "killed")
    assert any(name.startswith("encoder.layers.1.") for name in straight)  # the fine-tuned top block is stored
    assert not any(name.startswith("encoder.layers.0.") for name in straight)
    state = torch.load(tmp_path / "killed" / "checkpoints" / "step-0000006" / "trainer_state.pt", weights_only=False)
    assert [group.get("lr_scale", 1.0) for group in state["optimizer"]["param_groups"]] == [1.0, config.pretrained_lr_scale]


def test_pooled_states_give_the_direct_embedding(tiny_whisper):
    from speakembed.models.checkpoints import build_network

    torch.manual_seed(0)
    network = build_network("whisper", {"head_hidden": 24, "embedding_size": 16}, {"source": tiny_whisper}).eval()
    features, lengths = torch.randn(3, 60, 80), torch.tensor([60, 45, 30])
    with torch.no_grad():
        direct = network(features, lengths)
        pooled = network.pooled_layer_states(features, lengths)
        torch.testing.assert_close(network(pooled, pooled_states=True), direct)
    assert pooled.shape[:2] == (3, len(network.layer_weights()))


def test_frozen_training_encodes_its_crops_once_and_resumes_bit_for_bit(tiny_whisper, corpus, tmp_path, monkeypatch):
    from speakembed.pipelines.training import pooled_cache

    config = tiny_config(tiny_whisper, "cache_crops=2", "cache_views=2", "augment.noise_std=0.05",
                         steps=6, checkpoint_every=3, eval_every=3)
    assert pooled_cache.applies(config)
    train.run(corpus, tmp_path / "straight", config=config)
    assert not (tmp_path / "straight" / pooled_cache.CACHE_FOLDER).exists()  # deleted once training ends

    builds = []
    original = pooled_cache._build
    monkeypatch.setattr(pooled_cache, "_build", lambda *args: builds.append(1) or original(*args))
    kill_then_resume(train.run, corpus, tmp_path / "killed", config)
    assert builds == [1]  # the resumed run read the cache the killed run left
    assert_same_weights(tmp_path / "straight", tmp_path / "killed")

    uncached = tiny_config(tiny_whisper, "cache_crops=0", steps=2)
    assert not pooled_cache.applies(uncached) and not pooled_cache.applies(tiny_config(tiny_whisper, "model.trainable_layers=1"))


def test_cached_views_are_a_crop_and_its_augmented_copies(tiny_whisper, corpus, tmp_path):
    from speakembed.models.checkpoints import build_network
    from speakembed.pipelines.training import pooled_cache

    config = tiny_config(tiny_whisper, "cache_crops=3", "cache_views=2", "augment.noise_std=0.2")
    corpus_data = train.load_corpus(corpus, config)
    network = build_network("whisper", config.model, {"source": tiny_whisper})
    cache = pooled_cache.prepare(tmp_path, network, corpus_data.train, corpus_data.features, config,
                                 corpus_data.fingerprint, torch.device("cpu"))
    segments = sum(len(ids) for ids in corpus_data.train.values())
    assert cache.states.shape[:3] == (segments, 3, 3) and cache.states.dtype == np.float16
    assert not np.array_equal(cache.states[:, :, 0], cache.states[:, :, 1])  # views differ from the plain crop
    views = cache.training_views(train.sample_utterances(corpus_data, config, 0, 0), config)
    picks = config.speakers_per_batch * config.utterances_per_speaker
    assert views.shape == (2 * picks, *cache.states.shape[3:]) and views.dtype == torch.float32
    again = pooled_cache.prepare(tmp_path, network, corpus_data.train, corpus_data.features, config,
                                 corpus_data.fingerprint, torch.device("cpu"))
    assert np.array_equal(again.states, cache.states)
    other = tiny_config(tiny_whisper, "cache_crops=3", "cache_views=2", "augment.noise_std=0.2", seed=1)
    rebuilt = pooled_cache.prepare(tmp_path, network, corpus_data.train, corpus_data.features, other,
                                   corpus_data.fingerprint, torch.device("cpu"))
    assert not np.array_equal(rebuilt.states, cache.states)  # other settings: built afresh


def test_checkpoint_refuses_other_base_weights(tiny_whisper, corpus, tmp_path):
    from speakembed.models.registry import load_encoder

    model = tmp_path / "model"
    train.run(corpus, model, config=tiny_config(tiny_whisper, steps=1))
    config = json.loads((model / "config.json").read_text())
    config["base_weights"]["sha256"] = "0" * 64
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ManifestError, match="trained on Whisper encoder weights 000000000000"):
        load_encoder(checkpoint=model, device="cpu")


def test_encoder_and_features_must_match(tiny_whisper, corpus, tmp_path):
    lstm_features = tmp_path / "lstm"
    shutil.copytree(corpus, lstm_features)
    shutil.rmtree(lstm_features / "features.zarr")
    store = read_features(corpus)
    write_features(lstm_features / "features.zarr", store.segment_ids, [store.get(i) for i in store.segment_ids],
                   {"frontend": WHISPER_MEL.to_dict(), "frontend_name": "lstm", "sample_rate": 16000})
    with pytest.raises(ManifestError, match="--frontend whisper"):
        train.run(lstm_features, tmp_path / "a", config=tiny_config(tiny_whisper))
    with pytest.raises(ManifestError, match="--frontend lstm"):
        train.run(corpus, tmp_path / "b", config=load_config(None, ["speakers_per_batch=4"], device="cpu"))


def test_two_process_data_parallel_whisper_training_with_torchrun(tiny_whisper, corpus, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519",
               "-m", "speakembed.main", "train", "--data", str(corpus), "--out", str(tmp_path / "ddp"), "--steps", "2",
               "--encoder", "whisper", "--whisper-model", tiny_whisper, "--device", "cpu", "-q",
               *[arg for setting in ("speakers_per_batch=2", "utterances_per_speaker=2", "crop_frames=60",
                                     "model.trainable_layers=1", "dev_utterances=8") for arg in ("--set", setting)]]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["base_weights"]["source"] == tiny_whisper
    distributed = json.loads((tmp_path / "ddp" / "meta.json").read_text())["distributed"]
    assert distributed["world_size"] == 2 and distributed["ranks_agree"], distributed


# ----------------------------------------------------------------------------- the commands end to end


def test_preprocess_whisper_features_keep_commonvoice_filters_and_gender(tmp_path, make_wav):
    from speakembed.models.frontend import WhisperFrontend
    from speakembed.models.registry import encoder_spec
    from speakembed.pipelines.audio.speech import prepare_speech

    root = tmp_path / "cv"
    rows = [("c1", "a1.wav", "A", 2, "male_masculine"), ("c1", "a2.wav", "A", 2, "male_masculine"),
            ("c2", "b1.wav", "B", 0, ""), ("c2", "b2.wav", "B", 3, ""), ("c2", "b3.wav", "B", 3, "")]
    for _, name, voice, *_ in rows:
        make_wav(f"cv/clips/{name}", speaker=voice, duration_s=1.5)
    lines = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\tlocale"]
    lines += [f"{client}\t{name}\tSay {name}.\t{up}\t0\t\t{gender}\ten" for client, name, _, up, gender in rows]
    (root / "validated.tsv").write_text("\n".join(lines) + "\n")
    result = spk("preprocess", "commonvoice", root, "--out", tmp_path / "prep", "--frontend", "whisper",
                 "--vad", "energy", "--quiet")
    assert result.exit_code == 0, result.output
    store = read_features(tmp_path / "prep")
    assert store.attrs["frontend_name"] == "whisper" and store.n_mels == 80
    assert store.attrs["frontend"] == WHISPER_MEL.to_dict()
    assert sorted(store.segment_ids) == ["a1", "a2", "b2", "b3"]  # b1 has too few up-votes
    segments = read_table(tmp_path / "prep" / "segments.parquet", "segments").set_index("segment_id")
    assert segments.loc["a1", "gender"] == "male_masculine" and segments.loc["b2", "speaker"] == "c2"
    speech = prepare_speech(root / "clips" / "a1.wav", encoder_spec("whisper"), "energy")
    expected = WhisperFrontend()(torch.from_numpy(speech)).numpy()
    assert store.num_frames("a1") == len(speech) // 160  # ragged: the valid frames only, no 30 s padding
    np.testing.assert_allclose(store.get("a1"), expected, atol=2e-3)  # stored as float16


def test_preprocess_train_embed_evaluate_with_the_commands(tiny_whisper, audio_dir, tmp_path):
    data, model, embeddings = tmp_path / "data", tmp_path / "model", tmp_path / "emb"
    result = spk("preprocess", "folder", audio_dir, "--out", data, "--frontend", "whisper", "--vad", "energy",
                 "--dev-fraction", "0", "--test-fraction", "0", "-q")
    assert result.exit_code == 0, result.output
    result = spk("train", "--data", data, "--out", model, "--encoder", "whisper", "--whisper-model", tiny_whisper,
                 "--steps", "3", "--device", "cpu", "-q", *[arg for setting in (
                     "speakers_per_batch=3", "utterances_per_speaker=2", "crop_frames=100", "model.head_hidden=24",
                     "model.embedding_size=16", "checkpoint_every=2") for arg in ("--set", setting)])
    assert result.exit_code == 0, result.output
    assert "trained whisper for 3 steps" in result.output
    result = spk("embed", audio_dir, "--out", embeddings, "--checkpoint", model, "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    from speakembed.pipelines.data.stores import read_store

    store = read_store(embeddings)
    assert store.encoder.startswith("whisper@") and store.embeddings.shape[1] == 16 and store.valid.all()
    np.testing.assert_allclose(np.linalg.norm(store.embeddings, axis=1), 1.0, atol=1e-5)
    ids = sorted(store.item_ids)
    trials = tmp_path / "trials.txt"
    trials.write_text("".join(f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}\n"
                              for index, a in enumerate(ids) for b in ids[index + 1:]))
    result = spk("evaluate", "verification", "--embeddings", embeddings, "--trials", trials, "--json")
    assert result.exit_code == 0, result.output
    assert "eer" in result.output
