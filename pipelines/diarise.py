"""`spk diarise`: who spoke when, against reference voices (clips, or every voice enrolled in a
speaker database, `--db`) or by clustering.

VAD -> sliding windows (the encoder's 1.6 s, every `hop_s`) -> window embeddings (one streaming
pass, bounded memory) -> in reference mode, in-recording normalisation (`recording_centring` of
the recording's own mean window embedding removed from the windows and the voices: the channel and the common voice
component, which keep raw cosines of real speech between 0.4 and 0.8 for every voice) -> similarity of each window to each speaker (references or cluster
centroids) -> scores spread on a 0.1 s grid -> Viterbi smoothing with a switch penalty ->
speaker turns cut from the speech regions.

Outputs in OUT: `<recording>.rttm`, `diarisation.parquet`, `similarities.parquet` (the
per-window similarity curves), `<recording>.png` (timeline) and `<recording>.html` (interactive
view with audio playback), `failures.parquet`, `report.json`.

Names: a recording's id is its file name without the extension, whatever it holds (spaces,
accents, brackets, quotes); the parquet tables, report.json and the views use it as it is, and
the per-recording files are named after it. Inside the RTTM files, where fields are separated
by whitespace, recording ids and speaker names take the whitespace-free form of
`data.rttm.rttm_names` (whitespace runs -> `_`, plus a short hash where two names would
collide), mapped over all the recordings of the run and over all the reference names, so that
one name has one RTTM form throughout a run; report.json lists each recording's `rttm_id`.

One run replaces the previous one: report.json lists the files the run wrote (`outputs`), and
per-recording files that the previous run listed but this run did not write are removed at the
end, so OUT never mixes the tables of one run with the RTTM/PNG/HTML files of another. Files
that this command did not write are never touched.

Failures: with several recordings, one that cannot be diarised (unreadable, unusable, missing
decoder, ...) is listed in failures.parquet and the others go on. When all of them fail the
outputs are still written (empty tables, failures.parquet) and the run raises the recordings'
own error when they all failed the same way (exit 4 when all are corrupt, ...), else
UnusableAudioError (exit 5).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.audio.decode import audio_info, is_audio_file
from speakembed.pipelines.diarisation.clustering import centroids, cluster_speakers
from speakembed.pipelines.base.errors import (
    InputNotFoundError,
    ManifestError,
    OutputError,
    SpeakEmbedError,
    UnusableAudioError,
    UsageError,
)
from speakembed.pipelines.data.failures import failure_row, write_failures
from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.data.rttm import WHITESPACE, rttm_names
from speakembed.pipelines.data.speaker_db import UNKNOWN, SpeakerDatabase, load_database_encoder, open_database
from speakembed.pipelines.base.progress import Progress
from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically
from speakembed.pipelines.diarisation.turns import Turn, add_overlaps_at_handovers, grid_scores, turns_in_speech, viterbi
from speakembed.pipelines.audio.speech import prepare_speech
from speakembed.pipelines.audio.vad import merge_regions
from speakembed.pipelines.diarisation.windows import WindowAnalysis, analyse_recording

SHARED_OUTPUTS = ("diarisation.parquet", "similarities.parquet", "failures.parquet", "report.json")
RECORDING_SUFFIXES = (".rttm", ".png", ".html")  # what one recording may write, named <recording><suffix>


@dataclass(frozen=True)
class DiariseConfig:
    """Settings of `spk diarise`: encoder, VAD, window hop and decoding parameters, the unknown threshold, speaker-count bounds and whether to write views."""
    encoder: str | None = DEFAULT_ENCODER  # None: the --db database's (the default encoder without one)
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
    recording_centring: float = 0.5  # reference mode: weight of the recording's mean window embedding removed
    # before scoring (1.0 is best on real telephone speech, 0.5 keeps the synthetic meetings as good as raw cosine)
    unknown_threshold: float = 0.2  # reference mode: below this (normalised) similarity to every reference -> unknown
    cluster_unknown: bool = False  # reference mode: split unknown speech into unknown_1..k
    num_speakers: int | None = None  # clustering mode: fixed count
    min_speakers: int = 1
    max_speakers: int = 10
    block_s: float = 60.0  # streaming block length
    write_views: bool = True  # PNG + HTML per recording


@dataclass
class RecordingResult:
    """One diarised recording: its id and RTTM id, duration and speech (s), speakers, number of segments and elapsed time (s)."""
    recording_id: str  # the file name without its extension
    rttm_id: str  # the same without whitespace (see data.rttm.rttm_names)
    duration_s: float
    speech_s: float
    speakers: list[str]
    num_segments: int
    elapsed_s: float


@dataclass
class DiariseReport:
    """What a `spk diarise` run did: mode, encoder, output folder, per-recording results and the failure count."""
    out_dir: Path
    encoder: str
    mode: str  # "reference" or "clustering"
    recordings: list[RecordingResult] = field(default_factory=list)
    failures: int = 0  # recordings that could not be diarised (see failures.parquet)
    outputs: list[str] = field(default_factory=list)  # names of the files this run wrote in out_dir
    database: str | None = None  # the speaker database (`--db`) whose voices were the references

    def to_dict(self) -> dict:
        """The report as JSON-ready values (report.json)."""
        return {"out_dir": str(self.out_dir), "encoder": self.encoder, "mode": self.mode, "database": self.database,
                "failures": self.failures, "recordings": [asdict(recording) for recording in self.recordings],
                "outputs": self.outputs}


@dataclass
class SpeakerModel:
    """What windows are scored against: unit-length embeddings (k, D) with their names."""

    names: list[str]
    embeddings: np.ndarray


def run(inputs: list[str | Path], out_dir: str | Path, *, refs: list[str] | None = None,
        database: str | Path | None = None, config: DiariseConfig = DiariseConfig(), embedder=None,
        progress: Progress | None = None) -> DiariseReport:
    """Diarise every recording of `inputs` (files, or folders of audio files) into `out_dir`,
    against the `refs` clips, or every voice of the speaker `database` folder (`spk enrol`; with
    its encoder), or by clustering when neither is given. `embedder`: the encoder already loaded (the
    studio keeps one per process; with a database it must be the database's), else it is loaded here.

    The options and the output folder are checked before any work. A single recording that
    fails raises its error; with several, failures go to failures.parquet and, if none is left,
    the error is raised after the outputs are written (see the module docstring).
    """
    _check_config(config)
    if refs and database is not None:
        raise UsageError("give --refs or --db, not both (enrol the extra voices with `spk enrol` instead)")
    voices = _enrolled_voices(database)
    recordings = _collect_recordings(inputs)
    out_dir = prepare_output_folder(out_dir)
    previous_outputs = _previous_outputs(out_dir)
    embedder = embedder or load_database_encoder(voices, config.encoder, config.checkpoint, config.device)
    if voices is not None:
        voices.require_encoder(embedder.encoder_id)
    reference = reference_model(parse_refs(refs), embedder, config) if refs else None
    if voices is not None:
        reference = SpeakerModel(voices.names, voices.centroids())
    report = DiariseReport(out_dir, embedder.encoder_id, "reference" if reference else "clustering",
                           database=None if voices is None else str(voices.path))
    names = _RttmNames(rttm_names(path.stem for path in recordings),
                       rttm_names(reference.names) if reference else {})
    all_segments, all_curves, errors = [], [], {}
    for path in recordings:
        try:
            result, segments, curves = _diarise_recording(path, embedder, reference, names, out_dir, config, progress)
        except SpeakEmbedError as error:
            if len(recordings) == 1 or isinstance(error, OutputError):  # an output error would hit every recording
                raise
            errors[path.stem] = error
            continue
        report.recordings.append(result)
        report.outputs += _recording_outputs(path.stem, config)
        all_segments.append(segments)
        all_curves.append(curves)
    _write_run_outputs(report, all_segments, all_curves, errors, previous_outputs)
    if not report.recordings:
        raise _all_failed(errors, out_dir)
    return report


@dataclass(frozen=True)
class _RttmNames:
    """The RTTM field of every recording id and reference name of a run (see data.rttm.rttm_names)."""

    recordings: dict[str, str]
    speakers: dict[str, str]


def _write_run_outputs(report: DiariseReport, all_segments: list[pd.DataFrame], all_curves: list[pd.DataFrame],
                       errors: dict[str, SpeakEmbedError], previous_outputs: set[str]) -> None:
    """The tables of the whole run, then the removal of the previous run's leftovers, then report.json
    (last, so that an interrupted run leaves the previous report.json and its list of outputs)."""
    out_dir = report.out_dir
    write_failures([failure_row(recording_id, "diarise", error) for recording_id, error in errors.items()],
                   out_dir / "failures.parquet")
    report.failures = len(errors)
    write_table(pd.concat(all_segments or [_segments_table("", [], [])], ignore_index=True),
                out_dir / "diarisation.parquet", "diarisation")
    write_table(pd.concat(all_curves or [_curves_table("", np.zeros(0), np.zeros((0, 0)), [])], ignore_index=True),
                out_dir / "similarities.parquet", "similarities")
    report.outputs += list(SHARED_OUTPUTS)
    _remove_outputs(out_dir, previous_outputs - set(report.outputs))
    write_text_atomically(out_dir / "report.json", json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")


def _all_failed(errors: dict[str, SpeakEmbedError], out_dir: Path) -> SpeakEmbedError:
    """The error of a run whose every recording failed: their common type, else UnusableAudioError."""
    first = next(iter(errors.values()))
    message = (f"none of the {len(errors)} recordings could be diarised (first: {first}); "
               f"see {out_dir / 'failures.parquet'}")
    if len({type(error) for error in errors.values()}) == 1:
        return _retold(first, message)
    return UnusableAudioError(message, "unreadable")


def _retold(error: SpeakEmbedError, message: str) -> SpeakEmbedError:
    """An error of the same type as `error` (so the same exit code and reason) saying `message`."""
    return type(error)(message, error.reason) if isinstance(error, UnusableAudioError) else type(error)(message)


def _recording_outputs(recording_id: str, config: DiariseConfig) -> list[str]:
    """Names of the files `_write_recording` writes for one recording."""
    suffixes = RECORDING_SUFFIXES if config.write_views else RECORDING_SUFFIXES[:1]
    return [f"{recording_id}{suffix}" for suffix in suffixes]


def _previous_outputs(out_dir: Path) -> set[str]:
    """Names of the files the previous run wrote in `out_dir`, from its report.json: its `outputs`
    list, or for a report written before that list existed, the files named after its recordings.
    Only plain file names of this folder are returned; an unreadable report gives none."""
    try:
        previous = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
        names = previous.get("outputs")
        if names is None:
            names = [f"{recording['recording_id']}{suffix}" for recording in previous.get("recordings", [])
                     for suffix in RECORDING_SUFFIXES]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()
    return {name for name in names if isinstance(name, str) and name and Path(name).name == name
            and name not in (".", "..")}


def _remove_outputs(out_dir: Path, names: set[str]) -> None:
    for name in sorted(names):
        try:
            (out_dir / name).unlink(missing_ok=True)
        except IsADirectoryError:
            continue  # a folder the user made under that name: not ours
        except OSError as error:
            raise OutputError(f"{out_dir / name}: cannot remove this output of the previous run "
                              f"({error.strerror}); remove it or choose another --out") from None


def _diarise_recording(path: Path, embedder, reference: SpeakerModel | None, names: _RttmNames, out_dir: Path,
                       config: DiariseConfig, progress: Progress | None) -> tuple[RecordingResult, pd.DataFrame, pd.DataFrame]:
    started = time.perf_counter()
    analysis = analyse_recording(path, embedder, vad=config.vad, hop_s=config.hop_s,
                                 min_speech_fraction=config.min_window_speech, block_s=config.block_s,
                                 total_s=audio_info(path).duration_s, progress=progress)
    segments, curves = diarise_analysis(path.stem, analysis, reference, config)
    _write_recording(out_dir, path, segments, curves, names, analysis.duration_s, config)
    result = RecordingResult(path.stem, names.recordings[path.stem], analysis.duration_s, analysis.speech_s, sorted(segments["speaker"].unique()),
                             len(segments), time.perf_counter() - started)
    return result, segments, curves


def diarise_analysis(recording_id: str, analysis: WindowAnalysis, reference: SpeakerModel | None,
                     config: DiariseConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segments (diarisation schema) and similarity curves (similarities schema) of one recording."""
    if len(analysis.embeddings) == 0 or not analysis.speech:
        return _segments_table(recording_id, [], []), _curves_table(recording_id, np.zeros(0), np.zeros((0, 0)), [])
    if reference is not None:  # clustering's pruned affinity adapts to the recording by itself
        analysis, reference = recording_normalised(analysis, reference, config.recording_centring)
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


def recording_normalised(analysis: WindowAnalysis, reference: SpeakerModel | None,
                         weight: float) -> tuple[WindowAnalysis, SpeakerModel | None]:
    """The windows and reference voices with `weight` x the recording's mean (unit) window embedding
    removed, re-normalised. The mean holds what every window of this recording shares (channel,
    room, the encoder's common component); removing it from both sides spreads the cosines of
    different voices apart, on clean, reverberant and telephone speech alike."""
    if weight == 0:
        return analysis, reference
    mean = weight * _unit_rows(analysis.embeddings).mean(axis=0)
    windows = replace(analysis, embeddings=_unit_rows(_unit_rows(analysis.embeddings) - mean).astype(np.float32))
    if reference is not None:
        reference = SpeakerModel(reference.names, _unit_rows(reference.embeddings - mean))
    return windows, reference


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(1e-8)


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
        rttm_form = WHITESPACE.sub("_", name.strip())
        if not rttm_form or rttm_form == UNKNOWN or rttm_form.startswith(f"{UNKNOWN}_"):
            raise ManifestError(f"reference '{given}': '{name}' cannot be a speaker name (empty, or taken by "
                                f"'{UNKNOWN}' speech); choose another NAME")
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
                raise _retold(error, f"reference '{name}': {error}") from None
        voice = embedder.embed(speech).sum(axis=0)
        embeddings.append(voice / max(np.linalg.norm(voice), 1e-8))
    return SpeakerModel(list(clips), np.stack(embeddings))


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


def _write_recording(out_dir: Path, audio: Path, segments: pd.DataFrame, curves: pd.DataFrame, names: _RttmNames,
                     duration_s: float, config: DiariseConfig) -> None:
    """OUT/<recording>.rttm (with the run's RTTM names), and the PNG and HTML views if asked."""
    from speakembed.pipelines.data.rttm import write_rttm

    speakers = segments["speaker"].map(lambda speaker: names.speakers.get(speaker, speaker))
    write_rttm(segments.assign(recording_id=names.recordings[audio.stem], speaker=speakers),
               out_dir / f"{audio.stem}.rttm")
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


def _enrolled_voices(database: str | Path | None) -> SpeakerDatabase | None:
    """The speaker database to diarise against (None without one); UsageError when it is empty."""
    if database is None:
        return None
    voices = open_database(database)
    if not voices.names:
        raise UsageError(f"{voices.path}: no speaker is enrolled; add one with `spk enrol NAME CLIP... --db {voices.path}`")
    return voices


def _check_config(config: DiariseConfig) -> None:
    if config.num_speakers is not None and config.num_speakers < 1:
        raise UsageError(f"--num-speakers must be at least 1, got {config.num_speakers}")
    if not 1 <= config.min_speakers <= config.max_speakers:
        raise UsageError(f"need 1 <= --min-speakers <= --max-speakers, got {config.min_speakers} and {config.max_speakers}")
