"""`spk verify`: is it the same speaker? One pair of recordings, or a whole trial list scored
against an embeddings store. Scores are cosine similarities of L2-normalised embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.base.errors import ManifestError
from speakembed.pipelines.base.outputs import prepare_output_file
from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.scoring.metrics import equal_error_rate
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.audio.speech import prepare_speech
from speakembed.pipelines.data.stores import read_store
from speakembed.pipelines.data.trials import read_trials


@dataclass(frozen=True)
class VerifyConfig:
    """Settings of `spk verify`: encoder/checkpoint, VAD, device and an optional threshold."""
    encoder: str = DEFAULT_ENCODER
    checkpoint: str | None = None  # a `spk train` output folder instead of the pretrained weights
    vad: str = "silero"
    device: str | None = None
    threshold: float | None = None  # None: the encoder's calibrated threshold (model card)

    def threshold_or(self, calibrated: float | None) -> float | None:
        """The user's threshold if given, else the encoder's calibrated one (None if it has none)."""
        return self.threshold if self.threshold is not None else calibrated


@dataclass(frozen=True)
class PairResult:
    """Cosine score of two recordings, the threshold used, the verdict and the encoder id."""
    score: float
    threshold: float
    same_speaker: bool
    encoder: str
    vad_fallback: tuple[bool, bool] = (False, False)  # per recording: the VAD kept too little, energy-trimmed audio was used

    def to_dict(self) -> dict:
        """The result as JSON-ready values (`spk verify --json`)."""
        return {"score": self.score, "threshold": self.threshold, "same_speaker": self.same_speaker, "encoder": self.encoder,
                "vad_fallback": list(self.vad_fallback)}


@dataclass(frozen=True)
class TrialsReport:
    """What `spk verify --trials` wrote: the scores path, encoder, threshold, trial counts, missing ids and the EER when labelled."""
    scores_path: Path
    encoder: str
    threshold: float
    num_trials: int
    num_scored: int
    missing_ids: list[str]
    eer: float | None  # when the list carries labels


def verify_pair(enroll: str | Path, test: str | Path, *, config: VerifyConfig = VerifyConfig()) -> PairResult:
    """Embed both recordings and compare them. Raises the typed errors of `prepare_speech`."""
    from speakembed.models.registry import load_encoder

    embedder = load_encoder(config.encoder, config.device, config.checkpoint)
    speech = [prepare_speech(path, embedder.spec, config.vad) for path in (enroll, test)]
    first, second = embedder.embed(speech)
    score = float(np.dot(first, second))
    threshold = config.threshold_or(embedder.spec.default_threshold)
    if threshold is None:
        raise ManifestError(f"{embedder.encoder_id} has no calibrated threshold; give --threshold")
    fallback = tuple(bool(getattr(samples, "vad_fallback", False)) for samples in speech)
    return PairResult(score, threshold, score >= threshold, embedder.encoder_id, fallback)


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
                        scored.missing_ids, eer)


@dataclass(frozen=True)
class ScoredTrials:
    """The scorable trials of a list with their cosine scores (a `scores` table: enroll, test,
    label, score, encoder, and same_speaker when a threshold is known), how many trials the list
    held, the ids not in the store, the threshold and the encoder id."""

    table: pd.DataFrame
    num_trials: int
    missing_ids: list[str]
    threshold: float | None
    encoder: str


def scored_trials(trials_path: str | Path, store_path: str | Path, *, config: VerifyConfig = VerifyConfig(),
                  progress: Progress | None = None) -> ScoredTrials:
    """Cosine scores of every trial whose two ids are in the store, nothing written (see `score_trials`)."""
    trials = read_trials(trials_path)
    store = read_store(store_path)
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
    scores = np.einsum("ij,ij->i", first, second).astype(np.float32)
    threshold = config.threshold_or(store.attrs.get("threshold"))
    table = trials[scorable].reset_index(drop=True).assign(score=scores, encoder=store.encoder)
    if threshold is not None:
        table["same_speaker"] = table["score"] >= threshold
    return ScoredTrials(table, len(trials), missing, threshold, store.encoder)


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
