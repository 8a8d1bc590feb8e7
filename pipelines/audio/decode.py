"""Audio input: decode any supported file to mono float32 at the encoder's rate, and normalise.

soundfile (libsndfile) decodes WAV, FLAC, OGG/Opus, MP3, AIFF and friends in-process; container
formats it cannot read (m4a, aac, mp4, webm, wma) go through ffmpeg when it is installed.
Resampling uses soxr (the high-quality resampler librosa also relies on).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from speakembed.models.signal import resample
from speakembed.pipelines.base.errors import (
    InputNotFoundError,
    MissingDependencyError,
    UnreadableAudioError,
    UnusableAudioError,
)

SOUNDFILE_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf"}
FFMPEG_EXTENSIONS = {".m4a", ".aac", ".mp4", ".webm", ".wma", ".mkv"}
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS

SILENCE_PEAK = 10 ** (-70 / 20)  # a file whose peak stays below -70 dBFS holds no usable speech
INT16_MAX = 2**15 - 1


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds before decoding: rate in Hz, length in samples, channel count."""

    path: Path
    sample_rate: int
    num_samples: int
    num_channels: int

    @property
    def duration_s(self) -> float:
        """Length in seconds (num_samples / sample_rate)."""
        return self.num_samples / self.sample_rate if self.sample_rate else 0.0


def is_audio_file(path: Path) -> bool:
    """Whether `path`'s extension is one of the audio formats spk reads (AUDIO_EXTENSIONS)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of `path` without decoding the samples (errors as `load_audio`)."""
    path = _existing_file(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        return _probe_with_ffprobe(path)
    import soundfile

    try:
        info = soundfile.info(str(path))
    except Exception as error:  # libsndfile raises several types for corrupt headers
        raise _unreadable(path, error) from None
    return AudioInfo(path, info.samplerate, info.frames, info.channels)


def load_audio(
    path: str | Path,
    sample_rate: int = 16000,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """Decode `path` to a mono float32 waveform in [-1, 1] at `sample_rate` Hz, shape (samples,).

    `start_s` / `duration_s` select a region (seconds) without decoding the rest of the file.
    Raises InputNotFoundError, UnreadableAudioError, or UnusableAudioError: reason "empty" for a
    0-byte file, "too_long" when the selected audio is longer than `max_duration_s` seconds. A
    valid header with zero frames decodes to an empty waveform (see `check_usable`).
    """
    path = _existing_file(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        waveform, rate = _decode_with_ffmpeg(path, sample_rate, start_s, duration_s)
    else:
        if max_duration_s is not None and duration_s is None:
            _refuse_if_too_long(audio_info(path), max_duration_s)
        waveform, rate = _decode_with_soundfile(path, start_s, duration_s)
    if max_duration_s is not None and len(waveform) > max_duration_s * rate:
        _refuse_if_too_long(AudioInfo(path, rate, len(waveform), 1), max_duration_s)
    return resample(waveform, rate, sample_rate)


def normalize_loudness(waveform: np.ndarray, target_dbfs: float = -30.0, increase_only: bool = True) -> np.ndarray:
    """Scale to an RMS level of `target_dbfs` (as Resemblyzer does, in 16-bit full-scale units).

    With `increase_only`, loud recordings are left alone so that clipping is never introduced.
    """
    rms = float(np.sqrt(np.mean(np.square(waveform * INT16_MAX, dtype=np.float64))))
    if rms == 0.0:
        return waveform
    change_db = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    if increase_only and change_db < 0:
        return waveform
    return (waveform * 10 ** (change_db / 20)).astype(np.float32)


def normalize_peak(waveform: np.ndarray, target_dbfs: float = -1.0) -> np.ndarray:
    """Scale so that the largest absolute sample sits at `target_dbfs`."""
    peak = float(np.max(np.abs(waveform))) if len(waveform) else 0.0
    if peak == 0.0:
        return waveform
    return (waveform * (10 ** (target_dbfs / 20) / peak)).astype(np.float32)


def check_usable(waveform: np.ndarray, sample_rate: int, path: Path | str, min_duration_s: float) -> None:
    """Raise UnusableAudioError if the waveform is empty, silent, or shorter than the minimum."""
    if len(waveform) == 0:
        raise UnusableAudioError(f"{path}: the file holds no audio samples; give a recording with speech", "empty")
    if float(np.max(np.abs(waveform))) < SILENCE_PEAK:
        raise UnusableAudioError(f"{path}: the recording is silent (peak below -70 dBFS); check the input", "silent")
    if len(waveform) < min_duration_s * sample_rate:
        raise UnusableAudioError(
            f"{path}: {len(waveform) / sample_rate:.2f} s of audio is shorter than the "
            f"{min_duration_s:.2f} s this encoder needs; give a longer recording",
            "too_short",
        )


def _existing_file(path: str | Path) -> Path:
    """`path`, checked to be a file that holds bytes: InputNotFoundError when it is missing or a
    folder, UnusableAudioError (reason "empty") when it has 0 bytes, which no decoder would
    otherwise tell apart from a corrupt file."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputNotFoundError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise UnusableAudioError(f"{path}: the file is empty (0 bytes); give a recording with speech", "empty")
    return path


def _decode_with_soundfile(path: Path, start_s: float = 0.0, duration_s: float | None = None) -> tuple[np.ndarray, int]:
    import soundfile

    _require_soundfile_format(path)
    try:
        with soundfile.SoundFile(str(path)) as audio:
            rate = audio.samplerate
            if start_s > 0:
                audio.seek(min(int(round(start_s * rate)), audio.frames))
            frames = -1 if duration_s is None else int(round(duration_s * rate))
            samples = audio.read(frames, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile raises several types for corrupt data
        raise _unreadable(path, error) from None
    return (samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]), rate


def _decode_with_ffmpeg(
    path: Path, sample_rate: int | None, start_s: float = 0.0, duration_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode through an ffmpeg subprocess to mono float32 (at `sample_rate`, or 48 kHz if None)."""
    _require_ffmpeg(path)
    rate = sample_rate or 48000
    region = ["-ss", str(start_s)] + (["-t", str(duration_s)] if duration_s is not None else [])
    command = ["ffmpeg", "-nostdin", "-v", "error", *region, "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(rate), "-"]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        raise UnreadableAudioError(f"{path}: ffmpeg cannot decode it ({detail[-1] if detail else 'unknown error'})")
    return np.frombuffer(result.stdout, dtype=np.float32).copy(), rate


def _probe_with_ffprobe(path: Path) -> AudioInfo:
    """The first audio stream's rate, channels and length, read by ffprobe (ships with ffmpeg)."""
    _require_ffmpeg(path)
    command = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
               "stream=sample_rate,channels,duration", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    try:
        stream = json.loads(result.stdout)["streams"][0]
        rate = int(stream["sample_rate"])
        return AudioInfo(path, rate, int(round(float(stream["duration"]) * rate)), int(stream["channels"]))
    except (ValueError, KeyError, IndexError, TypeError):
        detail = result.stderr.strip().splitlines()
        raise UnreadableAudioError(f"{path}: ffprobe cannot read it ({detail[-1] if detail else 'no audio stream'})") from None


def _refuse_if_too_long(info: AudioInfo, max_duration_s: float) -> None:
    if info.duration_s > max_duration_s:
        raise UnusableAudioError(
            f"{info.path}: {info.duration_s:.0f} s is longer than the {max_duration_s:.0f} s limit for one "
            "embedding; split it, use `spk diarise`, or raise --max-duration",
            "too_long",
        )


def _unreadable(path: Path, error: Exception) -> UnreadableAudioError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UnreadableAudioError(f"{path}: cannot decode audio ({reason}); is the file complete and in a supported format?")


def stream_audio(path: str | Path, sample_rate: int = 16000, block_s: float = 30.0) -> Iterator[np.ndarray]:
    """Decode `path` block by block: mono float32 blocks of about `block_s` seconds at
    `sample_rate` Hz, so that memory stays bounded whatever the file's length.

    soundfile formats are read in blocks and resampled by a streaming soxr resampler (no
    discontinuity at block edges); ffmpeg formats are decoded by ffmpeg straight to the target
    rate and read from its pipe. Raises the same typed errors as `load_audio`.
    """
    path = _existing_file(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        yield from _stream_with_ffmpeg(path, sample_rate, block_s)
    else:
        yield from _stream_with_soundfile(path, sample_rate, block_s)


def _stream_with_soundfile(path: Path, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    import soundfile
    import soxr

    _require_soundfile_format(path)
    try:
        audio = soundfile.SoundFile(str(path))
    except Exception as error:
        raise _unreadable(path, error) from None
    with audio:
        resampler = None if audio.samplerate == sample_rate else soxr.ResampleStream(audio.samplerate, sample_rate, 1, quality="HQ")
        frames = max(1, int(block_s * audio.samplerate))
        while True:
            try:
                block = audio.read(frames, dtype="float32", always_2d=True)
            except Exception as error:
                raise _unreadable(path, error) from None
            last = len(block) < frames
            mono = block.mean(axis=1, dtype=np.float32)
            yield mono if resampler is None else resampler.resample_chunk(mono, last=last)
            if last:
                return


def _stream_with_ffmpeg(path: Path, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    _require_ffmpeg(path)
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    block_bytes = 4 * max(1, int(block_s * sample_rate))
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        while chunk := process.stdout.read(block_bytes):
            yield np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype=np.float32).copy()
        detail = process.stderr.read().decode(errors="replace").strip().splitlines()
        if process.wait() != 0:
            raise UnreadableAudioError(f"{path}: ffmpeg cannot decode it ({detail[-1] if detail else 'unknown error'})")


def _require_ffmpeg(path: Path) -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise MissingDependencyError(
            f"{path}: '{path.suffix}' files need ffmpeg; install it (Debian: apt-get install ffmpeg) "
            "or convert the file to WAV/FLAC"
        )


def _require_soundfile_format(path: Path) -> None:
    if path.suffix.lower() not in SOUNDFILE_EXTENSIONS:
        raise UnreadableAudioError(
            f"{path}: unsupported format '{path.suffix}'; supported: {', '.join(sorted(AUDIO_EXTENSIONS))}"
        )
