"""Voice-activity detection: which samples of a 16 kHz mono waveform hold speech.

Three methods, chosen by name (`VAD_METHODS`):

- "silero": the Silero VAD network (shipped in the `silero-vad` wheel), one speech probability per
  32 ms chunk of 512 samples, turned into regions with hysteresis as silero's own
  `get_speech_timestamps` does.
- "energy": `EnergyVAD`, our adaptive energy / noise-floor detector. It needs no model and works
  frame by frame (20 ms), so it can also run on a live stream.
- "hybrid": the union of both: Silero's robustness with the energy detector's tighter word
  edges (on the dev meetings it misses 1.3 s of 166 s of speech where Silero alone misses 2.8 s,
  for the same false alarms).
- "none": the whole waveform is speech.

Regions are half-open sample ranges `(start, end)`, sorted and non-overlapping. Both detectors
produce one decision per frame; `_regions_from_activity` turns decisions into regions for both
(minimum durations, padding, merging), with per-method rules in `_SILERO_RULES` / `_ENERGY_RULES`.

`energy_trim_region` is not a VAD: it trims the quiet edges of a clip, the stand-in for speech
when a VAD keeps too little of a clip that plainly holds sound (see pipelines/audio/speech.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import MissingDependencyError

VAD_METHODS = ("silero", "energy", "hybrid", "none")

SILERO_SAMPLE_RATE = 16000
SILERO_CHUNK = 512  # samples per probability at 16 kHz (32 ms); the model refuses other sizes
SILERO_ON = 0.5  # probability that starts speech
SILERO_OFF = 0.35  # probability below which speech stops (silero's default: threshold - 0.15)

_ABSOLUTE_FLOOR_DBFS = -60.0  # frames below this are digital silence or inaudible hiss, never speech
_ENERGY_EPS = 1e-10  # mean-square floor, so that digital silence reads as -100 dB, not -inf
_ENCODER_BLOCK = 4096  # chunks per batched encoder call (~2 min of audio), bounds peak memory


@dataclass(frozen=True)
class _RegionRules:
    """How frame decisions become regions; all durations in milliseconds."""

    min_speech_ms: float  # shorter regions (before padding) are dropped
    min_silence_ms: float  # shorter gaps inside speech are bridged
    pad_before_ms: float  # added before each region (pre-roll)
    pad_after_ms: float  # added after each region


# silero's get_speech_timestamps defaults
_SILERO_RULES = _RegionRules(min_speech_ms=250, min_silence_ms=100, pad_before_ms=30, pad_after_ms=30)
# In the hybrid, the energy detector supplies the word edges; Silero's padding only adds false alarms.
_SILERO_UNPADDED = dataclasses.replace(_SILERO_RULES, pad_before_ms=0, pad_after_ms=0)
# EnergyVAD's hangover already bridges short gaps and keeps word endings; the pre-roll recovers
# the soft onset (breath, initial consonant) that precedes the frame crossing the onset margin.
_ENERGY_RULES = _RegionRules(min_speech_ms=100, min_silence_ms=0, pad_before_ms=40, pad_after_ms=0)


def speech_regions(waveform: np.ndarray, sample_rate: int = 16000, method: str = "silero") -> list[tuple[int, int]]:
    """Speech regions as (start_sample, end_sample) half-open pairs, sorted, non-overlapping.

    `waveform` is mono float audio in [-1, 1], shape (samples,), at `sample_rate` Hz ("silero"
    needs 16000 Hz). Empty input, input shorter than one frame and silence give [].
    Raises ValueError for an unknown method or a bad sample rate, TypeError/ValueError for a
    waveform that is not a finite 1-D float array, MissingDependencyError without silero-vad.
    """
    if method not in VAD_METHODS:
        raise ValueError(f"unknown VAD method {method!r}; choose one of: {', '.join(VAD_METHODS)}")
    waveform = _checked_waveform(waveform)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if len(waveform) == 0:
        return []
    if method == "none":
        return [(0, len(waveform))]
    if method == "energy":
        return _energy_regions(waveform, sample_rate)
    if method == "hybrid":
        union = sorted(_silero_regions(waveform, sample_rate, _SILERO_UNPADDED) + _energy_regions(waveform, sample_rate))
        return merge_regions(union, max_gap=0)
    return _silero_regions(waveform, sample_rate)


def keep_speech(waveform: np.ndarray, regions: list[tuple[int, int]]) -> np.ndarray:
    """The concatenation of the regions' samples (float32, 1-D); empty when there are no regions."""
    waveform = _checked_waveform(waveform)
    for start, end in regions:
        if not 0 <= start <= end <= len(waveform):
            raise ValueError(f"region ({start}, {end}) lies outside the waveform's {len(waveform)} samples")
    if not regions:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([waveform[start:end] for start, end in regions]).astype(np.float32, copy=False)


def energy_trim_region(waveform: np.ndarray, sample_rate: int = 16000, top_db: float = 40.0,
                       frame_ms: float = 20) -> tuple[int, int]:
    """The (start, end) sample range of `waveform` (mono float, (samples,)) left after trimming
    leading and trailing frames quieter than the loudest frame by more than `top_db` dB or below
    the absolute floor of -60 dBFS; (0, 0) when every frame is that quiet.

    The stand-in for speech when a VAD keeps too little of a clip that plainly holds sound: it
    drops the silence around the voice, not the pauses inside it.
    """
    waveform = _checked_waveform(waveform)
    frame_length = max(1, round(sample_rate * frame_ms / 1000))
    if len(waveform) == 0:
        return 0, 0
    energies = _frame_energies_db(_frames(waveform, frame_length))
    loud = np.flatnonzero(energies >= max(energies.max() - top_db, _ABSOLUTE_FLOOR_DBFS))
    if len(loud) == 0:
        return 0, 0
    return int(loud[0]) * frame_length, min(len(waveform), (int(loud[-1]) + 1) * frame_length)


class EnergyVAD:
    """Streaming energy detector: feed 20 ms frames in order, get one speech decision per frame.

    Per frame it measures the log energy in dBFS (10 log10 of the mean square; a full-scale sine
    reads -3 dBFS) and keeps a noise-floor estimate that drops at once to any quieter frame but
    rises only `floor_rise_db_per_s`: it settles on the level of stationary background noise, and
    speech, which keeps dipping towards that level between syllables, drags it up only slowly.
    Speech starts when a frame exceeds floor + `onset_db` and continues while frames stay above
    floor + `offset_db` (hysteresis); after that, `hangover_ms` more frames are still called speech
    to keep quiet word endings (fricatives, stop releases). Frames below `absolute_floor_dbfs` are
    never speech and end any utterance: they are digital silence or inaudible hiss.

    The first frame seeds the floor, so speech at the very start of a stream is missed until the
    first pause shows the background. The floor never goes below `absolute_floor_dbfs`, so a
    stretch of digital silence does not make the following background noise look like speech.
    A sudden rise of the background by more than `onset_db` is called speech until the floor has
    caught up (`offset_db` / `floor_rise_db_per_s`, about 2 s with the defaults).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_ms: float = 20,
        onset_db: float = 9.0,
        offset_db: float = 6.0,
        hangover_ms: float = 200,
        absolute_floor_dbfs: float = _ABSOLUTE_FLOOR_DBFS,
        floor_rise_db_per_s: float = 3.0,
    ):
        if sample_rate <= 0 or frame_ms <= 0:
            raise ValueError(f"sample_rate ({sample_rate} Hz) and frame_ms ({frame_ms} ms) must be positive")
        if offset_db > onset_db:
            raise ValueError(f"offset_db ({offset_db} dB) must not exceed onset_db ({onset_db} dB)")
        self.sample_rate = sample_rate
        self.frame_length = max(1, round(sample_rate * frame_ms / 1000))  # samples per frame
        self.onset_db = onset_db
        self.offset_db = offset_db
        self.hangover_frames = round(hangover_ms / frame_ms)
        self.absolute_floor_dbfs = absolute_floor_dbfs
        self.floor_rise_per_frame_db = floor_rise_db_per_s * frame_ms / 1000
        self.reset()

    def reset(self) -> None:
        """Forget the noise floor and any utterance in progress (start of a new stream)."""
        self.noise_floor_dbfs: float | None = None
        self._in_speech = False
        self._hangover_left = 0

    def process_frame(self, frame: np.ndarray) -> bool:
        """Decision for one frame of `frame_length` float samples: True if it is speech."""
        frame = _checked_waveform(frame)
        if len(frame) != self.frame_length:
            raise ValueError(f"expected a frame of {self.frame_length} samples, got {len(frame)}")
        return self._process_energy(float(_frame_energies_db(frame[np.newaxis])[0]))

    def _process_energy(self, energy_dbfs: float) -> bool:
        """Decision for one frame given its energy (from `_frame_energies_db`), in dBFS."""
        if self.noise_floor_dbfs is None:
            self.noise_floor_dbfs = max(energy_dbfs, self.absolute_floor_dbfs)
        speech = self._decide(energy_dbfs)
        self._track_floor(energy_dbfs)
        return speech

    def _decide(self, energy_dbfs: float) -> bool:
        above_floor = energy_dbfs - self.noise_floor_dbfs
        if energy_dbfs < self.absolute_floor_dbfs:
            self._in_speech, self._hangover_left = False, 0
            return False
        self._in_speech = above_floor > (self.offset_db if self._in_speech else self.onset_db)
        if self._in_speech:
            self._hangover_left = self.hangover_frames
            return True
        if self._hangover_left > 0:
            self._hangover_left -= 1
            return True
        return False

    def _track_floor(self, energy_dbfs: float) -> None:
        # Fast down, slow up: the floor follows the quietest recent frames (the background).
        risen = self.noise_floor_dbfs + self.floor_rise_per_frame_db
        self.noise_floor_dbfs = max(min(energy_dbfs, risen), self.absolute_floor_dbfs)


def _frame_energies_db(frames: np.ndarray) -> np.ndarray:
    """Log energy of each row of `frames` (frames, samples) in dBFS, float64 (frames,)."""
    mean_square = np.mean(np.square(frames, dtype=np.float64), axis=1)
    return 10.0 * np.log10(mean_square + _ENERGY_EPS)


def _energy_regions(waveform: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
    detector = EnergyVAD(sample_rate)
    frames = _frames(waveform, detector.frame_length)
    # Energies are computed for all frames at once; the decisions are the streaming ones.
    active = np.array([detector._process_energy(float(e)) for e in _frame_energies_db(frames)], dtype=bool)
    return _regions_from_activity(active, detector.frame_length, len(waveform), sample_rate, _ENERGY_RULES)


def _frames(waveform: np.ndarray, frame_length: int) -> np.ndarray:
    """Consecutive frames (frames, frame_length); a final partial frame is zero-padded."""
    num_frames = -(-len(waveform) // frame_length)
    padded = np.zeros(num_frames * frame_length, dtype=np.float32)
    padded[: len(waveform)] = waveform
    return padded.reshape(num_frames, frame_length)


def _regions_from_activity(
    active: np.ndarray, hop: int, num_samples: int, sample_rate: int, rules: _RegionRules
) -> list[tuple[int, int]]:
    """Regions in samples from per-frame decisions `active` (frames,) taken every `hop` samples.

    Gaps shorter than `rules.min_silence_ms` are bridged (also one at the very end, measured to
    the start of the last frame as silero does), regions shorter than
    `rules.min_speech_ms` dropped, the rest padded, clipped to the waveform and merged where the
    padding makes them touch or overlap.
    """
    ms = sample_rate / 1000  # samples per millisecond
    runs = [(start * hop, min(end * hop, num_samples)) for start, end in _true_runs(active)]
    runs = merge_regions(runs, max_gap=rules.min_silence_ms * ms - 1)
    if runs and (len(active) - 1) * hop - runs[-1][1] < rules.min_silence_ms * ms:
        runs[-1] = (runs[-1][0], num_samples)  # the audio ended before the pause was long enough
    runs = [(start, end) for start, end in runs if end - start >= rules.min_speech_ms * ms]
    pad_before, pad_after = round(rules.pad_before_ms * ms), round(rules.pad_after_ms * ms)
    padded = [(max(0, start - pad_before), min(num_samples, end + pad_after)) for start, end in runs]
    return merge_regions(padded, max_gap=0)


def _true_runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Half-open (start, end) frame index ranges of consecutive True values."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def merge_regions(regions: list[tuple], max_gap: float) -> list[tuple]:
    """Join sorted (start, end) regions separated by at most `max_gap` (same unit; overlaps
    always join)."""
    merged: list[tuple] = []
    for start, end in regions:
        if merged and start - merged[-1][1] <= max_gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _silero_regions(waveform: np.ndarray, sample_rate: int, rules: _RegionRules = _SILERO_RULES) -> list[tuple[int, int]]:
    if sample_rate != SILERO_SAMPLE_RATE:
        raise ValueError(
            f"the silero VAD runs at {SILERO_SAMPLE_RATE} Hz, got {sample_rate} Hz; "
            "resample first (speakembed.models.signal.resample)"
        )
    probabilities = _silero_probabilities(waveform)
    active = _hysteresis(probabilities, SILERO_ON, SILERO_OFF)
    return _regions_from_activity(active, SILERO_CHUNK, len(waveform), sample_rate, rules)


def _hysteresis(probabilities: np.ndarray, on: float, off: float) -> np.ndarray:
    """Speech decisions (frames,): speech starts at >= `on` and lasts while >= `off`."""
    active = np.zeros(len(probabilities), dtype=bool)
    speaking = False
    for index, probability in enumerate(probabilities.tolist()):
        speaking = probability >= (off if speaking else on)
        active[index] = speaking
    return active


def _silero_probabilities(waveform: np.ndarray) -> np.ndarray:
    """Silero speech probability of each 512-sample chunk of a 16 kHz waveform, float32 (chunks,).

    The last partial chunk is zero-padded, as silero's own `get_speech_timestamps` does.
    The batched path leaves the shared model's state alone, so concurrent calls are safe;
    the stepwise fallback is not thread-safe (the model carries its LSTM state).
    """
    import torch

    chunks = torch.from_numpy(_frames(_checked_waveform(waveform), SILERO_CHUNK))
    if len(chunks) == 0:
        return np.zeros(0, dtype=np.float32)
    model, lstm = _silero_model()
    probabilities = _silero_batched(model, lstm, chunks) if lstm is not None else _silero_stepwise(model, chunks)
    return probabilities.numpy().astype(np.float32, copy=False)


@contextlib.contextmanager
def _plain_torchscript():
    """No autograd, and no TorchScript graph optimisation.

    The profiling executor would re-specialise the graph for each new number of chunks (every
    waveform length), which costs seconds per call; plain interpretation is fast here.
    """
    import torch

    with torch.inference_mode(), torch.jit.optimized_execution(False):
        yield


@functools.lru_cache(maxsize=1)
def _silero_model():
    """The Silero VAD TorchScript model (cached per process), and for the batched path its LSTM
    cell as a sequence `torch.nn.LSTM` (None where that path does not reproduce the model).

    The model file is loaded straight from the installed wheel: importing `silero_vad` would run
    `torch.set_num_threads(1)` for the whole process and halve the encoders' speed.
    """
    import torch

    path = _silero_model_path()
    with warnings.catch_warnings():
        # torch >= 2.9 deprecates TorchScript loading; silero-vad ships TorchScript, and its
        # ONNX alternative would add onnxruntime as a dependency.
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(path), map_location="cpu")
    model.eval()
    lstm = _sequence_lstm(model)
    return model, (lstm if lstm is not None and _batched_path_is_exact(model, lstm) else None)


def _silero_model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "data" / "silero_vad.jit"
        if path.is_file():
            return path
    raise MissingDependencyError(
        "the 'silero' VAD needs the silero-vad package (pip install silero-vad); or use --vad energy"
    )


def _silero_stepwise(model, chunks):
    """Reference path: one stateful model call per chunk, as silero's own code does."""
    import torch

    with _plain_torchscript():
        model.reset_states()
        return torch.cat([model(chunk[None], SILERO_SAMPLE_RATE)[:, 0] for chunk in chunks])


def _silero_batched(model, lstm, chunks):
    """Same probabilities as `_silero_stepwise`, about 10x faster.

    Only the LSTM cell carries state from chunk to chunk; the feature extractor, encoder and
    output head see each chunk (plus the previous chunk's last samples as context) on its own.
    So they run on all chunks at once, and the cell's recurrence runs as one `nn.LSTM` call.
    This reaches into the TorchScript model's submodules; `_batched_path_is_exact` checks once
    per process that it still reproduces the stepwise output.
    """
    with _plain_torchscript():
        inner = model._model
        features = _silero_features(inner, chunks)  # (chunks, features)
        hiddens, _ = lstm(features[:, None, :])  # one sequence of `chunks` steps: (chunks, 1, hidden)
        head = inner.decoder.decoder(hiddens[:, 0, :, None])  # (chunks, 1, time)
        return head.squeeze(1).mean(dim=1)


def _silero_features(inner, chunks):
    """Encoder output (chunks, features) of each chunk with its 64 samples of left context."""
    import torch

    context_size = int(inner.context_size_samples)
    context = torch.cat([torch.zeros(1, context_size), chunks[:-1, -context_size:]])
    with_context = torch.cat([context, chunks], dim=1)
    blocks = torch.split(with_context, _ENCODER_BLOCK)
    return torch.cat([inner.encoder(inner.run_extractors(block)).squeeze(-1) for block in blocks])


def _sequence_lstm(model):
    """A `torch.nn.LSTM` with the weights of the model's LSTM cell, or None if it has none."""
    import torch

    try:
        cell = model._model.decoder.rnn
        lstm = torch.nn.LSTM(int(cell.input_size), int(cell.hidden_size))
        with torch.no_grad():  # LSTM and LSTMCell share the gate layout (i, f, g, o)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{name}_l0").copy_(getattr(cell, name))
    except (AttributeError, RuntimeError):  # the model's internals changed in a silero-vad release
        return None
    return lstm.eval()


def _batched_path_is_exact(model, lstm) -> bool:
    """Whether `_silero_batched` matches `_silero_stepwise` on a short probe signal."""
    import torch

    rng = np.random.default_rng(0)
    time = np.arange(8 * SILERO_CHUNK) / SILERO_SAMPLE_RATE  # short: stepwise calls are slow
    tone = 0.3 * np.sin(2 * np.pi * 150 * time) * np.sin(2 * np.pi * 4 * time)
    probe = tone + 0.01 * rng.standard_normal(len(time))
    chunks = torch.from_numpy(probe.astype(np.float32).reshape(-1, SILERO_CHUNK))
    try:
        batched = _silero_batched(model, lstm, chunks)
        stepwise = _silero_stepwise(model, chunks)
    except Exception:  # the model's internals changed in a new silero-vad release
        return False
    return batched.shape == stepwise.shape and bool(torch.allclose(batched, stepwise, atol=1e-4))


def _checked_waveform(waveform: np.ndarray) -> np.ndarray:
    """`waveform` as a float32 1-D array; TypeError/ValueError for anything else."""
    if not isinstance(waveform, np.ndarray) or not np.issubdtype(waveform.dtype, np.floating):
        kind = getattr(waveform, "dtype", type(waveform).__name__)
        raise TypeError(f"expected a float numpy array of samples in [-1, 1], got {kind}")
    if waveform.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got shape {waveform.shape}")
    waveform = waveform.astype(np.float32, copy=False)
    if not np.all(np.isfinite(waveform)):
        raise ValueError("the waveform holds NaN or infinite samples")
    return waveform
