"""Voice-activity detection: energy VAD on synthetic speech-like signals, silero on a real recording."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from speakembed.pipelines.audio import vad
from speakembed.pipelines.audio.vad import VAD_METHODS, EnergyVAD, keep_speech, speech_regions

RATE = 16000
REAL_SPEECH = Path("/work/shared/data/dev/audio/slt/slt_000.flac")


def speech_like(duration_s: float, rms_dbfs: float, seed: int = 0) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of a 120-220 Hz gliding f0, 4 Hz syllable envelope."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(duration_s * RATE)) / RATE
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * time + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    source = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 20))
    envelope = 0.15 + 0.85 * np.sin(np.pi * 4 * time) ** 2  # dips to -16 dB between syllables
    signal = source * envelope
    return _at_level(signal, rms_dbfs)


def _at_level(signal: np.ndarray, rms_dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean(np.square(signal)))
    return (signal * 10 ** (rms_dbfs / 20) / rms).astype(np.float32)


def background(duration_s: float, noise_dbfs: float | None, seed: int = 1) -> np.ndarray:
    """White noise at `noise_dbfs` RMS, or digital silence when None."""
    samples = int(duration_s * RATE)
    if noise_dbfs is None:
        return np.zeros(samples, dtype=np.float32)
    return _at_level(np.random.default_rng(seed).standard_normal(samples), noise_dbfs)


def place(base: np.ndarray, parts: list[tuple[float, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Add each (start_s, signal) into a copy of `base`; also return the truth mask (samples,)."""
    mixed, truth = base.copy(), np.zeros(len(base), dtype=bool)
    for start_s, signal in parts:
        start = int(start_s * RATE)
        mixed[start : start + len(signal)] += signal
        truth[start : start + len(signal)] = True
    return mixed, truth


def mask(regions: list[tuple[int, int]], num_samples: int) -> np.ndarray:
    detected = np.zeros(num_samples, dtype=bool)
    for start, end in regions:
        detected[start:end] = True
    return detected


def recall_precision(regions: list[tuple[int, int]], truth: np.ndarray) -> tuple[float, float]:
    detected = mask(regions, len(truth))
    hits = np.sum(detected & truth)
    return hits / max(1, truth.sum()), hits / max(1, detected.sum())


def check_region_shape(regions: list[tuple[int, int]], num_samples: int) -> None:
    for start, end in regions:
        assert isinstance(start, int) and isinstance(end, int)
        assert 0 <= start < end <= num_samples
    assert all(previous[1] < current[0] for previous, current in zip(regions, regions[1:]))


# ---- energy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise_dbfs", [None, -50.0], ids=["silence", "noise_30dB_snr"])
def test_energy_finds_utterances(noise_dbfs):
    audio, truth = place(
        background(10.0, noise_dbfs),
        [(1.0, speech_like(3.0, -20.0, seed=2)), (5.5, speech_like(3.5, -20.0, seed=3))],
    )
    regions = speech_regions(audio, RATE, "energy")
    check_region_shape(regions, len(audio))
    assert len(regions) == 2
    recall, precision = recall_precision(regions, truth)
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)


def test_energy_follows_a_10_db_level_change_in_noise():
    audio, truth = place(
        background(10.0, -50.0),
        [(1.0, speech_like(3.0, -20.0, seed=4)), (5.5, speech_like(3.0, -30.0, seed=5))],
    )
    regions = speech_regions(audio, RATE, "energy")
    recall, precision = recall_precision(regions, truth)
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)
    quiet = truth.copy()
    quiet[: int(5.0 * RATE)] = False
    assert recall_precision(regions, quiet)[0] >= 0.9


def test_energy_adapts_to_a_louder_noise_floor():
    # A background 25 dB louder than in the tests above, 20 dB below the speech.
    audio, truth = place(background(8.0, -25.0), [(3.0, speech_like(3.0, -5.0, seed=6))])
    regions = speech_regions(audio, RATE, "energy")
    recall, precision = recall_precision(regions, truth)
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)


def test_energy_hangover_keeps_a_quiet_word_ending():
    # 150 ms of a soft fricative, 25 dB below the speech and only 5 dB above the background,
    # right after the last syllable.
    speech = speech_like(2.0, -20.0, seed=7)
    tail = _at_level(np.random.default_rng(8).standard_normal(int(0.15 * RATE)), -45.0)
    audio, _ = place(background(4.0, -50.0), [(1.0, speech), (3.0, tail)])
    tail_truth = np.zeros(len(audio), dtype=bool)
    tail_truth[int(3.0 * RATE) : int(3.15 * RATE)] = True
    assert recall_precision(speech_regions(audio, RATE, "energy"), tail_truth)[0] >= 0.95

    # Without the hangover most of the tail is lost: the hangover is what keeps it.
    detector = EnergyVAD(hangover_ms=0)
    length = detector.frame_length
    decisions = np.array([detector.process_frame(frame) for frame in audio.reshape(-1, length)])
    tail_frames = decisions[int(3.0 * RATE) // length : int(3.15 * RATE) // length]
    assert tail_frames.mean() < 0.5


def test_energy_streaming_matches_batch():
    audio, _ = place(
        background(6.0, -50.0), [(0.5, speech_like(2.0, -20.0, seed=10)), (3.5, speech_like(2.0, -32.0, seed=11))]
    )
    detector = EnergyVAD()
    length = detector.frame_length
    padded = np.concatenate([audio, np.zeros(-len(audio) % length, dtype=np.float32)])
    decisions = np.array([detector.process_frame(frame) for frame in padded.reshape(-1, length)])
    streamed = vad._regions_from_activity(decisions, length, len(audio), RATE, vad._ENERGY_RULES)
    assert streamed == speech_regions(audio, RATE, "energy")
    assert len(streamed) == 2

    detector.reset()  # a reset detector gives the same decisions again
    again = np.array([detector.process_frame(frame) for frame in padded.reshape(-1, length)])
    assert np.array_equal(decisions, again)


def test_energy_never_calls_frames_below_the_absolute_floor_speech():
    quiet = speech_like(2.0, -70.0, seed=12)
    audio, _ = place(background(3.0, None), [(0.5, quiet)])
    assert speech_regions(audio, RATE, "energy") == []


def test_energy_process_frame_checks_its_input():
    detector = EnergyVAD()
    with pytest.raises(ValueError, match="320"):
        detector.process_frame(np.zeros(100, dtype=np.float32))
    with pytest.raises(TypeError):
        detector.process_frame(np.zeros(320, dtype=np.int16))
    with pytest.raises(ValueError):
        EnergyVAD(onset_db=3.0, offset_db=6.0)


# ---- both detectors -----------------------------------------------------------------------------

REAL_METHODS = ["energy", "silero"]


@pytest.mark.parametrize("method", REAL_METHODS)
@pytest.mark.parametrize("samples", [0, 1, 100, 319, 511])
def test_empty_and_shorter_than_one_frame(method, samples):
    audio = np.random.default_rng(0).standard_normal(samples).astype(np.float32) * 0.1
    assert speech_regions(audio, RATE, method) == []


@pytest.mark.parametrize("method", REAL_METHODS)
def test_silence_gives_no_regions(method):
    assert speech_regions(np.zeros(3 * RATE, dtype=np.float32), RATE, method) == []
    assert speech_regions(background(3.0, -60.0), RATE, method) == []


@pytest.mark.parametrize("method", VAD_METHODS)
@pytest.mark.parametrize(
    "bad, error",
    [
        (np.zeros((2, 1600), dtype=np.float32), ValueError),
        (np.zeros(1600, dtype=np.int16), TypeError),
        ([0.0] * 1600, TypeError),
        (np.full(1600, np.nan, dtype=np.float32), ValueError),
    ],
    ids=["stereo", "int16", "list", "nan"],
)
def test_bad_waveforms_are_refused(method, bad, error):
    with pytest.raises(error):
        speech_regions(bad, RATE, method)


def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match="silero, energy, hybrid, none"):
        speech_regions(np.zeros(RATE, dtype=np.float32), RATE, "webrtc")


def test_none_keeps_everything():
    audio = background(1.0, -40.0)
    assert speech_regions(audio, RATE, "none") == [(0, len(audio))]
    assert speech_regions(np.zeros(0, dtype=np.float32), RATE, "none") == []


def test_keep_speech_concatenates_regions():
    audio = np.arange(10, dtype=np.float64)
    kept = keep_speech(audio, [(1, 3), (5, 6), (8, 10)])
    assert kept.dtype == np.float32 and kept.ndim == 1
    assert kept.tolist() == [1, 2, 5, 8, 9]
    assert keep_speech(audio, []).shape == (0,)
    assert keep_speech(audio, [(0, 10)]).tolist() == audio.tolist()
    with pytest.raises(ValueError):
        keep_speech(audio, [(5, 11)])


def test_region_post_processing_bridges_pads_and_merges():
    rules = vad._RegionRules(min_speech_ms=100, min_silence_ms=50, pad_before_ms=10, pad_after_ms=10)
    hop = 160  # 10 ms frames at 16 kHz
    active = np.zeros(100, dtype=bool)
    active[10:20] = True  # 100 ms: kept
    active[24:30] = True  # 40 ms gap before it: bridged into the first region
    active[50:55] = True  # 50 ms alone: too short, dropped
    active[70:85] = True  # kept; its pre-pad must not reach back into the first region
    active[97:100] = True  # 30 ms at the very end: dropped
    regions = vad._regions_from_activity(active, hop, 100 * hop - 80, RATE, rules)
    assert regions == [(9 * hop, 31 * hop), (69 * hop, 86 * hop)]
    touching = np.zeros(40, dtype=bool)
    touching[0:10] = True
    touching[16:30] = True  # a 60 ms gap is not bridged, and 10 ms pads leave the regions apart
    assert vad._regions_from_activity(touching, hop, 40 * hop, RATE, rules) == [(0, 11 * hop), (15 * hop, 31 * hop)]
    # 40 ms pads overlap: the regions merge.
    rules_wide_pad = vad._RegionRules(min_speech_ms=100, min_silence_ms=50, pad_before_ms=40, pad_after_ms=40)
    assert vad._regions_from_activity(touching, hop, 40 * hop, RATE, rules_wide_pad) == [(0, 34 * hop)]
    # A pause cut short by the end of the audio does not end the region (as in silero).
    unfinished = np.zeros(24, dtype=bool)
    unfinished[0:20] = True
    assert vad._regions_from_activity(unfinished, hop, 24 * hop - 7, RATE, rules) == [(0, 24 * hop - 7)]


# ---- silero -------------------------------------------------------------------------------------


def test_loading_silero_keeps_torch_threads_and_does_not_import_the_package():
    torch = pytest.importorskip("torch")
    imported_before = "silero_vad" in sys.modules
    threads = torch.get_num_threads()
    vad._silero_model.cache_clear()
    model, lstm = vad._silero_model()
    assert model is not None
    assert lstm is not None  # the batched path reproduces silero's stepwise output
    assert torch.get_num_threads() == threads
    assert ("silero_vad" in sys.modules) == imported_before


def test_silero_batched_path_matches_stepwise_on_real_speech():
    torch = pytest.importorskip("torch")
    audio = _real_speech()[:RATE]  # leading silence and first words; the stepwise path is slow
    model, lstm = vad._silero_model()
    chunks = torch.from_numpy(vad._frames(audio, vad.SILERO_CHUNK))
    fast, reference = vad._silero_batched(model, lstm, chunks), vad._silero_stepwise(model, chunks)
    assert reference.min() < 0.1 and reference.max() > 0.5  # both silence and speech are compared
    assert torch.allclose(fast, reference, atol=1e-4)


def test_silero_covers_the_speech_of_a_real_recording():
    audio = _real_speech()
    padded = np.concatenate([np.zeros(RATE, np.float32), audio, np.zeros(RATE, np.float32)])
    regions = speech_regions(padded, RATE, "silero")
    check_region_shape(regions, len(padded))
    assert regions
    # "Non-silent": 20 ms frames within 35 dB of the loudest frame.
    frames = padded[: len(padded) // 320 * 320].reshape(-1, 320)
    energy = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-10)
    loud = np.repeat(energy > energy.max() - 35, 320)
    covered = mask(regions, len(padded))[: len(loud)]
    assert np.sum(covered & loud) / np.sum(loud) >= 0.9
    assert not covered[: RATE // 2].any() and not covered[-RATE // 2 :].any()  # the added silence


def test_silero_ignores_low_level_white_noise():
    assert speech_regions(background(4.0, -50.0), RATE, "silero") == []


def test_silero_needs_16_khz():
    with pytest.raises(ValueError, match="16000"):
        speech_regions(np.zeros(8000, dtype=np.float32), 8000, "silero")


def test_missing_silero_package_raises_an_install_hint(monkeypatch):
    from speakembed.pipelines.base.errors import MissingDependencyError

    monkeypatch.setattr(vad.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="pip install silero-vad"):
        vad._silero_model_path()


def _real_speech() -> np.ndarray:
    if not REAL_SPEECH.exists():
        pytest.skip(f"{REAL_SPEECH} is not available")
    soundfile = pytest.importorskip("soundfile")
    audio, rate = soundfile.read(str(REAL_SPEECH), dtype="float32")
    assert rate == RATE and audio.ndim == 1
    return audio


def test_energy_trim_region_drops_the_quiet_edges_only():
    voice = speech_like(1.0, -30.0)
    gap = background(0.3, None)
    clip = np.concatenate([background(0.5, -75.0), voice, gap, voice, background(0.4, None)])
    start, end = vad.energy_trim_region(clip, RATE)
    frame = 320  # 20 ms
    assert abs(start - int(0.5 * RATE)) <= frame  # leading hiss below -60 dBFS goes
    assert abs(end - int(2.8 * RATE)) <= frame  # the pause inside is kept, the trailing zeros go
    assert vad.energy_trim_region(np.zeros(RATE, np.float32), RATE) == (0, 0)
    assert vad.energy_trim_region(np.zeros(0, np.float32), RATE) == (0, 0)
