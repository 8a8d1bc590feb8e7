"""Waveform augmentation inside the training loop: `spk preprocess --keep-speech` keeps the
VAD-kept waveforms (speech.zarr) and `spk train` with `augment_waveform` cuts its crops from them,
puts them through the waveform chain and only then computes log-mels."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
from synth import voice

from speakembed.pipelines import preprocess, train
from speakembed.pipelines.base.errors import InputNotFoundError, UsageError
from speakembed.pipelines.data.features import read_features
from speakembed.pipelines.data.speech_store import read_speech, speech_blocks
from speakembed.pipelines.training.config import load_config

TINY = ["model.channels=16", "model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.ff_dim=64",
        "model.embedding_size=32", "speakers_per_batch=4", "utterances_per_speaker=2", "crop_frames=60",
        "warmup_steps=1", "dev_utterances=20"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A folder corpus of 6 synthetic speakers x 3 clips, preprocessed with --keep-speech."""
    root = tmp_path_factory.mktemp("voices")
    for speaker in range(6):
        for clip in range(3):
            folder = root / f"speaker{speaker}"
            folder.mkdir(exist_ok=True)
            formants = (500.0 + 60 * speaker, 1300.0 + 150 * speaker, 2500.0 + 80 * speaker)
            soundfile.write(folder / f"{clip}.wav", voice(100.0 + 30 * speaker, formants, 1.5, seed=clip), 16000)
    out = tmp_path_factory.mktemp("prepared")
    preprocess.run("folder", root, out, config=preprocess.PreprocessConfig(vad="energy", keep_speech=True,
                                                                            dev_fraction=0.2, test_fraction=0.0))
    return out


def test_speech_blocks_line_up_with_the_frames():
    blocks = speech_blocks(np.arange(350, dtype=np.float32), 160)
    assert blocks.shape == (3, 160)
    assert blocks.reshape(-1)[:350].tolist() == list(range(350)) and not blocks.reshape(-1)[350:].any()


def test_preprocess_keeps_the_speech_beside_the_features(prepared):
    speech, features = read_speech(prepared), read_features(prepared)
    assert speech.segment_ids == features.segment_ids and speech.n_mels == 160
    for segment in features.segment_ids:  # one 10 ms block of samples per log-mel frame (centred frames: +1)
        assert features.num_frames(segment) - speech.num_frames(segment) in (0, 1)
        assert np.abs(speech.get(segment)).max() > 0.01


def test_training_hears_augmented_crops_and_the_teacher_the_clean_ones(prepared):
    config = load_config(None, TINY + ["augment_waveform=true", "waveform_augment.noise_probability=1",
                                       "waveform_augment.snr_db=[0,0]"], steps=2, device="cpu")
    corpus = train.load_corpus(prepared, config)
    clean, heard = corpus.waveforms.sample(corpus, config, step=0, rank=0)
    stored = train.sample_batch(corpus, config, 0, 0)  # the same crops, from the stored features
    assert clean.shape == heard.shape == stored.shape == (8, 60, 40)
    # clean crops recomputed from the waveform match the stored log-mels away from the crop edges
    assert np.abs((clean - stored)[:, 2:-2].numpy()).mean() < 0.05
    # noise at 0 dB raises the quiet bands: the heard crops are far from the clean ones
    assert (heard - clean).mean() > 0.5
    again_clean, again_heard = corpus.waveforms.sample(corpus, config, step=0, rank=0)
    assert np.array_equal(again_heard.numpy(), heard.numpy())  # seeded by (seed, step, rank)


def test_training_with_waveform_augmentation_writes_a_checkpoint(prepared, tmp_path):
    config = load_config(None, TINY + ["augment_waveform=true"], steps=3, eval_every=3, device="cpu")
    report = train.run(prepared, tmp_path / "model", config=config)
    assert report.steps == 3 and np.isfinite(report.final_loss)
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_waveform_augmentation_without_a_speech_store_or_with_bad_settings_is_refused(prepared, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(prepared, bare, ignore=shutil.ignore_patterns("speech.zarr"))
    with pytest.raises(InputNotFoundError, match="--keep-speech"):
        train.load_corpus(bare, load_config(None, TINY + ["augment_waveform=true"], device="cpu"))
    with pytest.raises(UsageError, match="waveform_augment"):
        load_config(None, TINY + ["waveform_augment.noise_probability=3"], device="cpu")


def test_stores_read_into_memory_give_the_same_frames(prepared):
    on_disk, in_memory = read_speech(prepared), read_speech(prepared).load_into_memory()
    for segment in on_disk.segment_ids:
        assert np.array_equal(on_disk.get(segment), in_memory.get(segment))


def test_the_synthetic_noise_bank_is_drawn_once_and_seeded():
    from speakembed.pipelines.training.augmentation import make_augmenter

    first, again = make_augmenter({}, synthetic_bank=4), make_augmenter({}, synthetic_bank=4)
    assert len(first.noises) == 4 and all(len(noise) == 8 * 16000 for noise in first.noises)
    assert all(np.array_equal(a, b) for a, b in zip(first.noises, again.noises))
    assert make_augmenter({}).noises == []  # without a bank: a fresh synthetic noise per call, as before
