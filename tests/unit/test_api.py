"""The Python API (`from speakembed import Encoder, SpeakerDB`): light to import, the same numbers as
the pipelines behind the `spk` commands, the same typed errors."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile
import synth

from speakembed import Encoder, SpeakerDB
from speakembed.pipelines import identify
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UnusableAudioError, UsageError

RATE = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """<speaker><n>.wav: three 2 s clips each of synthetic speakers A and C."""
    root = tmp_path_factory.mktemp("api")
    for speaker in "AC":
        for index in range(3):
            soundfile.write(root / f"{speaker}{index}.wav", synth.speaker_voice(speaker, 2.0, RATE, seed=index), RATE)
    return root


@pytest.fixture(scope="module")
def encoder():
    return Encoder("lstm", vad="energy")


def test_import_is_light():
    code = ("import sys, speakembed; speakembed.Encoder, speakembed.SpeakerDB; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_embed_paths_lists_and_waveforms(clips, encoder):
    single = encoder.embed(clips / "A0.wav")
    assert single.shape == (256,) and np.linalg.norm(single) == pytest.approx(1.0, abs=1e-5)
    both = encoder.embed([str(clips / "A0.wav"), clips / "C0.wav"])
    assert both.shape == (2, 256)
    np.testing.assert_allclose(both[0], single, atol=1e-6)
    waveform, rate = soundfile.read(clips / "A0.wav", dtype="float32")
    assert float(encoder.embed(waveform, sample_rate=rate) @ single) > 0.9999
    from speakembed.models.signal import resample

    stereo = np.stack([resample(waveform, RATE, 44100)] * 2, axis=1)  # (samples, channels) at 44.1 kHz
    assert float(encoder.embed(stereo, sample_rate=44100) @ single) > 0.99


def test_similarity_is_the_score_spk_verify_gives(clips, encoder):
    same = encoder.similarity(clips / "A0.wav", clips / "A1.wav")
    other = encoder.similarity(clips / "A0.wav", clips / "C0.wav")
    assert same > other + 0.1
    embeddings = encoder.embed([clips / "A0.wav", clips / "A1.wav"])
    assert encoder.similarity(embeddings[0], embeddings[1]) == pytest.approx(same, abs=1e-6)
    assert encoder.scorer.pairs(embeddings[:1], embeddings[1:])[0] == pytest.approx(same, abs=1e-6)


def test_embed_errors_are_the_typed_errors(clips, encoder):
    with pytest.raises(InputNotFoundError):
        encoder.embed(clips / "missing.wav")
    with pytest.raises(UnusableAudioError, match="silent"):
        encoder.embed(np.zeros(RATE, np.float32), sample_rate=RATE)
    with pytest.raises(UsageError, match="sample rate"):
        encoder.embed(np.ones(RATE, np.float32))


def test_speaker_db_enrol_identify_rename_remove(clips, encoder, tmp_path):
    voices = SpeakerDB(tmp_path / "voices", encoder=encoder, vad="energy")
    assert not voices.exists and voices.names == []
    waveform, rate = soundfile.read(clips / "A1.wav", dtype="float32")
    report = voices.enrol("alice", [clips / "A0.wav", waveform], sample_rate=rate)
    assert report.created and report.added == ["alice/A0.wav", "alice/alice-samples-2"]
    voices.enrol("carol", [clips / "C0.wav", clips / "C1.wav"])
    assert voices.names == ["alice", "carol"] and "carol" in voices and len(voices) == 2

    answer = voices.identify(clips / "A2.wav")
    assert answer.best.name == "alice" and answer.best.score > answer.candidates[1].score
    answers = voices.identify([clips / "C2.wav", clips / "A2.wav"], threshold=0.0)
    assert [each.identity for each in answers] == ["carol", "alice"]

    voices.rename("alice", "Alice")
    voices.remove("carol")
    assert SpeakerDB(tmp_path / "voices").names == ["Alice"]


def test_the_api_and_the_pipeline_give_the_same_scores(clips, encoder, tmp_path):
    voices = SpeakerDB(tmp_path / "voices", encoder=encoder, vad="energy")
    voices.enrol("alice", [clips / "A0.wav", clips / "A1.wav"])
    voices.enrol("carol", [clips / "C0.wav"])
    reopened = SpeakerDB(tmp_path / "voices")  # its encoder and VAD come from the database
    assert reopened.encoder.name == "lstm"
    through_api = reopened.identify(clips / "C2.wav")
    through_pipeline = identify.run([clips / "C2.wav"], tmp_path / "voices",
                                    config=identify.IdentifyConfig(vad="energy")).identifications[0]
    assert [candidate.name for candidate in through_api.candidates] == ["carol", "alice"]
    for mine, theirs in zip(through_api.candidates, through_pipeline.candidates):
        assert mine.name == theirs.name and mine.score == pytest.approx(theirs.score, abs=1e-6)
    assert through_api.identity == through_pipeline.identity


def test_speaker_db_errors(clips, encoder, tmp_path):
    voices = SpeakerDB(tmp_path / "voices", encoder=encoder, vad="energy")
    with pytest.raises(InputNotFoundError, match="no such speaker database"):
        voices.identify(clips / "A2.wav")
    with pytest.raises(UnusableAudioError, match="nothing was enrolled"):
        voices.enrol("alice", [clips / "A0.wav", np.zeros(RATE, np.float32)], sample_rate=RATE)
    assert not voices.exists
    voices.enrol("alice", [clips / "A0.wav"])
    with pytest.raises(ManifestError, match="made with lstm@"):
        SpeakerDB(tmp_path / "voices", encoder="conv-transformer").enrol("carol", [clips / "C0.wav"])
    with pytest.raises(UnusableAudioError, match="silent"):
        voices.identify(np.zeros(RATE, np.float32), sample_rate=RATE)
