"""`spk evaluate identification`: how well enrolled people are named.

From `spk identify --out` (identities.parquet, with report.json beside it naming the enrolled
people, or `--db`) and each clip's true speaker (a speaker table, else the first folder of its
item id, as `spk evaluate verification` takes them):
    closed set   over the clips of enrolled people: top-1 and top-5 accuracy (the true name is
                 the first, or among the first five, candidates)
    open set     at the decisions `spk identify` made: miss rate (an enrolled person's clip
                 answered `unknown`), confusion rate (answered with another enrolled name) and
                 detection-and-identification rate (named rightly), over enrolled people's
                 clips; false-alarm rate (a clip of someone not enrolled given a name) over the
                 others; and the open-set equal error rate of the best-candidate score, where
                 a miss is "not named rightly at that threshold" (FNIR = FPIR)
From a named diarisation (`spk diarise --db`, RTTM) and a reference RTTM with the same names:
pyannote.metrics' identification error rate (names must match: no optimal mapping; speech of
people not enrolled, labelled `unknown`, counts as confusion) with its components, beside the DER
(optimal mapping) of `spk evaluate diarisation`.
All rates are fractions; OUT/report.json and OUT/report.md with `write_report`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically
from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.data.speaker_db import UNKNOWN, open_database

TOP_KS = (1, 5)
DEFAULT_COLLAR_S = 0.0  # identification error rate: every second of speech counts


@dataclass(frozen=True)
class ClosedSetScores:
    """Top-k accuracies (fractions; None when identify gave fewer than k names of more than k
    enrolled people) over `clips` clips of enrolled people."""

    clips: int
    top_k: dict[int, float | None]


@dataclass(frozen=True)
class OpenSetScores:
    """Open-set rates (fractions) at the decisions made: over `genuine` clips of enrolled people,
    the miss rate (unknown), confusion rate (another name) and detection-and-identification
    rate (right name); over `impostor` clips of others, the false-alarm rate (None without
    impostors); and the equal error rate of the best-candidate score with its threshold (None
    without both kinds of clip)."""

    genuine: int
    impostors: int
    miss_rate: float | None
    confusion_rate: float | None
    detection_identification_rate: float | None
    false_alarm_rate: float | None
    eer: float | None
    eer_threshold: float | None


@dataclass
class IdentificationReport:
    """What `spk evaluate identification` measured on an identities table: clip counts, the
    enrolled names, closed-set and open-set scores, per-speaker top-1 and miss rate, notes."""

    identities: str
    enrolled: list[str]
    clips: int
    closed_set: ClosedSetScores
    open_set: OpenSetScores
    per_speaker: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as JSON-ready values (report.json, `--json`)."""
        return asdict(self)


@dataclass(frozen=True)
class NamedDiarisationScores:
    """Identification error rate of one recording (or all: `recording_id` "overall") with its
    components in seconds of reference speech, and the DER (optimal mapping) beside it."""

    recording_id: str
    ier: float
    correct_s: float
    confusion_s: float
    missed_s: float
    false_alarm_s: float
    reference_s: float
    der: float


@dataclass
class NamedDiarisationReport:
    """Identification error rates of a named diarisation against a reference, per recording and overall."""

    reference: str
    hypothesis: str
    collar_s: float
    recordings: list[NamedDiarisationScores]
    overall: NamedDiarisationScores
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as JSON-ready values (report.json, `--json`)."""
        return asdict(self)


# ----------------------------------------------------------------------------- identities


def evaluate_identification(identities: str | Path, *, database: str | Path | None = None,
                            speakers: str | Path | None = None, id_column: str | None = None,
                            speaker_column: str | None = None) -> IdentificationReport:
    """Score `spk identify`'s identities.parquet (or its --out folder); see the module docstring.

    The enrolled names come from `database` when given, else from report.json beside the table.
    The true speakers come from `speakers` (a table as `spk evaluate verification --speakers`
    reads), else the first folder of each item id. ManifestError when no clip has a known speaker.
    """
    table_path = _identities_path(identities)
    table = read_table(table_path, "identities")
    enrolled = _enrolled_names(table_path, database)
    notes: list[str] = []
    truth = _true_speakers(table["item_id"].drop_duplicates().tolist(), speakers, id_column, speaker_column, notes)
    clips = _clips(table, truth)
    if clips.empty:
        raise ManifestError(f"{table_path}: no clip has a known speaker; give --speakers FILE "
                            "(or identify a folder laid out as SPEAKER/CLIP)")
    genuine = clips[clips["truth"].isin(enrolled)]
    impostors = clips[~clips["truth"].isin(enrolled)]
    if genuine.empty:
        notes.append("no clip is of an enrolled person: closed-set accuracy, miss and confusion rates are undefined")
    if impostors.empty:
        notes.append("every clip is of an enrolled person: the false-alarm rate is undefined "
                     "(hold some people out of the database to measure it)")
    return IdentificationReport(str(table_path), enrolled, len(clips),
                                _closed_set(genuine, table, len(enrolled), notes), _open_set(genuine, impostors),
                                _per_speaker(genuine), notes)


def _identities_path(identities: str | Path) -> Path:
    path = Path(identities)
    if path.is_dir():
        path = path / "identities.parquet"
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such identities table; write one with `spk identify ... --out DIR`")
    return path


def _enrolled_names(table_path: Path, database: str | Path | None) -> list[str]:
    """The database's names, else those report.json beside the table lists."""
    if database is not None:
        return open_database(database).names
    report = table_path.with_name("report.json")
    try:
        return list(json.loads(report.read_text(encoding="utf-8"))["enrolled"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ManifestError(f"{report}: cannot tell who was enrolled (no report.json of `spk identify` beside "
                            f"{table_path.name}); give --db DIR") from None


def _true_speakers(item_ids: list[str], speakers: str | Path | None, id_column: str | None,
                   speaker_column: str | None, notes: list[str]) -> dict[str, str]:
    """Item id -> true speaker, for the items whose speaker is known."""
    if speakers is None:
        truth = {item_id: item_id.split("/", 1)[0] for item_id in item_ids if "/" in item_id}
    else:
        from speakembed.pipelines.evaluate_verification import read_speaker_table
        from speakembed.pipelines.verify import IdResolver

        table = read_speaker_table(speakers, id_column, speaker_column)
        resolve = IdResolver({item_id: row for row, item_id in enumerate(item_ids)})
        rows = table["item_id"].map(resolve)
        truth = {item_ids[int(row)]: speaker for row, speaker in zip(rows, table["speaker"]) if not pd.isna(row)}
    unknown = len(item_ids) - len(truth)
    if unknown:
        notes.append(f"{unknown} of {len(item_ids)} clips have no known speaker and are left out")
    return truth


def _clips(table: pd.DataFrame, truth: dict[str, str]) -> pd.DataFrame:
    """One row per clip with a known speaker: item_id, truth, identity, best (rank-1 name), score (rank-1)."""
    best = table[table["rank"] == 1].drop_duplicates("item_id").set_index("item_id")
    known = [item_id for item_id in best.index if item_id in truth]
    return pd.DataFrame({"item_id": known, "truth": [truth[item_id] for item_id in known],
                         "identity": best.loc[known, "identity"].astype(str).to_numpy(),
                         "best": best.loc[known, "speaker"].astype(str).to_numpy(),
                         "score": best.loc[known, "score"].astype(float).to_numpy()})


def _closed_set(genuine: pd.DataFrame, table: pd.DataFrame, enrolled: int, notes: list[str]) -> ClosedSetScores:
    ranks = table[table["item_id"].isin(genuine["item_id"])]
    given = int(table["rank"].max()) if len(table) else 0
    accuracies: dict[int, float | None] = {}
    for k in TOP_KS:
        if genuine.empty or (k > given and given < enrolled):
            accuracies[k] = None
            if not genuine.empty:
                notes.append(f"top-{k}: identify gave {given} names per clip; run it with --top {k}")
            continue
        hits = ranks[ranks["rank"] <= k].merge(genuine[["item_id", "truth"]], on="item_id")
        accuracies[k] = float((hits["speaker"] == hits["truth"]).groupby(hits["item_id"]).any().sum() / len(genuine))
    return ClosedSetScores(len(genuine), accuracies)


def _open_set(genuine: pd.DataFrame, impostors: pd.DataFrame) -> OpenSetScores:
    def rate(mask: pd.Series, over: pd.DataFrame) -> float | None:
        return float(mask.sum() / len(over)) if len(over) else None

    eer, threshold = open_set_eer(genuine["score"].to_numpy(), (genuine["best"] == genuine["truth"]).to_numpy(),
                                  impostors["score"].to_numpy())
    return OpenSetScores(
        genuine=len(genuine), impostors=len(impostors),
        miss_rate=rate(genuine["identity"] == UNKNOWN, genuine),
        confusion_rate=rate((genuine["identity"] != UNKNOWN) & (genuine["identity"] != genuine["truth"]), genuine),
        detection_identification_rate=rate(genuine["identity"] == genuine["truth"], genuine),
        false_alarm_rate=rate(impostors["identity"] != UNKNOWN, impostors),
        eer=eer, eer_threshold=threshold)


def open_set_eer(genuine_scores: np.ndarray, genuine_right: np.ndarray,
                 impostor_scores: np.ndarray) -> tuple[float | None, float | None]:
    """Equal error rate (fraction) and its threshold of open-set identification by the best
    candidate's score: at threshold t, FNIR(t) = share of genuine clips not named rightly with a
    score >= t (`genuine_right`: the best candidate is the true person), FPIR(t) = share of
    impostor clips scoring >= t. (None, None) without genuine or impostor clips.

    It is the verification EER (scoring.metrics) of the genuine clips as targets and the
    impostors as non-targets, a genuine clip whose best candidate is someone else scoring below
    every threshold (it is missed whatever the threshold)."""
    if len(genuine_scores) == 0 or len(impostor_scores) == 0:
        return None, None
    from speakembed.pipelines.scoring.metrics import equal_error_rate

    floor = min(np.min(genuine_scores), np.min(impostor_scores)) - 1.0
    targets = np.where(np.asarray(genuine_right, dtype=bool), genuine_scores, floor)
    scores = np.concatenate([targets, impostor_scores])
    labels = np.concatenate([np.ones(len(targets), dtype=bool), np.zeros(len(impostor_scores), dtype=bool)])
    point = equal_error_rate(scores, labels)
    return point.eer, point.threshold


def _per_speaker(genuine: pd.DataFrame) -> dict[str, dict]:
    """Enrolled person -> clips, top-1 accuracy and miss rate over their clips."""
    return {str(speaker): {"clips": len(rows), "top_1": float((rows["best"] == speaker).mean()),
                           "miss_rate": float((rows["identity"] == UNKNOWN).mean())}
            for speaker, rows in genuine.groupby("truth")}


# ----------------------------------------------------------------------------- named diarisation


def evaluate_named_diarisation(reference: str | Path, hypothesis: str | Path, *,
                               collar_s: float = DEFAULT_COLLAR_S) -> NamedDiarisationReport:
    """Identification error rate of the RTTM file or folder `hypothesis` (speaker names as
    `spk diarise --db` gives them) against the RTTM file or folder `reference`, per recording and
    overall; ±`collar_s` seconds around reference boundaries are not scored."""
    from pyannote.metrics.identification import IdentificationErrorRate

    from speakembed.pipelines.data.rttm import read_rttm, to_annotations
    from speakembed.pipelines.evaluate_diarisation import (_check_recordings, _evaluation_map, _hypothesis_for,
                                                           evaluate_diarisation)

    if not collar_s >= 0:
        raise ValueError(f"collar_s must be >= 0 seconds, got {collar_s}")
    references, hypotheses = to_annotations(read_rttm(reference)), to_annotations(read_rttm(hypothesis))
    if not references:
        raise ManifestError(f"{reference}: the reference holds no SPEAKER lines; nothing to evaluate")
    _check_recordings(set(references), set(hypotheses), allow_missing=False)
    diarisation = evaluate_diarisation(reference, hypothesis, collar_s=collar_s)
    ders = {scores.recording_id: scores.collar.der for scores in diarisation.recordings}
    metric = IdentificationErrorRate(collar=2 * collar_s, skip_overlap=False)  # pyannote's collar is the total width
    recordings = []
    for recording_id in sorted(references):
        truth, named = references[recording_id], _hypothesis_for(hypotheses, recording_id)
        components = metric(truth, named, uem=_evaluation_map(truth, named), detailed=True)
        recordings.append(_named_scores(recording_id, components, components[metric.metric_name()], ders[recording_id]))
    overall = _named_scores("overall", metric[:], abs(metric), diarisation.overall.collar.der)
    notes = []
    if any(UNKNOWN in annotation.labels() for annotation in hypotheses.values()):
        notes.append(f"speech labelled '{UNKNOWN}' (no enrolled voice) counts as confusion against every reference name")
    return NamedDiarisationReport(str(reference), str(hypothesis), collar_s, recordings, overall, notes)


def _named_scores(recording_id: str, components: dict, ier: float, der: float) -> NamedDiarisationScores:
    return NamedDiarisationScores(recording_id, float(ier), float(components["correct"]),
                                  float(components["confusion"]), float(components["missed detection"]),
                                  float(components["false alarm"]), float(components["total"]), float(der))


# ----------------------------------------------------------------------------- tables and reports


def identification_table(report: IdentificationReport) -> list[list[str]]:
    """Rows (metric, value) of the human-readable table; undefined values are left out. In %."""
    closed, opened = report.closed_set, report.open_set
    rows = [[f"closed-set top-{k} ({closed.clips} clips)", _percent(value)] for k, value in closed.top_k.items()
            if value is not None]
    named = [("miss rate (enrolled -> unknown)", opened.miss_rate),
             ("confusion rate (enrolled -> another name)", opened.confusion_rate),
             ("detection and identification rate", opened.detection_identification_rate),
             (f"false-alarm rate ({opened.impostors} clips of others -> a name)", opened.false_alarm_rate),
             ("open-set EER (best-candidate score)", opened.eer)]
    rows += [[label, _percent(value)] for label, value in named if value is not None]
    if opened.eer_threshold is not None:
        rows.append(["threshold at the open-set EER", f"{opened.eer_threshold:.4f}"])
    return rows


def named_diarisation_table(report: NamedDiarisationReport) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (per recording, then overall): IER, its components in % of reference speech, DER."""
    headers = ["recording", "IER", "correct", "conf", "miss", "FA", "DER"]

    def row(scores: NamedDiarisationScores) -> list[str]:
        share = (lambda seconds: 100 * seconds / scores.reference_s if scores.reference_s else 0.0)
        values = (100 * scores.ier, share(scores.correct_s), share(scores.confusion_s), share(scores.missed_s),
                  share(scores.false_alarm_s), 100 * scores.der)
        return [scores.recording_id, *(f"{value:.2f}" for value in values)]

    return headers, [row(scores) for scores in report.recordings] + [row(report.overall)]


def write_report(report: IdentificationReport | NamedDiarisationReport, out_dir: str | Path) -> tuple[Path, Path]:
    """OUT/report.json and OUT/report.md (OUT created if missing); returns both paths."""
    out_dir = prepare_output_folder(out_dir)
    json_path = write_text_atomically(out_dir / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return json_path, write_text_atomically(out_dir / "report.md", _markdown(report))


def _markdown(report: IdentificationReport | NamedDiarisationReport) -> str:
    if isinstance(report, IdentificationReport):
        lines = ["# Identification evaluation", "", f"- identities: `{report.identities}`",
                 f"- enrolled: {len(report.enrolled)} people; {report.clips} clips with a known speaker", "",
                 "| metric | value |", "|---|---:|"]
        lines += [f"| {label} | {value} |" for label, value in identification_table(report)]
    else:
        headers, rows = named_diarisation_table(report)
        lines = ["# Named diarisation evaluation", "", f"- reference: `{report.reference}`",
                 f"- hypothesis: `{report.hypothesis}`", f"- collar ±{report.collar_s:g} s; rates in %", "",
                 "| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(values) + " |" for values in rows]
    if report.notes:
        lines += [""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f} %"
