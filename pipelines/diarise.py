"""`spk diarise`: who spoke when, against reference voices or by clustering.

VAD -> sliding windows (the encoder's 1.6 s, every `hop_s`) -> window embeddings (one streaming
pass, bounded memory) -> similarity of each window to each speaker (references or cluster
centroids) -> scores spread on a 0.1 s grid -> Viterbi smoothing with a switch penalty ->
speaker turns cut from the speech regions.

Outputs in OUT: `<recording>.rttm`, `diarisation.parquet`, `similarities.parquet` (the
per-window similarity curves), `<recording>.png` (timeline) and `<recording>.html` (interactive
view with audio playback), `report.json`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.audio.decode import audio_info, is_audio_file
from speakembed.pipelines.diarisation.clustering import centroids, cluster_speakers
from speakembed.pipelines.base.errors import (
    InputNotFoundError,
    ManifestError,
    UnreadableAudioError,
    UnusableAudioError,
)
from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.base.progress import Progress
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.diarisation.turns import Turn, add_overlaps_at_handovers, grid_scores, turns_in_speech, viterbi
from speakembed.pipelines.audio.speech import prepare_speech
from speakembed.pipelines.audio.vad import merge_regions
from speakembed.pipelines.diarisation.windows import WindowAnalysis, analyse_recording

UNKNOWN = "unknown"


@dataclass(frozen=True)
class DiariseConfig:
    encoder: str = DEFAULT_ENCODER
    checkpoint: str | None = None  # a `spk train` output folder instead of the pretrained weights
    vad: str = "hybrid"  # Silero + energy edges: the fewest missed words on the dev meetings
    device: str | None = None
    hop_s: float = 0.4  # window hop; windows are the encoder's native length (1.6 s for lstm)
    step_s: float = 0.1  # resolution of speaker decisions
    min_window_speech: float = 0.2  # fraction of a window that must be speech to embed it
    score_scale: float = 10.0  # cosine -> Viterbi emission
    switch_penalty: float = 3.0  # charged per speaker change, in emission units (scale x cosine)
    min_pause_s: float = 0.25  # shorter pauses inside speech are bridged (a speaker's breath, not a turn)
    overlap_lead_s: float = 0.5  # at a handover without pause, the new speaker is also credited this long before it
    refine_passes: int = 2  # re-estimate each voice from the windows assigned to it, then decide again
    unknown_threshold: float = 0.55  # reference mode: below this similarity to every reference -> unknown
    cluster_unknown: bool = False  # reference mode: split unknown speech into unknown_1..k
    num_speakers: int | None = None  # clustering mode: fixed count
    min_speakers: int = 1
    max_speakers: int = 10
    block_s: float = 60.0  # streaming block length
    write_views: bool = True  # PNG + HTML per recording


@dataclass
class RecordingResult:
    recording_id: str
    duration_s: float
    speech_s: float
    speakers: list[str]
    num_segments: int
    elapsed_s: float


@dataclass
class DiariseReport:
    out_dir: Path
    encoder: str
    mode: str  # "reference" or "clustering"
    recordings: list[RecordingResult] = field(default_factory=list)
    failures: int = 0  # recordings that could not be diarised (see failures.parquet)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "encoder": self.encoder, "mode": self.mode, "failures": self.failures,
                "recordings": [asdict(recording) for recording in self.recordings]}


@dataclass
class SpeakerModel:
    """What windows are scored against: unit-length embeddings (k, D) with their names."""

    names: list[str]
    embeddings: np.ndarray


def run(inputs: list[str | Path], out_dir: str | Path, *, refs: list[str] | None = None,
        config: DiariseConfig = DiariseConfig(), progress: Progress | None = None) -> DiariseReport:
    """Diarise every recording of `inputs` (files, or folders of audio files) into `out_dir`."""
    from speakembed.models.registry import load_encoder

    _check_config(config)
    recordings = _collect_recordings(inputs)
    out_dir = prepare_output_folder(out_dir)
    embedder = load_encoder(config.encoder, config.device, config.checkpoint)
    reference = reference_model(parse_refs(refs), embedder, config) if refs else None
    report = DiariseReport(out_dir, embedder.encoder_id, "reference" if reference else "clustering")
    all_segments, all_curves, failures = [], [], []
    for path in recordings:
        try:
            result, segments, curves = _diarise_recording(path, embedder, reference, out_dir, config, progress)
        except (UnreadableAudioError, UnusableAudioError) as error:
            if len(recordings) == 1:
                raise
            failures.append({"item_id": path.stem, "stage": "diarise", "detail": str(error),
                             "reason": getattr(error, "reason", "unreadable")})
            continue
        report.recordings.append(result)
        all_segments.append(segments)
        all_curves.append(curves)
    if not report.recordings:
        raise UnusableAudioError(f"none of the {len(recordings)} recordings could be diarised: {failures[0]['detail']}", "unreadable")
    write_table(pd.DataFrame(failures, columns=["item_id", "stage", "reason", "detail"]), out_dir / "failures.parquet", "failures")
    report.failures = len(failures)
    write_table(pd.concat(all_segments, ignore_index=True), out_dir / "diarisation.parquet", "diarisation")
    write_table(pd.concat(all_curves, ignore_index=True), out_dir / "similarities.parquet", "similarities")
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def _diarise_recording(path: Path, embedder, reference: SpeakerModel | None, out_dir: Path, config: DiariseConfig,
                       progress: Progress | None) -> tuple[RecordingResult, pd.DataFrame, pd.DataFrame]:
    started = time.perf_counter()
    analysis = analyse_recording(path, embedder, vad=config.vad, hop_s=config.hop_s,
                                 min_speech_fraction=config.min_window_speech, block_s=config.block_s,
                                 total_s=audio_info(path).duration_s, progress=progress)
    segments, curves = diarise_analysis(path.stem, analysis, reference, config)
    _write_recording(out_dir, path, segments, curves, analysis.duration_s, config)
    result = RecordingResult(path.stem, analysis.duration_s, analysis.speech_s, sorted(segments["speaker"].unique()),
                             len(segments), time.perf_counter() - started)
    return result, segments, curves


def diarise_analysis(recording_id: str, analysis: WindowAnalysis, reference: SpeakerModel | None,
                     config: DiariseConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segments (diarisation schema) and similarity curves (similarities schema) of one recording."""
    if len(analysis.embeddings) == 0 or not analysis.speech:
        return _segments_table(recording_id, [], []), _curves_table(recording_id, np.zeros(0), np.zeros((0, 0)), [])
    speakers = reference or cluster_model(analysis.embeddings, config)
    names = list(speakers.names) + ([UNKNOWN] if reference is not None else [])
    similarities = analysis.embeddings @ speakers.embeddings.T  # the curves shown to the user
    grid, path = _decode(speakers, analysis, reference is not None, config)
    for _ in range(config.refine_passes):
        speakers = _adapted(speakers, analysis, path, config)
        grid, path = _decode(speakers, analysis, reference is not None, config)
    confidence = _posterior(config.score_scale * grid)[np.arange(len(path)), path]
    detected_s = [(start / analysis.sample_rate, end / analysis.sample_rate) for start, end in analysis.speech]
    speech_s = bridge_pauses(detected_s, config.min_pause_s)
    turns = turns_in_speech(path, confidence, speech_s, config.step_s, np.arange(len(names)))
    if reference is not None and config.cluster_unknown:
        names, turns = _split_unknown(names, turns, analysis, config)
    turns = add_overlaps_at_handovers(turns, config.overlap_lead_s, detected_s)
    return (_segments_table(recording_id, turns, names),
            _curves_table(recording_id, analysis.window_centres_s(), similarities, speakers.names))


def _decode(speakers: SpeakerModel, analysis: WindowAnalysis, with_unknown: bool, config: DiariseConfig):
    """Grid scores (points, states) and the Viterbi state path (points,)."""
    scores = analysis.embeddings @ speakers.embeddings.T
    if with_unknown:  # an extra state for voices that match no reference
        scores = np.hstack([scores, np.full((len(scores), 1), config.unknown_threshold)])
    window_s = analysis.window_samples / analysis.sample_rate
    grid = grid_scores(analysis.window_centres_s(), scores, window_s, analysis.duration_s, config.step_s)
    return grid, viterbi(config.score_scale * grid, config.switch_penalty)


def _adapted(speakers: SpeakerModel, analysis: WindowAnalysis, path: np.ndarray, config: DiariseConfig) -> SpeakerModel:
    """Each voice moved to the mean of (its current embedding and) the windows whose centre the
    decoded path gives to it: references recorded elsewhere adapt to this recording's channel."""
    centre_points = np.minimum((analysis.window_centres_s() / config.step_s).astype(int), len(path) - 1)
    owners = path[centre_points]
    adapted = []
    for index, voice in enumerate(speakers.embeddings):
        mine = analysis.embeddings[owners == index]
        total = voice + mine.mean(axis=0) if len(mine) else voice
        adapted.append(total / max(np.linalg.norm(total), 1e-8))
    return SpeakerModel(speakers.names, np.stack(adapted))


def bridge_pauses(regions: list[tuple[float, float]], min_pause_s: float) -> list[tuple[float, float]]:
    """Join speech regions (seconds) separated by less than `min_pause_s` seconds."""
    return merge_regions(regions, max_gap=min_pause_s)


def cluster_model(embeddings: np.ndarray, config: DiariseConfig) -> SpeakerModel:
    """Speakers found by clustering, named speaker_1.. in order of first appearance."""
    labels = cluster_speakers(embeddings, num_speakers=config.num_speakers, min_speakers=config.min_speakers,
                              max_speakers=config.max_speakers)
    order = list(dict.fromkeys(labels.tolist()))
    relabelled = np.array([order.index(label) for label in labels])
    return SpeakerModel([f"speaker_{index + 1}" for index in range(len(order))], centroids(embeddings, relabelled))


def parse_refs(refs: list[str]) -> dict[str, list[Path]]:
    """`name=path` or `path` (named by its file stem) -> {name: [paths]}.

    Naming a speaker several times with `name=` gives several clips of that voice; two plain
    paths with the same stem are refused, since that is more likely an accident.
    """
    clips: dict[str, list[Path]] = {}
    stems: dict[str, Path] = {}
    for given in refs:
        name, _, location = given.rpartition("=") if "=" in given else ("", "", given)
        path = Path(location)
        if not name:
            name = path.stem
            if name in stems:
                raise ManifestError(
                    f"references {stems[name]} and {path} are both labelled '{name}'; name them with "
                    f"NAME=PATH (the same NAME on purpose for several clips of one speaker)"
                )
            stems[name] = path
        if not name or name == UNKNOWN or name.startswith(f"{UNKNOWN}_"):
            raise ManifestError(f"reference '{given}': '{name}' cannot be a speaker name")
        clips.setdefault(name, []).append(path)
    return clips


def reference_model(clips: dict[str, list[Path]], embedder, config: DiariseConfig) -> SpeakerModel:
    """One unit-length voice embedding per reference speaker (the mean over its clips)."""
    embeddings = []
    for name, paths in clips.items():
        speech = []
        for path in paths:
            try:
                speech.append(prepare_speech(path, embedder.spec, config.vad))
            except (UnusableAudioError, InputNotFoundError) as error:
                raise type(error)(*_named_error_args(error, name)) from None
        voice = embedder.embed(speech).sum(axis=0)
        embeddings.append(voice / max(np.linalg.norm(voice), 1e-8))
    return SpeakerModel(list(clips), np.stack(embeddings))


def _named_error_args(error: Exception, name: str) -> tuple:
    message = f"reference '{name}': {error}"
    return (message, error.reason) if isinstance(error, UnusableAudioError) else (message,)


def _split_unknown(names: list[str], turns: list[Turn], analysis: WindowAnalysis, config: DiariseConfig):
    """Cluster the windows inside unknown turns and relabel those turns unknown_1..k."""
    unknown_index = names.index(UNKNOWN)
    unknown_turns = [turn for turn in turns if turn.speaker == unknown_index]
    centres = analysis.window_centres_s()
    inside = np.zeros(len(centres), dtype=bool)
    for turn in unknown_turns:
        inside |= (centres >= turn.start_s) & (centres < turn.end_s)
    if inside.sum() < 2:
        return names, turns
    model = cluster_model(analysis.embeddings[inside], DiariseConfig(max_speakers=config.max_speakers))
    base = len(names)
    names = names + [name.replace("speaker", UNKNOWN) for name in model.names]
    relabelled = []
    for turn in turns:
        if turn.speaker == unknown_index:
            nearby = inside & (np.abs(centres - (turn.start_s + turn.end_s) / 2) <= max(0.8, (turn.end_s - turn.start_s) / 2))
            votes = (analysis.embeddings[nearby] @ model.embeddings.T).mean(axis=0) if nearby.any() else np.zeros(len(model.names))
            turn = Turn(turn.start_s, turn.end_s, base + int(np.argmax(votes)), turn.confidence, turn.overlap)
        relabelled.append(turn)
    return names, relabelled


def _posterior(emissions: np.ndarray) -> np.ndarray:
    shifted = np.exp(emissions - emissions.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _segments_table(recording_id: str, turns: list[Turn], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "recording_id": [recording_id] * len(turns),
        "start_s": [round(turn.start_s, 3) for turn in turns],
        "duration_s": [round(turn.end_s - turn.start_s, 3) for turn in turns],
        "speaker": [names[turn.speaker] for turn in turns],
        "confidence": [turn.confidence for turn in turns],
        "overlap": [turn.overlap for turn in turns],
    }).astype({"recording_id": "string", "speaker": "string", "confidence": "float32", "overlap": "bool",
               "start_s": "float64", "duration_s": "float64"})


def _curves_table(recording_id: str, times_s: np.ndarray, similarities: np.ndarray, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "recording_id": recording_id,
        "time_s": np.repeat(times_s, len(names)),
        "speaker": np.tile(np.array(names, dtype=object), len(times_s)),
        "similarity": similarities.reshape(-1).astype(np.float32),
    }).astype({"recording_id": "string", "speaker": "string", "time_s": "float64"})


def _write_recording(out_dir: Path, audio: Path, segments: pd.DataFrame, curves: pd.DataFrame,
                     duration_s: float, config: DiariseConfig) -> None:
    from speakembed.pipelines.data.rttm import write_rttm

    write_rttm(segments, out_dir / f"{audio.stem}.rttm")
    if config.write_views:
        from speakembed.pipelines.reports.diarisation_page import render_html, render_timeline_png

        render_timeline_png(segments, curves, duration_s, out_dir / f"{audio.stem}.png", title=audio.name)
        render_html(segments, curves, duration_s, audio, out_dir / f"{audio.stem}.html", title=audio.name)


def _collect_recordings(inputs: list[str | Path]) -> list[Path]:
    """Files as given; folders contribute the audio files directly inside them (not sub-folders,
    which often hold reference clips)."""
    if not inputs:
        raise InputNotFoundError("nothing to diarise; give audio files or folders")
    recordings: list[Path] = []
    for given in map(Path, inputs):
        if given.is_dir():
            found = sorted(path for path in given.iterdir() if path.is_file() and is_audio_file(path))
            if not found:
                raise InputNotFoundError(f"{given}: no audio files found directly inside this folder")
            recordings.extend(found)
        elif given.exists():
            recordings.append(given)
        else:
            raise InputNotFoundError(f"{given}: no such file or folder; check the path")
    stems: dict[str, Path] = {}
    for path in recordings:
        if path.stem in stems:
            raise ManifestError(f"{stems[path.stem]} and {path} would both be recording '{path.stem}'; diarise them separately")
        stems[path.stem] = path
    return recordings


def _check_config(config: DiariseConfig) -> None:
    if config.num_speakers is not None and config.num_speakers < 1:
        raise ManifestError(f"--num-speakers must be at least 1, got {config.num_speakers}")
    if not 1 <= config.min_speakers <= config.max_speakers:
        raise ManifestError(f"need 1 <= --min-speakers <= --max-speakers, got {config.min_speakers} and {config.max_speakers}")
