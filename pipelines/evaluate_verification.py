"""`spk evaluate verification`: score speaker verification: EER, minDCF, and for calibrated scores
Cllr and the actual DCF beside it, the score thresholds at the EER point and at a target
false-accept rate, top-k speaker retrieval and intra/inter-speaker distances, from an embeddings
store with a trial list, or from a labelled scores.parquet; see VerificationReport. Trials and
embeddings are compared as `spk verify` compares them (its back-end, s-norm and calibration).

Output folder layout (write_verification_report):
    OUT/report.json        VerificationReport.to_dict()
    OUT/report.md          the metrics table in markdown
    OUT/det.png, OUT/scores.png, OUT/embeddings_2d.png   (verification_plots)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError, some_ids
from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.scoring.metrics import (DetectionCost, EqualErrorRate, RetrievalAccuracy, SpeakerDistances,
                                          equal_error_rate, min_detection_cost, retrieval_accuracy, speaker_distances)
from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically
from speakembed.pipelines.data.stores import EmbeddingStore, read_store
from speakembed.pipelines.scoring.calibration import actual_detection_cost, cllr, threshold_at_far

if TYPE_CHECKING:
    from speakembed.pipelines.verify import VerifyConfig

P_TARGETS = (0.01, 0.05)  # priors of the minDCF (and actual DCF), with C_miss = C_fa = 1
DEFAULT_FAR = 0.01  # the target false-accept rate whose score threshold is reported
RETRIEVAL_KS = (1, 5)
ID_COLUMNS = ("item_id", "utt_id", "segment_id", "path")  # tried in this order when --id-column is not given
SPEAKER_COLUMN = "speaker"
DISTANCE_DEFINITION = ("mean cosine distance (1 - cosine) over all same-speaker pairs (intra) and all "
                       "different-speaker pairs (inter) of embeddings; each pair weighs the same")
UNRESOLVED_TRIALS_HINT = ("ids are paths relative to the folder given to `spk embed` (or segment ids; the extension "
                          "or folder may be left out when unambiguous), and items that failed to embed are not in it")


@dataclass(frozen=True)
class VerificationInputs:
    """What the metrics and pictures are computed from. Trial fields are None without trials,
    embedding fields None without a store."""

    scores: np.ndarray | None  # one score per labelled trial (cosine after the back-end, or s-norm)
    labels: np.ndarray | None  # 1 target, 0 non-target
    embeddings: np.ndarray | None  # (N, D): the valid embeddings whose speaker is known
    speakers: np.ndarray | None  # the speaker of each row of `embeddings`


@dataclass(frozen=True)
class TrialMetrics:
    """EER, its threshold, minDCF per prior, trial counts of a scored trial list; for calibrated
    scores (an LLR per trial) Cllr (bits) and the actual DCF per prior; the score threshold of
    the target false-accept rate `far`; and what scored the trials."""
    eer: EqualErrorRate
    costs: tuple[DetectionCost, ...]  # one per P_TARGETS prior
    trials: int  # trials scored
    targets: int
    skipped: int | None = None  # trials of the list left out: an id is not in the store (None: from scores)
    cllr: float | None = None  # None: uncalibrated scores
    actual_costs: tuple[float, ...] | None = None  # one per P_TARGETS prior; None: uncalibrated
    far: float = DEFAULT_FAR
    far_threshold: float | None = None  # lowest score threshold with a false-accept rate <= far
    scoring: dict | None = None  # Scorer.describe() of the scores (None: unknown, from an old scores file)

    def to_dict(self) -> dict:
        """The metrics as JSON-ready values (NaN as None)."""
        actual = self.actual_costs or (None,) * len(self.costs)
        return {"eer": self.eer.eer, "eer_pct": 100 * self.eer.eer, "eer_threshold": self.eer.threshold,
                "min_dcf": {f"{cost.p_target:g}": {"min_dcf": cost.min_dcf, "threshold": _finite(cost.threshold),
                                                   "actual_dcf": value}
                            for cost, value in zip(self.costs, actual)},
                "cllr": self.cllr,
                "thresholds": {"eer_point": _finite(self.eer.threshold), "far": self.far,
                               "at_far": None if self.far_threshold is None else _finite(self.far_threshold)},
                "scoring": self.scoring}


@dataclass(frozen=True)
class EmbeddingMetrics:
    """Top-k speaker retrieval and intra/inter-speaker cosine distances of labelled embeddings."""
    retrieval: RetrievalAccuracy  # each embedding against all other embeddings, by cosine
    distances: SpeakerDistances
    embeddings: int  # valid embeddings with a known speaker
    speakers: int
    without_speaker: int  # valid embeddings left out: their speaker is unknown

    def to_dict(self) -> dict:
        """The metrics as JSON-ready values (NaN as None)."""
        return {"retrieval": {**{f"top{k}": _finite(value) for k, value in self.retrieval.accuracy.items()},
                              "queries": self.retrieval.queries, "skipped": self.retrieval.skipped},
                "distances": {"intra": _finite(self.distances.intra), "inter": _finite(self.distances.inter),
                              "intra_pairs": self.distances.intra_pairs, "inter_pairs": self.distances.inter_pairs,
                              "definition": DISTANCE_DEFINITION}}


@dataclass
class VerificationReport:
    """Metrics of one evaluation; `trials` is None without trials or scores, `embedding_space`
    None without a store. Rates are fractions (`*_pct`: percentages); distances are 1 - cosine."""

    sources: dict[str, str | None]  # embeddings, trials, scores, speakers: what was read
    trials: TrialMetrics | None
    embedding_space: EmbeddingMetrics | None
    inputs: VerificationInputs = field(repr=False)
    notes: list[str] = field(default_factory=list)  # caveats: left-out items, skipped pictures
    plots: list[str] = field(default_factory=list)  # file names written by write_verification_report

    def counts(self) -> dict[str, int | None]:
        """How many trials, targets, non-targets, skipped trials, embeddings and speakers were scored (None where absent)."""
        trials, space = self.trials, self.embedding_space
        return {"trials": trials.trials if trials else None, "targets": trials.targets if trials else None,
                "nontargets": trials.trials - trials.targets if trials else None,
                "skipped_trials": trials.skipped if trials else None,
                "embeddings": space.embeddings if space else None, "speakers": space.speakers if space else None,
                "without_speaker": space.without_speaker if space else None}

    def to_dict(self) -> dict:
        """The report as JSON-ready values (report.json)."""
        return {"sources": self.sources, "counts": self.counts(),
                **(self.trials.to_dict() if self.trials else dict.fromkeys(TRIAL_KEYS)),
                **(self.embedding_space.to_dict() if self.embedding_space else {"retrieval": None, "distances": None}),
                "notes": self.notes, "plots": self.plots}


TRIAL_KEYS = ("eer", "eer_pct", "eer_threshold", "min_dcf", "cllr", "thresholds", "scoring")  # TrialMetrics.to_dict


def _finite(value: float) -> float | None:
    """`value`, or None when it is NaN or infinite (JSON has neither)."""
    return float(value) if np.isfinite(value) else None


def evaluate_verification(*, embeddings: str | Path | None = None, trials: str | Path | None = None,
                          scores: str | Path | None = None, speakers: str | Path | None = None,
                          id_column: str | None = None, speaker_column: str | None = None,
                          strict: bool = False, out_dir: str | Path | None = None,
                          config: VerifyConfig | None = None, far: float = DEFAULT_FAR) -> VerificationReport:
    """Evaluate speaker embeddings and/or verification scores.

    Trial metrics (EER, minDCF at P_TARGETS, the score threshold at false-accept rate `far`; Cllr
    and actual DCF when the scores are calibrated) come from `trials` scored against the store
    `embeddings` as `spk verify --trials` scores them (verify.scored_trials with `config`: the
    encoder's back-end, s-norm, calibration), or from a labelled `scores` parquet (columns
    enroll, test, score, label; llr when calibrated). Trials naming an id that is not in the store
    (an item that failed to embed) are skipped and counted in the report; with `strict` they are
    refused (ManifestError), as is a list none of whose trials can be scored. Scored trials must
    carry a label and both labels must occur (else ManifestError).
    Embedding metrics (top-k retrieval, intra/inter-speaker distances) need the store and each
    item's speaker: from the `speakers` table (see read_speaker_table), else the first path
    component of the item id (`kal/kal_000.flac` -> `kal`); items with no known speaker are left
    out. They compare the embeddings after the same back-end (s-norm is for trials only).
    `out_dir`, where write_verification_report will write, is checked (and created) before any
    work, so that a bad `--out` fails at once (OutputError).
    """
    if trials is not None and scores is not None:
        raise ValueError("give trials or scores, not both")
    if trials is not None and embeddings is None:
        raise ValueError("trials are scored against embeddings; give both")
    if not 0.0 < far < 1.0:
        raise UsageError(f"--far {far}: a false-accept rate lies strictly between 0 and 1")
    if out_dir is not None:
        prepare_output_folder(out_dir)
    config = config if config is not None else _default_config()
    store = read_store(embeddings) if embeddings is not None else None
    notes: list[str] = []
    trial_metrics, trial_scores, labels, scorer = None, None, None, None
    if trials is not None:
        table, skipped, scorer = _score_trial_list(trials, embeddings, strict, config, notes)
        trial_metrics, trial_scores, labels = _trial_metrics(table, trials, far, skipped, scorer.describe())
    elif scores is not None:
        trial_metrics, trial_scores, labels = _trial_metrics(read_table(scores, "scores"), scores, far)
    vectors, names, space = None, None, None
    if store is not None:
        from speakembed.pipelines.verify import store_scorer  # imported here: verify.py pulls in the encoders

        scorer = scorer or store_scorer(store, config)
        notes += [note for note in scorer.notes if note not in notes]
        vectors, names, without = speaker_embeddings(store, speakers, id_column, speaker_column, notes)
        vectors = scorer.transform(vectors)
        space = _embedding_metrics(vectors, names, without, notes)
    sources = {"embeddings": _text(embeddings), "trials": _text(trials), "scores": _text(scores),
               "speakers": _text(speakers) if speakers is not None else
               ("first path component of each item id" if store is not None else None),
               "scoring": None if scorer is None else scorer.key}
    return VerificationReport(sources, trial_metrics, space, VerificationInputs(trial_scores, labels, vectors, names),
                              notes)


def _default_config() -> VerifyConfig:
    from speakembed.pipelines.verify import VerifyConfig  # imported here: verify.py pulls in the encoders

    return VerifyConfig()


def _text(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


def _resolver(store: EmbeddingStore):
    from speakembed.pipelines.verify import IdResolver  # imported here: verify.py pulls in the encoders

    return IdResolver(store.lookup())


def _score_trial_list(trials: str | Path, store_path: str | Path, strict: bool, config: VerifyConfig,
                      notes: list[str]) -> tuple[pd.DataFrame, int, object]:
    """The scores table of the trials of `trials` whose ids are in the store, how many were
    skipped (noted in `notes`; ManifestError instead when `strict`) and the scorer. The scoring is
    `spk verify --trials`' own, so both commands give the same scores."""
    from speakembed.pipelines import verify  # imported here: verify.py pulls in the encoders

    scored = verify.scored_trials(trials, store_path, config=config)
    table = scored.table
    notes += scored.notes
    skipped = scored.num_trials - len(table)
    if skipped:
        unresolved = (f"{skipped} of {scored.num_trials} trials name ids that are not in {store_path} "
                      f"({some_ids(scored.missing_ids)})")
        if strict:
            raise ManifestError(f"{trials}: {unresolved}; {UNRESOLVED_TRIALS_HINT}")
        notes.append(f"{unresolved}: skipped, the metrics cover the {len(table)} others; "
                     "give --strict to refuse such a list")
    return table, skipped, scored.scorer


def labelled_scores(table: pd.DataFrame, source: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The score (float64) and label (int) columns of a scores table read from `source`;
    ManifestError unless every trial is labelled, both labels occur and every score is finite."""
    if "label" not in table.columns:
        raise ManifestError(f"{source}: needs labelled trials, but has no 'label' column; score a trial list with "
                            "labels (Kaldi 'target|nontarget', VoxCeleb '1|0', or an 'enroll test label' TSV)")
    _require_labels(table["label"], source)
    scores = table["score"].to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ManifestError(f"{source}: {int((~np.isfinite(scores)).sum())} scores are missing or not finite")
    return scores, table["label"].to_numpy(dtype=int)


def _require_labels(labels: pd.Series, path: str | Path) -> None:
    """ManifestError unless every trial is labelled 0 or 1 and both labels occur."""
    if labels.isna().any():
        raise ManifestError(f"{path}: needs labelled trials, but {int(labels.isna().sum())} of {len(labels)} have no "
                            "label; give 'enroll test target|nontarget' (or '1|0 enroll test') lines")
    values = set(labels.astype(int))
    if not values <= {0, 1}:
        raise ManifestError(f"{path}: labels must be 1 (target) or 0 (non-target), found {sorted(values - {0, 1})}")
    if len(values) < 2:
        only = "target" if values == {1} else "non-target"
        raise ManifestError(f"{path}: all {len(labels)} trials are {only} trials; EER and minDCF need both target "
                            "and non-target trials")


def _trial_metrics(table: pd.DataFrame, source: str | Path, far: float, skipped: int | None = None,
                   scoring: dict | None = None) -> tuple[TrialMetrics, np.ndarray, np.ndarray]:
    """The metrics of a labelled scores table read from `source`, its scores and its labels. The
    calibrated metrics come from its `llr` column when it has one."""
    scores, labels = labelled_scores(table, source)
    costs = tuple(min_detection_cost(scores, labels, p_target) for p_target in P_TARGETS)
    calibrated_cllr, actual = None, None
    if "llr" in table.columns and np.isfinite(table["llr"].to_numpy(dtype=np.float64)).all():
        llr = table["llr"].to_numpy(dtype=np.float64)
        calibrated_cllr = cllr(llr, labels)
        actual = tuple(actual_detection_cost(llr, labels, p_target) for p_target in P_TARGETS)
    if scoring is None and "scoring" in table.columns:
        scoring = {"key": ", ".join(sorted(set(table["scoring"].astype(str))))}
    metrics = TrialMetrics(equal_error_rate(scores, labels), costs, len(labels), int(labels.sum()), skipped,
                           calibrated_cllr, actual, far, threshold_at_far(scores, labels, far), scoring)
    return metrics, scores, labels


def read_speaker_table(path: str | Path, id_column: str | None = None,
                       speaker_column: str | None = None) -> pd.DataFrame:
    """Item id -> speaker, as a table with columns `item_id` and `speaker` (strings).

    `path` is a segments.parquet, or a TSV (`.tsv`, or a tab in its header) or CSV with a header.
    The id column is `id_column`, else the first of ID_COLUMNS present; the speaker column is
    `speaker_column`, else `speaker`. Rows without an id or speaker are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such speaker table")
    table = read_table(path, "segments") if path.suffix == ".parquet" else _read_delimited(path)
    id_column = id_column or next((name for name in ID_COLUMNS if name in table.columns), None)
    speaker_column = speaker_column or SPEAKER_COLUMN
    for name, option, hint in ((id_column, "--id-column", f"one of {', '.join(ID_COLUMNS)}"),
                               (speaker_column, "--speaker-column", SPEAKER_COLUMN)):
        if name is None or name not in table.columns:
            raise ManifestError(f"{path}: no {name or 'id'} column ({hint}) among {list(table.columns)}; "
                                f"name it with {option}")
    pairs = table[[id_column, speaker_column]].dropna().astype(str)
    return pairs.set_axis(["item_id", "speaker"], axis=1).reset_index(drop=True)


def _read_delimited(path: Path) -> pd.DataFrame:
    with path.open(encoding="utf-8", errors="replace") as file:
        header = file.readline()
    separator = "\t" if path.suffix == ".tsv" or "\t" in header else ","
    try:
        return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as error:
        raise ManifestError(f"{path}: not a readable speaker table ({error})") from None


def speaker_embeddings(store: EmbeddingStore, speakers: str | Path | None = None, id_column: str | None = None,
                       speaker_column: str | None = None,
                       notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The valid embeddings (N, D) whose speaker is known, their speakers (N,), and how many valid
    embeddings were left out (noted in `notes`). The speaker of an item comes from the `speakers`
    table (read_speaker_table; its ids are found as trial ids are), else the first path
    component of its id."""
    notes = notes if notes is not None else []
    if speakers is not None:
        speaker_of = _speakers_from_table(read_speaker_table(speakers, id_column, speaker_column), _resolver(store),
                                          speakers, notes)
    else:
        speaker_of = {row: item_id.split("/", 1)[0] for item_id, row in store.lookup().items() if "/" in item_id}
    rows = sorted(speaker_of)
    without = len(store.lookup()) - len(rows)
    if without:
        hint = "" if speakers is not None else " (their id has no speaker folder; give --speakers FILE)"
        notes.append(f"{without} valid embeddings have no known speaker{hint} and are left out")
    return store.embeddings[rows], np.array([speaker_of[row] for row in rows], dtype=str), without


def _speakers_from_table(table: pd.DataFrame, resolver, path: str | Path, notes: list[str]) -> dict[int, str]:
    """Store row -> speaker, for the table's ids found in the store (through the trial id rules)."""
    if table.empty:
        raise ManifestError(f"{path}: the speaker table holds no rows with both an id and a speaker")
    rows = table["item_id"].map(resolver)
    found = rows.notna()
    if not found.any():
        raise ManifestError(f"{path}: none of its ids are in the embeddings store (e.g. '{table['item_id'].iloc[0]}'); "
                            "give --id-column naming the column that holds the item ids")
    if not found.all():
        notes.append(f"{int((~found).sum())} ids of {path} are not in the store (e.g. "
                     f"'{table.loc[~found, 'item_id'].iloc[0]}') and are ignored")
    return dict(zip(rows[found].astype(int), table.loc[found, "speaker"]))


def _embedding_metrics(vectors: np.ndarray, speakers: np.ndarray, without: int, notes: list[str]) -> EmbeddingMetrics:
    retrieval = retrieval_accuracy(vectors, speakers, RETRIEVAL_KS)
    if retrieval.skipped:
        notes.append(f"{retrieval.skipped} embeddings are the only one of their speaker: not used as retrieval queries")
    return EmbeddingMetrics(retrieval, speaker_distances(vectors, speakers), len(vectors),
                            len(set(speakers.tolist())), without)


def verification_table(report: VerificationReport) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (metric, value) of the human-readable table, as text; rows of metrics
    that could not be computed (no trials, no store) are left out. Rates and accuracies in %."""
    rows = []
    if report.trials is not None:
        metrics = report.trials
        rows.append(["EER", f"{100 * metrics.eer.eer:.2f} %"])
        rows += [[f"minDCF (p_target={cost.p_target:g})", f"{cost.min_dcf:.4f}"] for cost in metrics.costs]
        if metrics.actual_costs is not None:
            rows += [[f"actual DCF (p_target={cost.p_target:g})", f"{value:.4f}"]
                     for cost, value in zip(metrics.costs, metrics.actual_costs)]
            rows.append(["Cllr", f"{metrics.cllr:.4f} bits"])
        rows.append(["threshold at the EER point", f"{metrics.eer.threshold:.4f}"])
        rows.append([f"threshold at FAR {100 * metrics.far:g} %", _decimal(metrics.far_threshold)])
    if report.embedding_space is not None:
        space = report.embedding_space
        rows += [[f"top-{k} retrieval", _percent(value)] for k, value in space.retrieval.accuracy.items()]
        rows += [["intra-speaker distance", _decimal(space.distances.intra)],
                 ["inter-speaker distance", _decimal(space.distances.inter)]]
    if report.trials is not None:
        rows.append(["trials", f"{report.trials.trials} ({report.trials.targets} target)"])
        if report.trials.skipped:
            rows.append(["trials skipped (id not in the store)", str(report.trials.skipped)])
    if report.embedding_space is not None:
        rows.append(["embeddings", f"{report.embedding_space.embeddings} ({report.embedding_space.speakers} speakers)"])
    if report.sources.get("scoring"):
        rows.append(["scored by", report.sources["scoring"]])
    return ["metric", "value"], rows


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f} %" if np.isfinite(fraction) else "n/a"


def _decimal(value: float) -> str:
    return f"{value:.4f}" if np.isfinite(value) else "n/a"


VERIFICATION_NOTE = ("minDCF and actual DCF (the Bayes decisions of the calibrated LLRs): normalised, C_miss = C_fa = 1; "
                     "Cllr in bits (below 1: the probabilities are informative); thresholds are scores (accept when "
                     "score >= threshold); retrieval: each embedding against all others by cosine after the back-end; "
                     "distances: 1 - cosine, mean over all same-speaker (intra) and different-speaker (inter) pairs")


def write_verification_report(report: VerificationReport, out_dir: str | Path) -> list[Path]:
    """Write the pictures (those the inputs allow), OUT/report.json and OUT/report.md into
    `out_dir`, created if missing (its parent must exist). Records the pictures in `report.plots`
    and any skipped picture in `report.notes`; returns the paths written."""
    from speakembed.pipelines.reports import verification_plots as plots

    out_dir = prepare_output_folder(out_dir)
    inputs, written = report.inputs, []
    if report.trials is not None:
        written.append(plots.render_det(inputs.scores, inputs.labels, out_dir / "det.png", eer=report.trials.eer,
                                        costs=report.trials.costs))
        written.append(plots.render_score_histograms(inputs.scores, inputs.labels, out_dir / "scores.png",
                                                     eer=report.trials.eer))
    if report.embedding_space is not None:
        path, note = plots.render_embeddings_2d(inputs.embeddings, inputs.speakers, out_dir / "embeddings_2d.png")
        written += [path] if path is not None else []
        report.notes += [note] if note else []
    report.plots = [path.name for path in written]
    written.append(write_text_atomically(out_dir / "report.json", json.dumps(report.to_dict(), indent=2) + "\n"))
    written.append(write_text_atomically(out_dir / "report.md", _verification_markdown(report)))
    return written


def _verification_markdown(report: VerificationReport) -> str:
    headers, rows = verification_table(report)
    lines = ["# Speaker verification evaluation", ""]
    lines += [f"- {name}: `{source}`" for name, source in report.sources.items() if source is not None]
    lines += [f"- {VERIFICATION_NOTE}"] + [f"- {note}" for note in report.notes]
    lines += ["", f"| {headers[0]} | {headers[1]} |", "|---|---:|"] + [f"| {name} | {value} |" for name, value in rows]
    if report.plots:
        lines += [""] + [f"![{Path(name).stem}]({name})" for name in report.plots]
    return "\n".join(lines) + "\n"
