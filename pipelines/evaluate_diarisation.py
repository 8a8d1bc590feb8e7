"""`spk evaluate diarisation`: score a hypothesis diarisation against a reference, both RTTM.

Metrics come from pyannote.metrics, per recording and over all recordings (pyannote's accumulated
components, so long recordings weigh more):
    DER          diarisation error rate, no collar, overlapped speech scored (DIHARD "full")
    DER(collar)  the same with ±collar_s seconds around each reference boundary left unscored
    components   missed speech, false alarm and confusion (seconds and % of reference speech),
                 of the no-collar DER
    JER          Jaccard error rate (no collar, overlap scored); every speaker weighs the same
    purity, coverage, and the speaker-count error (hypothesis count - reference count)
Hypothesis labels are mapped to reference labels by the optimal (Hungarian) mapping, so label
names need not match. Rates are fractions (DER can exceed 1); `*_pct` fields are percentages.

Output folder layout (write_report):
    OUT/report.json   DiarisationReport.to_dict()
    OUT/report.md     the summary table in markdown
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


from speakembed.pipelines.base.errors import ManifestError, some_ids
from speakembed.pipelines.data.rttm import read_rttm, to_annotations
from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically

DEFAULT_COLLAR_S = 0.25
TABLE_NOTE = ("rates in %; DER: no collar, overlapped speech scored; DER±{collar_s:g}: ±{collar_s:g} s around each "
              "reference boundary unscored; miss, FA, conf: % of reference speech, no collar; ref, hyp: speakers")


@dataclass(frozen=True)
class ErrorBreakdown:
    """A diarisation error rate and its parts, in seconds of (overlap-counted) reference speech."""

    der: float  # (missed + false alarm + confusion) / reference, a fraction that can exceed 1
    missed_s: float
    false_alarm_s: float
    confusion_s: float
    reference_s: float  # scored reference speech; overlapped speech counts once per speaker

    @classmethod
    def from_components(cls, components: dict[str, float], der: float) -> ErrorBreakdown:
        """From pyannote's DiarizationErrorRate components (of one call, or accumulated) and rate."""
        return cls(der=float(der),
                   missed_s=float(components["missed detection"]), false_alarm_s=float(components["false alarm"]),
                   confusion_s=float(components["confusion"]), reference_s=float(components["total"]))

    def percent(self, seconds: float) -> float:
        """`seconds` as a percentage of reference speech (0 when there is none)."""
        return 100.0 * seconds / self.reference_s if self.reference_s > 0 else 0.0

    def to_dict(self) -> dict:
        """The breakdown as JSON-ready values."""
        return {**asdict(self), "missed_pct": self.percent(self.missed_s),
                "false_alarm_pct": self.percent(self.false_alarm_s), "confusion_pct": self.percent(self.confusion_s)}


@dataclass(frozen=True)
class RecordingScores:
    """DER (no collar and with collar), its components, JER, purity, coverage and speaker counts of one recording."""
    recording_id: str
    full: ErrorBreakdown  # no collar, overlap scored
    collar: ErrorBreakdown  # ±collar_s around reference boundaries unscored, overlap scored
    jer: float  # fraction
    purity: float  # fraction
    coverage: float  # fraction
    reference_speakers: int
    hypothesis_speakers: int

    @property
    def speaker_count_error(self) -> int:
        """Hypothesis speaker count minus reference speaker count (> 0: too many speakers)."""
        return self.hypothesis_speakers - self.reference_speakers

    def to_dict(self) -> dict:
        """The scores as JSON-ready values."""
        return {"recording_id": self.recording_id, "der": self.full.der, "der_collar": self.collar.der,
                "jer": self.jer, "purity": self.purity, "coverage": self.coverage,
                "reference_speakers": self.reference_speakers, "hypothesis_speakers": self.hypothesis_speakers,
                "speaker_count_error": self.speaker_count_error,
                "full": self.full.to_dict(), "collar": self.collar.to_dict()}


@dataclass(frozen=True)
class OverallScores:
    """The same metrics accumulated over all recordings (long recordings weigh more)."""
    full: ErrorBreakdown
    collar: ErrorBreakdown
    jer: float  # accumulated over every reference speaker of every recording
    purity: float
    coverage: float
    speaker_count_mae: float  # mean over recordings of |hypothesis count - reference count|
    exact_speaker_counts: int  # recordings whose speaker count is right

    def to_dict(self) -> dict:
        """The scores as JSON-ready values."""
        return {"der": self.full.der, "der_collar": self.collar.der, "jer": self.jer, "purity": self.purity,
                "coverage": self.coverage, "speaker_count_mae": self.speaker_count_mae,
                "exact_speaker_counts": self.exact_speaker_counts,
                "full": self.full.to_dict(), "collar": self.collar.to_dict()}


@dataclass(frozen=True)
class DiarisationReport:
    """Per-recording and overall scores, the collar used and the recordings missing from the hypothesis."""
    reference: str
    hypothesis: str
    collar_s: float  # half width: ±collar_s seconds around each reference boundary
    recordings: list[RecordingScores]
    overall: OverallScores
    missing_hypotheses: list[str]  # recordings scored with an empty hypothesis (allow_missing)

    def to_dict(self) -> dict:
        """The report as JSON-ready values (report.json)."""
        return {"reference": self.reference, "hypothesis": self.hypothesis, "collar_s": self.collar_s,
                "num_recordings": len(self.recordings), "missing_hypotheses": self.missing_hypotheses,
                "overall": self.overall.to_dict(), "recordings": [scores.to_dict() for scores in self.recordings]}


def evaluate_diarisation(reference: str | Path, hypothesis: str | Path, *, collar_s: float = DEFAULT_COLLAR_S,
                         allow_missing: bool = False) -> DiarisationReport:
    """Score the RTTM file or folder `hypothesis` against the RTTM file or folder `reference`.

    Both must name the same recordings, else ManifestError lists the differences. An RTTM cannot
    name a recording without turns, so with `allow_missing` a reference recording absent from the
    hypothesis is scored against an empty hypothesis (all its speech missed) instead.
    `collar_s` is the half width of the collar in seconds (0.25 = ±0.25 s around each boundary).
    """
    if not collar_s >= 0:  # also refuses NaN
        raise ValueError(f"collar_s must be >= 0 seconds, got {collar_s}")
    reference_turns, hypothesis_turns = read_rttm(reference), read_rttm(hypothesis)
    if reference_turns.empty:
        raise ManifestError(f"{reference}: the reference holds no SPEAKER lines; nothing to evaluate")
    references, hypotheses = to_annotations(reference_turns), to_annotations(hypothesis_turns)
    missing = _check_recordings(set(references), set(hypotheses), allow_missing)
    metrics = _make_metrics(collar_s)
    scores = [_score_recording(metrics, references[recording_id], _hypothesis_for(hypotheses, recording_id))
              for recording_id in sorted(references)]
    return DiarisationReport(str(reference), str(hypothesis), collar_s, scores, _overall(metrics, scores), missing)


def _check_recordings(reference_ids: set[str], hypothesis_ids: set[str], allow_missing: bool) -> list[str]:
    """Recording ids missing from the hypothesis (allowed only with `allow_missing`); raises
    ManifestError when the sets differ in a way that is not allowed."""
    only_reference = sorted(reference_ids - hypothesis_ids)
    only_hypothesis = sorted(hypothesis_ids - reference_ids)
    problems = []
    if only_reference and not allow_missing:
        problems.append(f"in the reference only: {some_ids(only_reference)}")
    if only_hypothesis:
        problems.append(f"in the hypothesis only: {some_ids(only_hypothesis)}")
    if problems:
        hint = "give RTTMs for the same recordings"
        if only_reference and not allow_missing:
            hint += ", or --allow-missing to score reference recordings without hypothesis turns as missed speech"
        raise ManifestError(f"reference and hypothesis name different recordings ({'; '.join(problems)}); {hint}")
    return only_reference



def _hypothesis_for(hypotheses: dict, recording_id: str):
    from pyannote.core import Annotation

    return hypotheses.get(recording_id) or Annotation(uri=recording_id)


def _make_metrics(collar_s: float) -> dict:
    from pyannote.metrics.diarization import (DiarizationCoverage, DiarizationErrorRate, DiarizationPurity,
                                              JaccardErrorRate)

    # pyannote's `collar` is the TOTAL width of the unscored zone centred on each reference
    # boundary: UEMSupportMixin.extrude (pyannote/metrics/utils.py) removes
    # Segment(t - 0.5 * collar, t + 0.5 * collar). A ±collar_s collar (md-eval's `-c collar_s`)
    # therefore needs collar=2 * collar_s.
    return {"full": DiarizationErrorRate(collar=0.0, skip_overlap=False),
            "collar": DiarizationErrorRate(collar=2 * collar_s, skip_overlap=False),
            "jer": JaccardErrorRate(collar=0.0, skip_overlap=False),
            "purity": DiarizationPurity(), "coverage": DiarizationCoverage()}


def _score_recording(metrics: dict, reference, hypothesis) -> RecordingScores:
    """Score one recording; each metric also accumulates it for the overall scores."""
    uem = _evaluation_map(reference, hypothesis)
    breakdowns = {}
    for name in ("full", "collar"):
        components = metrics[name](reference, hypothesis, uem=uem, detailed=True)
        breakdowns[name] = ErrorBreakdown.from_components(components, components[metrics[name].metric_name()])
    return RecordingScores(
        recording_id=reference.uri, **breakdowns,
        jer=float(metrics["jer"](reference, hypothesis, uem=uem)),
        purity=float(metrics["purity"](reference, hypothesis)),
        coverage=float(metrics["coverage"](reference, hypothesis)),
        reference_speakers=len(reference.labels()),
        hypothesis_speakers=len(hypothesis.labels()),
    )


def _evaluation_map(reference, hypothesis):
    """Score from 0 s to the last turn of either side. Every turn lies inside it, so this is what
    pyannote approximates when given no UEM, minus the warning it prints for each call."""
    from pyannote.core import Segment, Timeline

    end = max((segment.end for annotation in (reference, hypothesis) for segment in annotation.itersegments()),
              default=0.0)
    return Timeline([Segment(0.0, end)], uri=reference.uri)


def _overall(metrics: dict, scores: list[RecordingScores]) -> OverallScores:
    errors = [abs(recording.speaker_count_error) for recording in scores]
    return OverallScores(
        full=ErrorBreakdown.from_components(metrics["full"][:], abs(metrics["full"])),
        collar=ErrorBreakdown.from_components(metrics["collar"][:], abs(metrics["collar"])),
        jer=float(abs(metrics["jer"])), purity=float(abs(metrics["purity"])), coverage=float(abs(metrics["coverage"])),
        speaker_count_mae=sum(errors) / len(errors), exact_speaker_counts=sum(error == 0 for error in errors),
    )


def summary_table(report: DiarisationReport) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (one per recording, then 'overall') of the human-readable table, as text.

    Rates are in %; miss, FA and confusion are % of reference speech of the no-collar DER; 'ref'
    and 'hyp' count speakers. Headers are short so the table fits an 80-column terminal.
    """
    headers = ["recording", "DER", f"DER±{report.collar_s:g}", "miss", "FA", "conf", "JER", "purity", "cover",
               "ref", "hyp"]
    rows = [_row(scores.recording_id, scores.full, scores.collar, (scores.jer, scores.purity, scores.coverage))
            + [str(scores.reference_speakers), str(scores.hypothesis_speakers)] for scores in report.recordings]
    overall = report.overall
    rows.append(_row("overall", overall.full, overall.collar, (overall.jer, overall.purity, overall.coverage))
                + ["", ""])
    return headers, rows


def _row(name: str, full: ErrorBreakdown, collar: ErrorBreakdown, fractions: tuple[float, ...]) -> list[str]:
    percentages = (100 * full.der, 100 * collar.der, full.percent(full.missed_s), full.percent(full.false_alarm_s),
                   full.percent(full.confusion_s), *(100 * value for value in fractions))
    return [name, *(f"{value:.2f}" for value in percentages)]


def speaker_count_summary(report: DiarisationReport) -> str:
    """One line on how well the number of speakers was found."""
    overall = report.overall
    return (f"speaker count right in {overall.exact_speaker_counts}/{len(report.recordings)} recordings, "
            f"mean |hyp - ref| {overall.speaker_count_mae:.2f}")


def write_report(report: DiarisationReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write OUT/report.json and OUT/report.md; `out_dir` is created if missing, its parent must exist.

    Returns the two paths. Raises OutputError when `out_dir` is a file or its parent is missing.
    """
    out_dir = prepare_output_folder(out_dir)
    json_path = write_text_atomically(out_dir / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")
    markdown_path = write_text_atomically(out_dir / "report.md", _markdown(report))
    return json_path, markdown_path


def _markdown(report: DiarisationReport) -> str:
    headers, rows = summary_table(report)
    lines = [
        "# Diarisation evaluation", "",
        f"- reference: `{report.reference}`", f"- hypothesis: `{report.hypothesis}`",
        f"- {TABLE_NOTE.format(collar_s=report.collar_s)}",
        f"- {speaker_count_summary(report)}",
    ]
    if report.missing_hypotheses:
        lines.append(f"- scored with an empty hypothesis: {', '.join(report.missing_hypotheses)}")
    lines += ["", "| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
