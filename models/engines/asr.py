"""Offline English speech-to-text (OpenAI Whisper-base, CTranslate2).

Used to measure the intelligibility of synthesised speech: transcribe it, then score the text
against what it was asked to say (`speakembed.pipelines.scoring.wer`). The model files come from
`whisper_assets.model_dir()`.

Whisper sees 30 s windows of 80 log-mel bands (25 ms Hann window, 10 ms hop); longer audio is
cut into windows at the quietest moment near each 30 s boundary and the texts are joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import MissingDependencyError, UsageError
from speakembed.models.engines.whisper_assets import model_dir

SAMPLE_RATE = 16000
HOP_LENGTH, N_MELS = 160, 80
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's fixed input: 30 s, 3000 mel frames
WINDOW_FRAMES = WINDOW_SAMPLES // HOP_LENGTH
CUT_SEARCH_SAMPLES = 5 * SAMPLE_RATE  # a long input is cut at the quietest 20 ms of the window's last 5 s
PROMPT = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
INSTALL_HINT = "pip install 'speakembed[clone]'"

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                 "fifteen sixteen seventeen eighteen nineteen twenty").split()
_TENS_WORDS = dict(zip(range(2, 10), "twenty thirty forty fifty sixty seventy eighty ninety".split()))


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
    from speakembed.models.signal import resample

    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise UsageError(f"transcription needs a mono waveform (samples,), got shape {waveform.shape}")
    if sample_rate != SAMPLE_RATE and len(waveform):
        waveform = resample(waveform, sample_rate, SAMPLE_RATE)
    return waveform


