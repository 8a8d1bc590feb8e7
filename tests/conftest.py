"""Shared fixtures: audio synthesised on the fly (recipes/common/synth.py) into pytest's temporary folders.

Tests never read recordings from outside the repository and never download anything.

Fixtures:
  audio_dir   (session) Path of a nested folder of good clips, see synth.AUDIO_DIR_LAYOUT.
  bad_audio   (session) dict name -> Path: empty, silent, too_short, corrupt, not_audio, clipped.
  make_wav    (function) factory write_clip(name, speaker="A", duration_s=2.0, sample_rate=16000,
              channels=1, subtype="PCM_16", seed=None) -> Path, writing under the test's tmp_path.

The session fixtures are shared by every test: treat them as read-only (copy with shutil.copytree
before writing beside the inputs).
"""

from __future__ import annotations

import os
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

# `import synth` (the voice synthesiser that the recipes share, recipes/common/synth.py) and
# `import helpers` must work under any --import-mode; importlib mode puts nothing on sys.path.
for _folder in (Path(__file__).parent, Path(__file__).resolve().parents[1] / "recipes" / "common"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import synth  # noqa: E402

# Kokoro speaks with the five packaged voices in every test (and in the commands tests start as
# subprocesses), whether or not setup fetched the 54 kokoro-js voices: tests that need more voices
# pass a fake kokoro-js tarball (helpers.write_fake_kokoro_js).
os.environ["SPEAKEMBED_VOICES_CACHE"] = tempfile.mkdtemp(prefix="spk-test-voices-")

# Extensions whose container brings its own codec, so a PCM subtype does not apply. soundfile infers
# the format from every other extension itself.
LOSSY_FORMATS = {"ogg": ("OGG", None), "oga": ("OGG", None), "opus": ("OGG", "OPUS"), "mp3": ("MP3", None)}


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good clips for 3 speakers (spkA/, spkB/, spkC/), 2-3 files each, 2-3 s long.

    Mixes WAV (int16 and float32), FLAC, OGG Vorbis and MP3 (when this libsndfile can encode
    it), one stereo 44.1 kHz file and one non-ASCII file name; synth.AUDIO_DIR_LAYOUT lists them.
    """
    root = tmp_path_factory.mktemp("audio_dir")
    for spec in synth.AUDIO_DIR_LAYOUT:
        if spec.format == "MP3" and not synth.can_write("MP3"):
            continue
        synth.write_spec(root, spec)
    return root


@pytest.fixture(scope="session")
def bad_audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs a pipeline must reject or survive, by name.

    empty: a valid WAV header with zero samples.  silent: 2 s of digital zeros.
    too_short: 0.2 s of voice.  corrupt: a .wav of a truncated RIFF header then random bytes.
    not_audio: a .txt file.  clipped: voice x10 clipped to [-1, 1] (valid input, must be accepted).
    """
    root = tmp_path_factory.mktemp("bad_audio")
    rate = 16000
    paths = {
        "empty": root / "empty.wav",
        "silent": root / "silent.wav",
        "too_short": root / "too_short.wav",
        "corrupt": root / "corrupt.wav",
        "not_audio": root / "not_audio.txt",
        "clipped": root / "clipped.wav",
    }
    soundfile.write(str(paths["empty"]), np.zeros(0, np.float32), rate, subtype="PCM_16")
    soundfile.write(str(paths["silent"]), np.zeros(2 * rate, np.float32), rate, subtype="PCM_16")
    soundfile.write(str(paths["too_short"]), synth.speaker_voice("A", 0.2, rate, seed=5), rate, subtype="PCM_16")
    # "RIFF" and "WAVE" make it look like a WAV to anything sniffing magic bytes; the fmt chunk is cut off.
    garbage = np.random.default_rng(0).integers(0, 256, size=2000, dtype=np.uint8).tobytes()
    paths["corrupt"].write_bytes(b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00" + garbage)
    paths["not_audio"].write_text("this is a text file, not a recording\n", encoding="utf-8")
    clipped = np.clip(synth.speaker_voice("B", 2.0, rate, seed=6) * 10.0, -1.0, 1.0)
    soundfile.write(str(paths["clipped"]), clipped, rate, subtype="PCM_16")
    return paths


@pytest.fixture
def make_wav(tmp_path: Path):
    """Factory writing one synthetic clip under this test's tmp_path; see `write_clip`."""

    def write_clip(
        name: str,
        speaker: str = "A",
        duration_s: float = 2.0,
        sample_rate: int = 16000,
        channels: int = 1,
        subtype: str | None = "PCM_16",
        seed: int | None = None,
    ) -> Path:
        """Write `name` (may hold sub-folders; the extension picks the format) and return its path.

        `speaker` is a key of synth.SPEAKERS. `seed` None derives one from `name`, so two clips of
        one speaker are different utterances. For OGG/MP3 the default subtype gives way to the
        container's codec.
        """
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        format = None
        extension = path.suffix.lower().lstrip(".")
        if extension in LOSSY_FORMATS:
            format, codec = LOSSY_FORMATS[extension]
            subtype = codec if subtype == "PCM_16" else subtype
        if format == "MP3" and not synth.can_write("MP3"):
            pytest.skip("this libsndfile build cannot encode MP3")
        if seed is None:
            seed = zlib.crc32(name.encode("utf-8"))
        waveform = synth.speaker_voice(speaker, duration_s, sample_rate, seed)
        samples = synth.to_channels(waveform, channels, sample_rate)
        soundfile.write(str(path), samples, sample_rate, format=format, subtype=subtype)
        return path

    return write_clip
