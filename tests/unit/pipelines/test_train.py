"""The GE2E trainer on a tiny synthetic feature corpus: learning, exact resume, distillation, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_embeds_unit_vectors, assert_same_weights, kill_then_resume, write_feature_corpus

from speakembed.models.frontend import MelConfig
from speakembed.pipelines import train
from speakembed.pipelines.base.errors import ManifestError, OutputError, UsageError
from speakembed.pipelines.training.config import load_config

TINY_MODEL = ["model.channels=16", "model.d_model=32", "model.num_layers=1", "model.num_heads=2",
              "model.ff_dim=64", "model.embedding_size=32"]


def tiny_config(**settings):
    overrides = TINY_MODEL + ["speakers_per_batch=4", "utterances_per_speaker=3", "crop_frames=60",
                              "warmup_steps=2", "dev_utterances=40"]
    return load_config(None, overrides, **{"steps": 6, "device": "cpu", **settings})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """8 train + 3 dev "speakers" whose log-mel frames differ in how the bands move together (a
    speaker-specific mixing of 6 latent sources), which survives per-utterance normalisation."""
    return write_feature_corpus(tmp_path_factory.mktemp("features"),
                                {"frontend": MelConfig(log=True).to_dict(), "vad": "energy", "sample_rate": 16000})


def test_training_learns_and_writes_a_usable_checkpoint(corpus, tmp_path):
    report = train.run(corpus, tmp_path / "model", config=tiny_config(steps=60, eval_every=20, checkpoint_every=30, learning_rate=3e-3))
    assert [entry["step"] for entry in report.history] == [20, 40, 60]
    assert report.history[-1]["loss"] < 0.8 * report.history[0]["loss"]
    # 3 unseen dev speakers after 60 tiny steps: only that the EER is computed on real pairs
    assert report.dev_eer is not None and 0.0 <= report.dev_eer <= 1.0
    for name in ("config.json", "model.safetensors", "meta.json", "train_config.json", "log.jsonl"):
        assert (tmp_path / "model" / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "model" / "checkpoints").iterdir()) == ["step-0000030", "step-0000060"]
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["steps"] == 60 and meta["train_speakers"] == 8 and len(meta["training_data_sha256"]) == 64

    from speakembed.models.registry import load_encoder

    embedder = load_encoder(checkpoint=tmp_path / "model", device="cpu")
    assert embedder.spec.name == "conv-transformer" and embedder.spec.mel.log
    assert_embeds_unit_vectors(embedder, 32)


def test_resume_after_a_kill_continues_bit_for_bit(corpus, tmp_path):
    config = tiny_config(steps=6, checkpoint_every=3, eval_every=3)
    train.run(corpus, tmp_path / "straight", config=config)
    kill_then_resume(train.run, corpus, tmp_path / "killed", config)
    assert_same_weights(tmp_path / "straight", tmp_path / "killed")


def _cosine_to_teacher(checkpoint: Path, corpus: Path) -> float:
    """Mean cosine between the checkpoint's embeddings and the pretrained LSTM's, on fixed crops."""
    import torch

    from speakembed.models.registry import load_encoder
    from speakembed.pipelines.data.features import read_features

    student = _load_network(checkpoint)
    teacher = load_encoder("lstm", "cpu").network
    features = read_features(corpus)
    crops = torch.from_numpy(np.stack([features.get(segment)[:80] for segment in features.segment_ids[:12]]))
    with torch.no_grad():
        return float(torch.nn.functional.cosine_similarity(student.eval()(crops), teacher(torch.exp(crops))).mean())


def test_lstm_student_with_distillation_moves_towards_the_pretrained_teacher(corpus, tmp_path):
    """Distillation trains what it claims: after 12 steps the student's embeddings are closer to
    the teacher's than after 1 step of the same seeded run."""
    pytest.importorskip("resemblyzer")
    settings = ["speakers_per_batch=4", "utterances_per_speaker=2", "crop_frames=80", "model.hidden_size=32",
                "model.num_layers=1", "model.embedding_size=256", "warmup_steps=1", "distill_weight=5",
                "learning_rate=0.01"]
    closeness = {}
    for steps in (1, 12):
        config = load_config(None, settings, encoder="lstm", steps=steps, teacher="lstm", device="cpu", eval_every=steps)
        report = train.run(corpus, tmp_path / f"student-{steps}", config=config)
        assert np.isfinite(report.final_loss)
        closeness[steps] = _cosine_to_teacher(tmp_path / f"student-{steps}", corpus)
    assert closeness[12] > closeness[1] + 0.05, closeness


def test_configuration_errors_are_clear(corpus, tmp_path):
    with pytest.raises(UsageError, match="unknown training settings"):
        load_config(None, ["stepz=3"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        load_config(None, ["steps"])
    with pytest.raises(UsageError, match="cannot train encoder"):
        load_config(None, ["encoder=ecapa"])
    with pytest.raises(UsageError, match="cannot train encoder 'ecapa'"):
        load_config(None, encoder="ecapa")
    with pytest.raises(ManifestError, match="speakers_per_batch"):
        train.run(corpus, tmp_path / "m", config=load_config(None, TINY_MODEL + ["speakers_per_batch=50"], device="cpu"))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(OutputError, match="--resume"):
        train.run(corpus, tmp_path / "used", config=tiny_config())


def _load_network(checkpoint: Path):
    from safetensors.torch import load_file

    from speakembed.models.registry import build_network, checkpoint_arguments, load_checkpoint_config, load_saved_state_dict

    config, _ = load_checkpoint_config(checkpoint)
    network = build_network(config["encoder"], checkpoint_arguments(config))
    load_saved_state_dict(network, load_file(str(checkpoint / "model.safetensors")))
    return network


def test_two_process_data_parallel_training_with_torchrun(corpus, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "speakembed.main", "train", "--data", str(corpus), "--out", str(tmp_path / "ddp"), "--steps", "3",
               "--device", "cpu", "-q", *[arg for override in TINY_MODEL + ["speakers_per_batch=4", "utterances_per_speaker=2",
                                                                          "crop_frames=60", "warmup_steps=1"] for arg in ("--set", override)]]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()
    distributed = json.loads((tmp_path / "ddp" / "meta.json").read_text())["distributed"]
    assert distributed["world_size"] == 2 and distributed["ranks_agree"], distributed  # gradients were averaged
    assert distributed["weights_sha256_per_rank"][0] == train.weights_sha256(_load_network(tmp_path / "ddp"))


def test_output_folder_is_created_with_its_parents(corpus, tmp_path):
    out = tmp_path / "not" / "yet" / "there"
    train.run(corpus, out, config=tiny_config(steps=1))
    assert (out / "model.safetensors").is_file()
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        train.run(corpus, tmp_path / "a_file" / "out", config=tiny_config(steps=1))


def test_init_from_fine_tunes_a_trained_checkpoint(corpus, tmp_path):
    """init_from starts from the checkpoint's weights and architecture (its model settings win)."""
    import torch
    from safetensors.torch import load_file

    train.run(corpus, tmp_path / "base", config=tiny_config(steps=4))
    tuned = train.run(corpus, tmp_path / "tuned", config=tiny_config(steps=1, learning_rate=1e-12, spec_augment=False,
                                                                      init_from=str(tmp_path / "base"),
                                                                      model={"d_model": 64}))
    before, after = load_file(str(tmp_path / "base" / "model.safetensors")), load_file(str(tmp_path / "tuned" / "model.safetensors"))
    assert before.keys() == after.keys() and tuned.steps == 1
    assert all(torch.allclose(before[name], after[name], atol=1e-6) for name in before)
    with pytest.raises(UsageError, match="init_from"):
        train.run(corpus, tmp_path / "wrong", config=tiny_config(encoder="lstm", init_from=str(tmp_path / "base")))
