import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from speakembed.pipelines.audio import decode as audio
from speakembed.pipelines.audio.decode import load_audio, normalize_loudness, normalize_peak, resample, stream_audio
from speakembed.pipelines.base.errors import MissingDependencyError, UnreadableAudioError, UnusableAudioError


def tone(freq_hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_integer_and_float_wavs_decode_to_the_same_signal(tmp_path, subtype):
    signal = tone(440, 0.5, 16000)
    soundfile.write(tmp_path / "x.wav", signal, 16000, subtype=subtype)
    np.testing.assert_allclose(load_audio(tmp_path / "x.wav"), signal, atol=1e-4)


def test_stereo_44k_becomes_mono_16k_without_aliasing(tmp_path):
    left, right = tone(1000, 1.0, 44100), tone(1000, 1.0, 44100)
    alias_prone = tone(12000, 1.0, 44100)  # above the 8 kHz Nyquist of 16 kHz: must be filtered out
    soundfile.write(tmp_path / "s.wav", np.stack([left + alias_prone, right + alias_prone], axis=1) / 2, 44100)
    waveform = load_audio(tmp_path / "s.wav")
    assert waveform.ndim == 1 and abs(len(waveform) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(waveform))
    frequencies = np.fft.rfftfreq(len(waveform), 1 / 16000)
    assert frequencies[spectrum.argmax()] == pytest.approx(1000, abs=2)
    assert spectrum[np.abs(frequencies - 4000) < 50].max() < 0.01 * spectrum.max()  # 12 kHz would alias to 4 kHz


def test_streaming_decode_equals_whole_file_decode(tmp_path):
    signal = np.random.default_rng(0).normal(0, 0.1, 44100 * 3).astype(np.float32)
    soundfile.write(tmp_path / "n.flac", signal, 44100)
    blocks = list(stream_audio(tmp_path / "n.flac", 16000, block_s=0.7))
    assert len(blocks) > 3
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(tmp_path / "n.flac"), atol=1e-6)


def test_region_loading_reads_only_the_region(tmp_path):
    signal = np.arange(16000 * 2, dtype=np.float32) / 40000
    soundfile.write(tmp_path / "r.wav", signal, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "r.wav", start_s=0.5, duration_s=0.25), signal[8000:12000])


def test_loudness_and_peak_normalisation():
    quiet = tone(200, 1.0, 16000) * 0.001
    louder = normalize_loudness(quiet, -30.0)
    assert 20 * np.log10(np.sqrt(np.mean(louder.astype(np.float64) ** 2))) == pytest.approx(-30, abs=0.01)
    loud = tone(200, 1.0, 16000)
    assert normalize_loudness(loud, -30.0) is loud  # raise-only: never made quieter
    assert np.abs(normalize_peak(quiet, -1.0)).max() == pytest.approx(10 ** (-1 / 20), rel=1e-4)
    silence = np.zeros(100, np.float32)
    assert not np.isnan(normalize_loudness(silence)).any()


def test_resample_keeps_duration():
    assert len(resample(tone(100, 1.0, 22050), 22050, 16000)) == 16000


def test_too_long_files_are_refused_before_decoding(tmp_path):
    soundfile.write(tmp_path / "long.wav", np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(UnusableAudioError, match="longer than") as caught:
        load_audio(tmp_path / "long.wav", max_duration_s=2)
    assert caught.value.reason == "too_long"


def test_unsupported_extension_is_named(tmp_path):
    (tmp_path / "x.xyz").write_bytes(b"12345")
    with pytest.raises(UnreadableAudioError, match="unsupported format '.xyz'"):
        load_audio(tmp_path / "x.xyz")


def test_m4a_without_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "x.m4a").write_bytes(b"not really")
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install ffmpeg"):
        load_audio(tmp_path / "x.m4a")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_decodes_through_ffmpeg(tmp_path):
    signal = tone(300, 2.0, 16000)
    soundfile.write(tmp_path / "x.wav", signal, 16000)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(tmp_path / "x.wav"), "-c:a", "aac", str(tmp_path / "x.m4a")], check=True)
    decoded = load_audio(tmp_path / "x.m4a")
    assert abs(len(decoded) - len(signal)) < 0.1 * 16000
    info = audio.audio_info(tmp_path / "x.m4a")  # read by ffprobe, not by decoding
    assert info.sample_rate == 16000 and info.num_channels == 1 and abs(info.duration_s - 2.0) < 0.1
    assert len(np.concatenate(list(stream_audio(tmp_path / "x.m4a", 16000, block_s=0.5)))) == len(decoded)
    (tmp_path / "bad.m4a").write_bytes(b"garbage" * 100)
    with pytest.raises(UnreadableAudioError, match="ffmpeg cannot decode"):
        load_audio(tmp_path / "bad.m4a")
    with pytest.raises(UnreadableAudioError, match="ffprobe cannot read"):
        audio.audio_info(tmp_path / "bad.m4a")


def test_empty_files_are_unusable_and_truncated_ones_unreadable(tmp_path):
    """0 bytes and a header with zero frames are 'empty' (exit 5); a cut-off file is unreadable (exit 4)."""
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "zero.m4a").write_bytes(b"")  # refused before ffmpeg is even looked for
    for name in ("zero.wav", "zero.m4a"):
        for read in (load_audio, audio.audio_info, lambda path: list(stream_audio(path))):
            with pytest.raises(UnusableAudioError, match="0 bytes") as caught:
                read(tmp_path / name)
            assert caught.value.reason == "empty" and caught.value.exit_code == 5
    soundfile.write(tmp_path / "frameless.wav", np.zeros(0, np.float32), 16000)
    assert len(load_audio(tmp_path / "frameless.wav")) == 0
    with pytest.raises(UnusableAudioError) as caught:
        audio.check_usable(load_audio(tmp_path / "frameless.wav"), 16000, "frameless.wav", 0.5)
    assert caught.value.reason == "empty"
    soundfile.write(tmp_path / "whole.wav", tone(300, 1.0, 16000), 16000)
    (tmp_path / "truncated.wav").write_bytes((tmp_path / "whole.wav").read_bytes()[:30])
    with pytest.raises(UnreadableAudioError) as caught:
        load_audio(tmp_path / "truncated.wav")
    assert caught.value.exit_code == 4
