"""`spk verify`: is it the same speaker? One pair of recordings, or a whole trial list scored
against an embeddings store.

Scores come from the one scorer (pipelines/scoring/backend.py): the cosine of the embeddings
after the encoder's back-end (`--backend default`, the one shipped beside its weights; `none`: raw
cosine; or a `spk train backend` folder), adaptive s-norm against `--cohort STORE`. A calibration
(pipelines/scoring/calibration.py; the shipped calibration.json by default) maps the score to a
log-likelihood ratio and, with `--prior`, to the probability of same speaker; the verdict is that
probability >= 0.5 (LLR >= the Bayes threshold of the prior), or score >= `--threshold` when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.base.errors import ManifestError, UsageError
from speakembed.pipelines.base.outputs import prepare_output_file
from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.scoring.backend import DEFAULT_BACKEND, DEFAULT_TOP_K, NO_BACKEND, Scorer, resolve_scorer
from speakembed.pipelines.scoring.calibration import (DEFAULT_CALIBRATION, DEFAULT_PRIOR, LogisticMap, bayes_threshold,
                                                      probability, resolve_calibration)
from speakembed.pipelines.scoring.metrics import equal_error_rate
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.audio.speech import prepare_speech
from speakembed.pipelines.data.stores import EmbeddingStore, read_store
from speakembed.pipelines.data.trials import read_trials


@dataclass(frozen=True)
class VerifyConfig:
    """Settings of `spk verify`: encoder/checkpoint, VAD, device; the scoring (back-end, s-norm
    cohort and its top-k), the calibration and prior of the probabilities, an optional threshold."""
    encoder: str = DEFAULT_ENCODER
    checkpoint: str | None = None  # a `spk train` output folder instead of the pretrained weights
    vad: str = "silero"
    device: str | None = None
    threshold: float | None = None  # a score threshold instead of the calibrated decision
    backend: str = DEFAULT_BACKEND  # "default" (shipped beside the weights), "none" (raw cosine), or a file/folder
    cohort: str | None = None  # an embeddings store of other voices: adaptive s-norm
    top_k: int = DEFAULT_TOP_K
    calibration: str = DEFAULT_CALIBRATION  # "default" (shipped), "none", or a calibration.json
    prior: float = DEFAULT_PRIOR  # prior probability of same speaker behind the probabilities and the verdict

    def __post_init__(self):
        if not 0.0 < self.prior < 1.0:
            raise UsageError(f"--prior {self.prior}: a prior probability lies strictly between 0 and 1")

    def scorer(self, encoder_id: str, checkpoint: str | None = None) -> Scorer:
        """The scorer of these settings for embeddings of `encoder_id` (of `checkpoint`'s weights)."""
        return resolve_scorer(encoder_id, backend=self.backend, cohort=self.cohort, top_k=self.top_k,
                              checkpoint=checkpoint)


@dataclass(frozen=True)
class Decisions:
    """Calibrated values and verdicts of a batch of scores: llr / probability None without a
    calibration, same_speaker None without a way to decide; threshold: the score threshold of the
    verdicts (the user's, or the score at the Bayes LLR threshold of the prior)."""
    llr: np.ndarray | None
    probability: np.ndarray | None
    same_speaker: np.ndarray | None
    threshold: float | None


def decide(scores: np.ndarray, calibration: LogisticMap | None, config: VerifyConfig,
           legacy_threshold: float | None = None) -> Decisions:
    """LLRs, probabilities (at config.prior) and verdicts of `scores`. The verdict is score >=
    config.threshold when given, else LLR >= the Bayes threshold of the prior (probability >= 0.5),
    else, for raw cosine scores only, score >= `legacy_threshold` (the model card's EER point)."""
    scores = np.asarray(scores)
    if calibration is None:
        threshold = config.threshold if config.threshold is not None else legacy_threshold
        return Decisions(None, None, None if threshold is None else scores >= threshold, threshold)
    llr = calibration.llr(scores)
    posterior = probability(llr, config.prior)
    if config.threshold is not None:
        return Decisions(llr, posterior, scores >= config.threshold, config.threshold)
    llr_threshold = bayes_threshold(config.prior)
    return Decisions(llr, posterior, llr >= llr_threshold, calibration.score_at(llr_threshold))


@dataclass(frozen=True)
class PairResult:
    """One pair: the score (cosine after the back-end, or its s-norm), the raw cosine, the LLR
    and probability of same speaker (None uncalibrated), the prior, the score threshold used, the
    verdict, the encoder id, the scoring record and notes."""
    score: float
    cosine: float
    llr: float | None
    probability: float | None
    prior: float
    threshold: float | None
    same_speaker: bool
    encoder: str
    scoring: dict
    vad_fallback: tuple[bool, bool] = (False, False)  # per recording: the VAD kept too little, energy-trimmed audio was used
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The result as JSON-ready values (`spk verify --json`)."""
        return {"probability": self.probability, "llr": self.llr, "score": self.score, "cosine": self.cosine,
                "prior": self.prior, "threshold": self.threshold, "same_speaker": self.same_speaker,
                "encoder": self.encoder, "scoring": self.scoring, "vad_fallback": list(self.vad_fallback),
                "notes": list(self.notes)}


@dataclass(frozen=True)
class TrialsReport:
    """What `spk verify --trials` wrote: the scores path, encoder, score threshold, trial counts,
    missing ids, the EER when labelled, the scoring record, whether probabilities were written, notes."""
    scores_path: Path
    encoder: str
    threshold: float | None
    num_trials: int
    num_scored: int
    missing_ids: list[str]
    eer: float | None  # when the list carries labels
    scoring: dict = field(default_factory=dict)
    calibrated: bool = False
    notes: list[str] = field(default_factory=list)


def verify_pair(enroll: str | Path, test: str | Path, *, config: VerifyConfig = VerifyConfig(),
                embedder=None) -> PairResult:
    """Embed both recordings and compare them. `embedder`: config's encoder already loaded (the
    studio keeps one per process), else it is loaded here. Raises the typed errors of
    `prepare_speech`, and UsageError when the scores can be neither calibrated nor thresholded."""
    from speakembed.models.registry import load_encoder

    embedder = embedder or load_encoder(config.encoder, config.device, config.checkpoint)
    scorer = config.scorer(embedder.encoder_id, config.checkpoint)
    notes = list(scorer.notes)
    calibration = resolve_calibration(embedder.encoder_id, scorer.key, config.calibration,
                                      checkpoint=config.checkpoint, notes=notes)
    legacy_threshold = _legacy_threshold(scorer, embedder.spec.default_threshold)
    if calibration is None and config.threshold is None and legacy_threshold is None:
        raise UsageError(f"{embedder.encoder_id}: no calibration for '{scorer.key}' scores ({'; '.join(notes)}); "
                         "give --threshold, or --calibration FILE from `spk calibrate`")
    speech = [prepare_speech(path, embedder.spec, config.vad) for path in (enroll, test)]
    first, second = embedder.embed(speech)
    score = float(scorer.pairs(first[None], second[None])[0])
    decisions = decide(np.array([score]), calibration, config, legacy_threshold)
    fallback = tuple(bool(getattr(samples, "vad_fallback", False)) for samples in speech)
    return PairResult(score, float(np.dot(first, second)), _first(decisions.llr), _first(decisions.probability),
                      config.prior, decisions.threshold, bool(decisions.same_speaker[0]), embedder.encoder_id,
                      scorer.describe(), fallback, tuple(notes))


def _first(values: np.ndarray | None) -> float | None:
    return None if values is None else float(values[0])


def _legacy_threshold(scorer: Scorer, card_threshold: float | None) -> float | None:
    """The model card's cosine threshold, which holds for raw cosine scores only."""
    return card_threshold if scorer.key == NO_BACKEND else None


def score_trials(trials_path: str | Path, store_path: str | Path, out_path: str | Path, *,
                 config: VerifyConfig = VerifyConfig(), progress: Progress | None = None) -> TrialsReport:
    """Score every trial whose two ids are in the store; write scores.parquet to `out_path`.

    Trials naming ids absent from the store (or whose item failed to embed) are left out and
    listed in the report; if no trial can be scored, ManifestError says why.
    """
    out_path = prepare_output_file(out_path)
    scored = scored_trials(trials_path, store_path, config=config, progress=progress)
    table = scored.table
    write_table(table, out_path, "scores")
    report_progress(progress, "scoring", len(table), len(table))
    labels = table["label"]
    eer = None
    if labels.notna().all() and labels.nunique() == 2:
        eer = equal_error_rate(table["score"].to_numpy(), labels.to_numpy(dtype=int)).eer
    return TrialsReport(Path(out_path), scored.encoder, scored.threshold, scored.num_trials, len(table),
                        scored.missing_ids, eer, scored.scorer.describe(), "llr" in table.columns, scored.notes)


@dataclass(frozen=True)
class ScoredTrials:
    """The scorable trials of a list with their scores (a `scores` table: enroll, test, label,
    score (after the back-end), cosine (raw), scoring (Scorer.key), encoder; llr and probability
    when calibrated; same_speaker when decidable), how many trials the list held, the ids not in
    the store, the score threshold, the encoder id, the scorer and notes."""

    table: pd.DataFrame
    num_trials: int
    missing_ids: list[str]
    threshold: float | None
    encoder: str
    scorer: Scorer
    notes: list[str]


def store_scorer(store: EmbeddingStore, config: VerifyConfig = VerifyConfig()) -> Scorer:
    """The scorer of `config` for the embeddings of `store` (its encoder id and, for a store made
    with --checkpoint, the checkpoint folder whose back-end is the default)."""
    return config.scorer(store.encoder, store.attrs.get("config", {}).get("checkpoint"))


def scored_trials(trials_path: str | Path, store_path: str | Path, *, config: VerifyConfig = VerifyConfig(),
                  progress: Progress | None = None) -> ScoredTrials:
    """Scores of every trial whose two ids are in the store, nothing written (see `score_trials`)."""
    trials = read_trials(trials_path)
    store = read_store(store_path)
    scorer = store_scorer(store, config)
    notes = list(scorer.notes)
    calibration = resolve_calibration(store.encoder, scorer.key, config.calibration,
                                      checkpoint=store.attrs.get("config", {}).get("checkpoint"), notes=notes)
    resolve = IdResolver(store.lookup())
    enroll_rows = trials["enroll"].map(resolve)
    test_rows = trials["test"].map(resolve)
    scorable = enroll_rows.notna() & test_rows.notna()
    missing = sorted(set(trials.loc[enroll_rows.isna(), "enroll"]) | set(trials.loc[test_rows.isna(), "test"]))
    if not scorable.any():
        raise ManifestError(
            f"{trials_path}: none of the trials' ids are in {store_path} (e.g. '{missing[0]}'); ids are paths "
            "relative to the folder given to `spk embed`, or segment ids"
        )
    report_progress(progress, "scoring", 0, int(scorable.sum()))
    first = store.embeddings[enroll_rows[scorable].astype(int).to_numpy()]
    second = store.embeddings[test_rows[scorable].astype(int).to_numpy()]
    scores = scorer.pairs(first, second)
    decisions = decide(scores, calibration, config, _legacy_threshold(scorer, store.attrs.get("threshold")))
    table = trials[scorable].reset_index(drop=True).assign(
        score=scores, cosine=np.einsum("ij,ij->i", first, second).astype(np.float32), scoring=scorer.key,
        encoder=store.encoder)
    if decisions.llr is not None:
        table["llr"] = decisions.llr.astype(np.float32)
        table["probability"] = decisions.probability.astype(np.float32)
    if decisions.same_speaker is not None:
        table["same_speaker"] = decisions.same_speaker
    return ScoredTrials(table, len(trials), missing, decisions.threshold, store.encoder, scorer, notes)


class IdResolver:
    """Maps a trial's id to a store row: the exact id, else the id without its extension, else
    the bare file stem (`kal_005` finds `kal/kal_005.flac`), each only when unambiguous."""

    def __init__(self, rows_by_id: dict[str, int]):
        self.tables = [
            rows_by_id,
            _unambiguous(rows_by_id, lambda item: PurePosixPath(item).with_suffix("").as_posix()),
            _unambiguous(rows_by_id, lambda item: PurePosixPath(item).stem),
        ]

    def __call__(self, trial_id: str) -> float:
        """The row of `trial_id`, or NaN when it is not in the store."""
        for table in self.tables:
            if trial_id in table:
                return table[trial_id]
        return np.nan


def _unambiguous(rows_by_id: dict[str, int], key) -> dict[str, int]:
    """Re-key rows by `key(item_id)`, dropping keys that more than one item maps to."""
    rows: dict[str, int | None] = {}
    for item_id, row in rows_by_id.items():
        name = key(item_id)
        rows[name] = None if name in rows else row
    return {name: row for name, row in rows.items() if row is not None}
