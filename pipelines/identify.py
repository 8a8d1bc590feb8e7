"""`spk identify`: who is speaking? Each clip against every voice of a speaker database.

Each clip is embedded with the database's encoder and scored against every enrolled speaker's
centroid by the scoring entry point (`scoring.backend.Scorer`: the database's back-end, optional
adaptive s-norm with a cohort). The top-n names come with their scores and, when a calibration
for those scores exists (`scoring.calibration`), with open-set posterior probabilities:
    P(speaker k | clip) = (prior / S) e^llr_k / ((1 - prior) + (prior / S) sum_j e^llr_j)
where S speakers are enrolled, llr_k is the calibrated log-likelihood ratio of the clip's score
against k, and `prior` is the probability that the clip's speaker is enrolled at all; the rest,
P(unknown | clip), is the probability that it is nobody enrolled. The decision is the most
probable of the S names and `unknown`; with `threshold` (or without a calibration) it is the best
name when its score reaches the threshold, else `unknown`.

Outputs in OUT (with `out_dir`): identities.parquet (one row per clip and candidate: item_id,
identity, rank, speaker, score, probability, encoder), failures.parquet (clips that could not be
embedded), report.json (database, encoder, enrolled names, scoring, decision rule, counts).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.pipelines.audio.clips import Clip, embed_speech, speech_of_clips
from speakembed.pipelines.base.errors import ManifestError, SpeakEmbedError, UnusableAudioError, UsageError
from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically
from speakembed.pipelines.base.progress import Progress
from speakembed.pipelines.data.failures import failure_row, write_failures
from speakembed.pipelines.data.items import collect_items
from speakembed.pipelines.data.manifests import SCHEMAS, write_table
from speakembed.pipelines.data.speaker_db import UNKNOWN, SpeakerDatabase, load_database_encoder, open_database
from speakembed.pipelines.scoring.calibration import DEFAULT_CALIBRATION, DEFAULT_PRIOR, resolve_calibration

IDENTITIES = SCHEMAS["identities"]  # identities.parquet (pipelines/data/manifests.py)


@dataclass(frozen=True)
class IdentifyConfig:
    """Settings of `spk identify`: encoder/checkpoint (None: the database's, the only one
    accepted), back-end (None: the database's), cohort store and its top-k for s-norm, calibration ("default": the encoder's
    shipped one; "none"; or a calibration.json), the prior that a clip's speaker is enrolled, a
    score threshold (None: decide on probabilities when calibrated, else the encoder's calibrated
    cosine threshold for raw cosine), how many names to give, VAD (None: the database's, as its
    clips were embedded), device, longest clip (s)."""

    encoder: str | None = None
    checkpoint: str | None = None
    backend: str | None = None
    cohort: str | None = None
    cohort_top_k: int | None = None  # None: the s-norm default (scoring.backend.DEFAULT_TOP_K)
    calibration: str | None = DEFAULT_CALIBRATION
    prior: float = DEFAULT_PRIOR
    threshold: float | None = None
    top: int = 5
    vad: str | None = None  # None: the database's
    device: str | None = None
    max_duration_s: float = 1800.0

    def __post_init__(self):
        if self.top < 1:
            raise UsageError(f"--top {self.top}: give at least 1 name per clip")
        if not 0.0 < self.prior < 1.0:
            raise UsageError(f"--prior {self.prior}: the probability that a speaker is enrolled lies strictly "
                             "between 0 and 1")


@dataclass(frozen=True)
class Candidate:
    """One enrolled speaker as a candidate for a clip: name, score, and posterior probability
    (None without a calibration)."""

    name: str
    score: float
    probability: float | None = None


@dataclass(frozen=True)
class Identification:
    """The answer for one clip: its id, the decision (an enrolled name or `unknown`), the top-n
    candidates (best first), the probability that it is nobody enrolled (None without a
    calibration), and whether the VAD kept too little of it (embedded energy-trimmed)."""

    item_id: str
    identity: str
    candidates: tuple[Candidate, ...]
    unknown_probability: float | None = None
    vad_fallback: bool = False

    @property
    def best(self) -> Candidate:
        """The highest-scoring candidate (the identity unless it is `unknown`)."""
        return self.candidates[0]

    def to_dict(self) -> dict:
        """The answer as JSON-ready values."""
        return {"item_id": self.item_id, "identity": self.identity, "unknown_probability": self.unknown_probability,
                "vad_fallback": self.vad_fallback, "candidates": [asdict(candidate) for candidate in self.candidates]}


@dataclass(frozen=True)
class DecisionRule:
    """How identities are decided: `rule` "probability" (most probable of the names and unknown,
    at `prior`) or "threshold" (best name when its score reaches `threshold`)."""

    rule: str
    prior: float
    threshold: float | None = None


@dataclass
class IdentifyReport:
    """What `spk identify` did: database, encoder id, enrolled names, how scores were made
    (Scorer.describe) and decided, one Identification per embedded clip, failure rows of the
    clips that could not be embedded, notes, and the output folder (None when nothing was written)."""

    database: Path
    encoder: str
    enrolled: list[str]
    scoring: dict
    decision: DecisionRule
    identifications: list[Identification] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None

    def to_dict(self) -> dict:
        """The report as JSON-ready values (report.json, `--json`)."""
        return {"database": str(self.database), "encoder": self.encoder, "enrolled": self.enrolled,
                "scoring": self.scoring, "decision": asdict(self.decision),
                "identifications": [identification.to_dict() for identification in self.identifications],
                "failures": self.failures, "notes": self.notes,
                "out_dir": None if self.out_dir is None else str(self.out_dir)}


def run(inputs: list[str | Path], database: str | Path, *, config: IdentifyConfig = IdentifyConfig(),
        out_dir: str | Path | None = None, progress: Progress | None = None) -> IdentifyReport:
    """Identify every clip of `inputs` (audio files, folders searched recursively, a
    segments.parquet) against the database folder `database`; write OUT files when `out_dir` is
    given (checked before any work). Item ids are as `spk embed` gives them.

    Clips that cannot be embedded are listed in the report's failures; when none can be, the
    clip's own error is raised (their common type for several, else UnusableAudioError).
    """
    out_dir = prepare_output_folder(out_dir) if out_dir is not None else None
    clips = [Clip.of_item(item) for item in collect_items(inputs)]
    report = identify_clips(database, clips, config=config, progress=progress)
    if out_dir is not None:
        write_outputs(report, out_dir)
    return report


def identify_clips(database: str | Path | SpeakerDatabase, clips: list[Clip], *,
                   config: IdentifyConfig = IdentifyConfig(), embedder=None, strict: bool = False,
                   progress: Progress | None = None) -> IdentifyReport:
    """Identify `clips` against `database` (a folder or an opened database); nothing is written.
    `embedder`: the database's encoder already loaded (the Python API keeps one). `strict`: raise
    the error of the first clip that cannot be embedded instead of listing it in the failures."""
    opened = database if isinstance(database, SpeakerDatabase) else open_database(database)
    if not opened.names:
        raise UsageError(f"{opened.path}: no speaker is enrolled; add one with `spk enrol NAME CLIP... --db {opened.path}`")
    embedder = embedder or load_database_encoder(opened, config.encoder, config.checkpoint, config.device)
    opened.require_encoder(embedder.encoder_id)
    scorer = opened.scorer(config.backend, config.cohort, config.cohort_top_k)
    notes = list(scorer.notes)
    calibration = resolve_calibration(opened.encoder.encoder_id, scorer.key, config.calibration,
                                      checkpoint=opened.encoder.checkpoint, notes=notes)
    decision = _decision_rule(opened, scorer.key, calibration, config)

    speech = speech_of_clips(clips, embedder.spec, config.vad or opened.vad, config.max_duration_s)
    errors = {clip.name: result for clip, result in zip(clips, speech) if isinstance(result, SpeakEmbedError)}
    kept = [(clip, result) for clip, result in zip(clips, speech) if not isinstance(result, SpeakEmbedError)]
    if errors and (strict or not kept):
        raise next(iter(errors.values())) if strict else _nothing_embedded(errors)
    embeddings = embed_speech([samples for _, samples in kept], embedder, progress, "identifying")
    scores = scorer.matrix(embeddings, opened.centroids())
    identifications = [
        decide(clip.name, row, opened.names, calibration, decision, config.top, bool(samples.vad_fallback))
        for (clip, samples), row in zip(kept, scores)
    ]
    failures = [failure_row(name, "audio" if isinstance(error, UnusableAudioError) else "decode", error)
                for name, error in errors.items()]
    return IdentifyReport(opened.path, embedder.encoder_id, opened.names, scorer.describe(), decision,
                          identifications, failures, notes)


def decide(item_id: str, scores: np.ndarray, names: list[str], calibration, decision: DecisionRule, top: int,
           vad_fallback: bool = False) -> Identification:
    """The Identification of one clip from its scores (S,) against the S enrolled `names`, with
    `calibration` (a score -> LLR map, or None) and the decision rule (see the module docstring)."""
    order = np.argsort(-scores, kind="stable")[:top]
    posteriors, unknown = (None, None) if calibration is None else open_set_posteriors(
        calibration.llr(scores), decision.prior)
    candidates = tuple(Candidate(names[index], float(scores[index]),
                                 None if posteriors is None else float(posteriors[index])) for index in order)
    best = candidates[0]
    if decision.rule == "threshold":
        accepted = best.score >= decision.threshold
    else:
        accepted = best.probability > unknown
    return Identification(item_id, best.name if accepted else UNKNOWN, candidates, unknown, vad_fallback)


def open_set_posteriors(llrs: np.ndarray, prior: float) -> tuple[np.ndarray, float]:
    """Posterior probabilities (S,) that a clip is each of S enrolled speakers, and that it is
    none of them, from its natural-log LLRs (S,) against each, when it is enrolled with
    probability `prior` (shared equally by the S speakers)."""
    llrs = np.asarray(llrs, dtype=np.float64)
    log_weights = np.concatenate([[np.log1p(-prior)], np.log(prior / len(llrs)) + llrs])
    weights = np.exp(log_weights - log_weights.max())
    posterior = weights / weights.sum()
    return posterior[1:], float(posterior[0])


def identities_table(report: IdentifyReport) -> pd.DataFrame:
    """identities.parquet's rows: one per clip and candidate, best first (rank 1)."""
    rows = [{"item_id": identification.item_id, "identity": identification.identity, "rank": rank,
             "speaker": candidate.name, "score": candidate.score,
             "probability": np.nan if candidate.probability is None else candidate.probability,
             "encoder": report.encoder}
            for identification in report.identifications
            for rank, candidate in enumerate(identification.candidates, start=1)]
    return pd.DataFrame(rows, columns=list(IDENTITIES.columns))


def write_outputs(report: IdentifyReport, out_dir: str | Path) -> None:
    """identities.parquet, failures.parquet and report.json in `out_dir` (an existing folder)."""
    out_dir = Path(out_dir)
    write_table(identities_table(report), out_dir / "identities.parquet", IDENTITIES.name)
    write_failures(report.failures, out_dir / "failures.parquet")
    report.out_dir = out_dir
    write_text_atomically(out_dir / "report.json", json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")


def _decision_rule(database: SpeakerDatabase, scoring_key: str, calibration, config: IdentifyConfig) -> DecisionRule:
    """Probabilities when calibrated and no threshold is given; else a score threshold: the user's,
    or the encoder's calibrated cosine threshold when the scores are raw cosines."""
    if config.threshold is not None:
        return DecisionRule("threshold", config.prior, config.threshold)
    if calibration is not None:
        return DecisionRule("probability", config.prior)
    if scoring_key == "none" and database.encoder.threshold is not None:
        return DecisionRule("threshold", config.prior, database.encoder.threshold)
    raise ManifestError(f"{database.path}: no calibration for '{scoring_key}' scores of {database.encoder.encoder_id}, "
                        "so nothing says which score is likely enough; give --threshold, or --calibration FILE "
                        "(`spk calibrate`)")


def _nothing_embedded(errors: dict[str, SpeakEmbedError]) -> SpeakEmbedError:
    """The error of a call in which no clip could be embedded: the clip's own for one clip, their
    common type for several (same exit code), else UnusableAudioError."""
    first = next(iter(errors.values()))
    if len(errors) == 1:
        return first
    message = f"none of the {len(errors)} clips could be embedded (first: {first})"
    if len({type(error) for error in errors.values()}) == 1:
        first.args = (message,)
        return first
    return UnusableAudioError(message, "unreadable")
