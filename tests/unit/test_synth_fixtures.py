"""Sanity checks of the synthetic audio (recipes/common/synth.py) and the shared fixtures (tests/conftest.py)."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import soundfile
import synth
from scipy.signal import welch

RATE = 16000


def _expected_specs() -> list[synth.ClipSpec]:
    return [s for s in synth.AUDIO_DIR_LAYOUT if s.format != "MP3" or synth.can_write("MP3")]


def _long_term_spectrum(waveform: np.ndarray, sample_rate: int = RATE) -> np.ndarray:
    """Mean log power spectrum in dB (Welch, 32 ms windows), normalised to 0 dB mean."""
    _, power = welch(waveform, fs=sample_rate, nperseg=512)
    level = 10 * np.log10(power + 1e-12)
    return level - level.mean()


def _frame_levels_db(waveform: np.ndarray, sample_rate: int = RATE) -> np.ndarray:
    """Energy of 10 ms frames in dB relative to the loudest frame."""
    frame = sample_rate // 100
    count = len(waveform) // frame
    energy = np.square(waveform[: count * frame].reshape(count, frame), dtype=np.float64).mean(axis=1)
    level = 10 * np.log10(energy + 1e-12)
    return level - level.max()


# --- synth.voice ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100])
def test_voice_shape_dtype_and_peak(sample_rate: int) -> None:
    waveform = synth.speaker_voice("B", 1.5, sample_rate)
    assert waveform.dtype == np.float32
    assert waveform.shape == (int(1.5 * sample_rate),)
    assert np.all(np.isfinite(waveform))
    assert 20 * np.log10(np.max(np.abs(waveform))) == pytest.approx(synth.PEAK_DBFS, abs=0.01)


def test_voice_is_deterministic_per_seed() -> None:
    first = synth.speaker_voice("A", 1.0, seed=3)
    assert np.array_equal(first, synth.speaker_voice("A", 1.0, seed=3))
    assert not np.allclose(first, synth.speaker_voice("A", 1.0, seed=4))


def test_voice_has_speech_and_pauses_for_an_energy_vad() -> None:
    levels = _frame_levels_db(synth.speaker_voice("C", 3.0, seed=1))
    speech = np.mean(levels > -30)
    pause = np.mean(levels < -45)
    assert 0.5 < speech < 0.95, speech
    assert 0.05 < pause < 0.45, pause


def test_voice_is_modulated_at_a_syllable_rate() -> None:
    levels = _frame_levels_db(synth.speaker_voice("A", 4.0, seed=2))
    envelope = np.maximum(levels, -60.0)
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
    frequencies = np.fft.rfftfreq(len(envelope), d=0.01)
    peak_hz = frequencies[1:][np.argmax(spectrum[1:])]
    assert 1.0 <= peak_hz <= 8.0, peak_hz


def test_zero_duration_voice_is_empty() -> None:
    assert synth.voice(120.0, (500.0, 1500.0), 0.0).shape == (0,)


def test_speakers_long_term_spectra_differ_more_than_utterances_of_one_speaker() -> None:
    """Two utterances (seeds) of one speaker are closer than any two speakers: an identity signal."""
    spectra = {
        (name, seed): _long_term_spectrum(synth.speaker_voice(name, 3.0, seed=seed))
        for name in synth.SPEAKERS
        for seed in (1, 2)
    }

    def distance(a, b) -> float:
        return float(np.sqrt(np.mean(np.square(spectra[a] - spectra[b]))))

    within = max(distance((name, 1), (name, 2)) for name in synth.SPEAKERS)
    between = min(
        distance((first, s1), (second, s2))
        for first, second in itertools.combinations(synth.SPEAKERS, 2)
        for s1, s2 in itertools.product((1, 2), repeat=2)
    )
    assert within < between, (within, between)
    assert between > 3.0  # dB RMS over the spectrum: clearly different, not a rounding difference


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # silero_vad's importlib/torch.jit use, not ours
def test_silero_vad_hears_speech_in_the_synthetic_voice() -> None:
    """The pipeline's VAD must not drop the synthetic clips as non-speech."""
    torch = pytest.importorskip("torch")
    silero_vad = pytest.importorskip("silero_vad")
    model = silero_vad.load_silero_vad()  # weights ship inside the installed package; nothing is downloaded
    for name in synth.SPEAKERS:
        waveform = torch.from_numpy(synth.speaker_voice(name, 3.0, seed=1))
        spans = silero_vad.get_speech_timestamps(waveform, model, sampling_rate=RATE, return_seconds=True)
        assert sum(span["end"] - span["start"] for span in spans) > 1.5, (name, spans)


# --- audio_dir -----------------------------------------------------------------------------------


def test_audio_dir_layout_and_headers(audio_dir) -> None:
    specs = _expected_specs()
    written = sorted(p.relative_to(audio_dir).as_posix() for p in audio_dir.rglob("*") if p.is_file())
    assert written == sorted(s.path for s in specs)
    assert {p.name for p in audio_dir.iterdir()} == {"spkA", "spkB", "spkC"}
    for spec in specs:
        info = soundfile.info(str(audio_dir / spec.path))
        assert info.samplerate == spec.sample_rate, spec.path
        assert info.channels == spec.channels, spec.path
        assert info.format == spec.format, spec.path
        if spec.subtype is not None:
            assert info.subtype == spec.subtype, spec.path
        # Lossy encoders pad by up to a frame or two (MP3: 1152 samples each); lossless files are exact.
        tolerance = 0.2 if spec.lossy else 0.0
        assert abs(info.duration - spec.duration_s) <= tolerance + 1e-9, (spec.path, info.duration)


def test_audio_dir_covers_the_variants(audio_dir) -> None:
    infos = {s.path: soundfile.info(str(audio_dir / s.path)) for s in _expected_specs()}
    assert any(i.channels == 2 and i.samplerate == 44100 for i in infos.values())
    assert any(i.subtype == "PCM_16" and i.format == "WAV" for i in infos.values())
    assert any(i.subtype == "FLOAT" and i.format == "WAV" for i in infos.values())
    assert any(not path.isascii() for path in infos)
    assert {"FLAC", "OGG"} <= {i.format for i in infos.values()}
    for speaker in ("spkA", "spkB", "spkC"):
        assert 2 <= sum(path.startswith(speaker + "/") for path in infos) <= 3


def test_audio_dir_files_decode_to_speech(audio_dir) -> None:
    for spec in _expected_specs():
        samples, rate = soundfile.read(str(audio_dir / spec.path), dtype="float32", always_2d=True)
        assert rate == spec.sample_rate
        peak = float(np.max(np.abs(samples)))
        # -3 dBFS written; lossy codecs can overshoot a little, never reach clipping.
        assert 0.5 < peak < 0.95, (spec.path, peak)


def test_audio_dir_mp3_when_supported(audio_dir) -> None:
    if not synth.can_write("MP3"):
        pytest.skip("this libsndfile build cannot encode MP3")
    assert soundfile.info(str(audio_dir / "spkC" / "c1.mp3")).format == "MP3"


# --- bad_audio -----------------------------------------------------------------------------------


def test_bad_audio_names(bad_audio) -> None:
    assert set(bad_audio) == {"empty", "silent", "too_short", "corrupt", "not_audio", "clipped"}
    assert all(path.is_file() for path in bad_audio.values())


def test_bad_audio_empty_is_a_valid_wav_without_samples(bad_audio) -> None:
    samples, rate = soundfile.read(str(bad_audio["empty"]))
    assert rate == RATE and len(samples) == 0


def test_bad_audio_silent_is_two_seconds_of_zeros(bad_audio) -> None:
    samples, rate = soundfile.read(str(bad_audio["silent"]))
    assert rate == RATE and len(samples) == 2 * RATE
    assert not np.any(samples)


def test_bad_audio_too_short_is_a_fifth_of_a_second_of_voice(bad_audio) -> None:
    samples, rate = soundfile.read(str(bad_audio["too_short"]))
    assert len(samples) == int(0.2 * rate)
    assert np.max(np.abs(samples)) > 0.5


def test_bad_audio_corrupt_does_not_decode(bad_audio) -> None:
    assert bad_audio["corrupt"].suffix == ".wav"
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.read(str(bad_audio["corrupt"]))


def test_bad_audio_not_audio_is_text(bad_audio) -> None:
    assert bad_audio["not_audio"].suffix == ".txt"
    assert bad_audio["not_audio"].read_text(encoding="utf-8").strip()


def test_bad_audio_clipped_is_valid_but_saturated(bad_audio) -> None:
    samples, rate = soundfile.read(str(bad_audio["clipped"]))
    assert rate == RATE and len(samples) == 2 * RATE
    saturated = np.mean(np.abs(samples) >= 0.999)
    assert saturated > 0.05, saturated


# --- make_wav ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sample_rate", "channels", "subtype", "expected_subtype"),
    [
        ("mono16k.wav", 16000, 1, "PCM_16", "PCM_16"),
        ("float.wav", 22050, 1, "FLOAT", "FLOAT"),
        ("stereo.flac", 48000, 2, "PCM_24", "PCM_24"),
        ("nested/dir/clip.ogg", 16000, 1, "PCM_16", "VORBIS"),
        ("clip.mp3", 16000, 1, "PCM_16", "MPEG_LAYER_III"),
    ],
)
def test_make_wav_writes_what_was_asked(make_wav, tmp_path, name, sample_rate, channels, subtype, expected_subtype):
    path = make_wav(name, speaker="D", duration_s=1.0, sample_rate=sample_rate, channels=channels, subtype=subtype)
    assert path == tmp_path / name
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (sample_rate, channels, expected_subtype)
    assert abs(info.duration - 1.0) <= (0.2 if expected_subtype in ("VORBIS", "MPEG_LAYER_III") else 0.0)


def test_make_wav_clips_of_one_speaker_are_different_utterances(make_wav) -> None:
    """The default seed comes from the name (crc32), so names differ -> utterances differ, reproducibly."""
    first, _ = soundfile.read(str(make_wav("one.wav", speaker="B")))
    second, _ = soundfile.read(str(make_wav("two.wav", speaker="B")))
    again, _ = soundfile.read(str(make_wav("again.wav", speaker="B", seed=zlib.crc32(b"one.wav"))))
    assert not np.allclose(first, second)
    assert np.array_equal(first, again)


def test_make_wav_stereo_channels_are_not_identical(make_wav) -> None:
    samples, _ = soundfile.read(str(make_wav("stereo.wav", channels=2)))
    assert samples.shape[1] == 2
    assert not np.allclose(samples[:, 0], samples[:, 1])
