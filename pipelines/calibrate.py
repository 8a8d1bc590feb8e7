"""`spk calibrate`: fit the score -> log-likelihood-ratio map of labelled trials' scores.

Reads a scores.parquet (as `spk verify --trials ... --out` writes: enroll, test, score, label,
encoder, scoring) and writes calibration.json (pipelines/scoring/calibration.py): a logistic
map for the scores' scoring key (raw cosine, a back-end, s-norm). A calibration.json of the same
encoder's weights that is already at `--out` keeps its maps for other keys, so one file can
calibrate several scorings; a file of other weights is replaced.

Calibrate on trials the system will not be evaluated on: the fitted map is optimal for its own
trials, so the Cllr reported here (on the same trials) is optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from speakembed.pipelines.base.errors import ManifestError, OutputError, SpeakEmbedError
from speakembed.pipelines.base.outputs import prepare_output_file
from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.evaluate_verification import labelled_scores
from speakembed.pipelines.scoring.backend import NO_BACKEND
from speakembed.pipelines.scoring.calibration import (DEFAULT_PRIOR, Calibration, LogisticMap, actual_detection_cost, cllr,
                                                      fit_logistic)
from speakembed.pipelines.scoring.metrics import equal_error_rate, min_detection_cost

REPORT_P_TARGET = 0.05  # the prior of the detection costs reported beside the Cllr


@dataclass(frozen=True)
class CalibrateReport:
    """What `spk calibrate` wrote: the file, encoder, scoring key, the fitted map, its metrics on
    the fitting trials (EER, Cllr in bits, actual and minimum DCF at REPORT_P_TARGET) and which
    other keys the file keeps."""
    out_path: Path
    encoder: str
    key: str
    fitted: LogisticMap
    eer: float
    cllr: float
    actual_dcf: float
    min_dcf: float
    kept_keys: list[str]
    replaced_encoder: str | None  # the weights of a calibration.json that was replaced, if any

    def to_dict(self) -> dict:
        """JSON-ready values (`spk calibrate --json`)."""
        return {"calibration": str(self.out_path), "encoder": self.encoder, "scoring": self.key,
                "scale": self.fitted.scale, "offset": self.fitted.offset, "prior": self.fitted.prior,
                "trials": self.fitted.trials, "targets": self.fitted.targets, "eer": self.eer, "cllr": self.cllr,
                f"actual_dcf_p{REPORT_P_TARGET:g}": self.actual_dcf, f"min_dcf_p{REPORT_P_TARGET:g}": self.min_dcf,
                "kept": self.kept_keys, "replaced_encoder": self.replaced_encoder}


def run(scores_path: str | Path, out_path: str | Path, *, prior: float = DEFAULT_PRIOR) -> CalibrateReport:
    """Fit the calibration of the labelled scores at `scores_path` and write it to `out_path`.

    ManifestError when a trial is unlabelled, only one label occurs, a score is not finite, or
    the table mixes encoders or scorings; OutputError when `out_path` cannot be written.
    """
    out_path = prepare_output_file(out_path)
    table = read_table(scores_path, "scores")
    scores, labels = labelled_scores(table, scores_path)
    encoder = _single(table["encoder"], "encoder", scores_path)
    key = _single(table["scoring"], "scoring", scores_path) if "scoring" in table.columns else NO_BACKEND
    fitted = fit_logistic(scores, labels, prior=prior, source=str(scores_path))
    calibration, replaced = _existing(out_path, encoder)
    calibration.maps[key] = fitted
    calibration.save(out_path)
    llr = fitted.llr(scores)
    return CalibrateReport(out_path, encoder, key, fitted, equal_error_rate(scores, labels).eer, cllr(llr, labels),
                           actual_detection_cost(llr, labels, REPORT_P_TARGET),
                           min_detection_cost(scores, labels, REPORT_P_TARGET).min_dcf,
                           sorted(set(calibration.maps) - {key}), replaced)


def _single(column, name: str, source: str | Path) -> str:
    """The one value of `column`; ManifestError when the scores mix several."""
    values = sorted(set(column.astype(str)))
    if len(values) != 1:
        raise ManifestError(f"{source}: the scores mix {len(values)} values of '{name}' ({', '.join(values[:3])}); "
                            "calibrate the scores of one encoder and one scoring at a time")
    return values[0]


def _existing(path: Path, encoder: str) -> tuple[Calibration, str | None]:
    """The calibration already at `path` when it is of `encoder`'s weights (its maps are kept),
    else a new one, with the encoder of the file it replaces (None when there was none).
    OutputError when `path` holds something else, which is never overwritten."""
    if not path.is_file():
        return Calibration(encoder), None
    try:
        existing = Calibration.load(path)
    except SpeakEmbedError:
        raise OutputError(f"{path}: exists and is not a calibration file; give another --out") from None
    if existing.encoder != encoder:
        return Calibration(encoder), existing.encoder
    return existing, None
