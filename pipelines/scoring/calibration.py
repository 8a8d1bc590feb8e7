"""Calibration: verification scores -> log-likelihood ratios (LLR) -> probabilities of same speaker.

A `LogisticMap` is the affine map llr = scale * score + offset fitted by prior-weighted logistic
regression on labelled trials (as BOSARIS' linear calibration): with it the natural-log LLR of
a trial combines with any prior, `probability(llr, prior)`, and a decision at a cost is the
Bayes threshold on the LLR. A score map only holds for the scores it was fitted on, so a
`Calibration` keeps one map per scoring key (`Scorer.key`: the back-end, s-norm or not) for one
encoder's weights.

Metrics of LLRs: `cllr` (bits; 0 perfect, 1 = a system that always says LLR 0, above 1 worse
than that) and `actual_detection_cost` (the normalised DCF of the Bayes decisions at a prior,
to compare with the minimum DCF of metrics.min_detection_cost). `threshold_at_far` gives the
score threshold of a target false-accept rate.

calibration.json: {"schema": "calibration", "schema_version": 1, "encoder": "lstm@<hash>",
"maps": {KEY: {"scale", "offset", "prior", "trials", "targets", "source"}}}.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError
from speakembed.pipelines.base.outputs import write_text_atomically
from speakembed.pipelines.scoring.metrics import error_rates

CALIBRATION_SCHEMA = "calibration"
CALIBRATION_VERSION = 1
CALIBRATION_FILE = "calibration.json"  # = models.registry.CALIBRATION_FILE (not imported: this module stays light)
DEFAULT_PRIOR = 0.5  # prior of a same-speaker trial that probabilities and the fit assume unless told


def logit(probability: float) -> float:
    """log(p / (1 - p)), natural log."""
    return float(np.log(probability) - np.log1p(-probability))


def probability(llr: np.ndarray | float, prior: float = DEFAULT_PRIOR) -> np.ndarray | float:
    """Posterior probability of same speaker from natural-log LLRs and the prior of a target trial."""
    _check_prior(prior)
    return 1.0 / (1.0 + np.exp(-(np.asarray(llr, dtype=np.float64) + logit(prior))))


def bayes_threshold(prior: float = DEFAULT_PRIOR, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The LLR above which accepting costs less than rejecting: log(c_fa (1 - p) / (c_miss p))."""
    _check_prior(prior)
    return float(np.log(c_fa / c_miss) - logit(prior))


def _check_prior(prior: float) -> None:
    if not 0.0 < prior < 1.0:
        raise UsageError(f"--prior {prior}: a prior probability lies strictly between 0 and 1")


@dataclass(frozen=True)
class LogisticMap:
    """llr = scale * score + offset (natural log), fitted on `trials` labelled trials (`targets` of them)."""
    scale: float
    offset: float
    prior: float = DEFAULT_PRIOR  # the effective prior the fit weighted targets and non-targets by
    trials: int = 0
    targets: int = 0
    source: str | None = None  # the scores it was fitted on

    def llr(self, scores: np.ndarray) -> np.ndarray:
        """Natural-log likelihood ratios (float64) of `scores`."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset

    def score_at(self, llr: float) -> float:
        """The score whose LLR is `llr` (the score threshold of an LLR threshold)."""
        return float((llr - self.offset) / self.scale)


def fit_logistic(scores: np.ndarray, labels: np.ndarray, *, prior: float = DEFAULT_PRIOR,
                 source: str | None = None) -> LogisticMap:
    """Prior-weighted logistic regression of labels (1 target, 0 non-target) on scores.

    Minimises prior * mean over targets of log(1 + exp(-(llr + logit prior))) + (1 - prior) *
    mean over non-targets of log(1 + exp(llr + logit prior)), i.e. the Cllr at that prior, so
    each class weighs as the prior says however many trials it has.
    """
    from scipy.optimize import minimize

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    _check_prior(prior)
    if labels.all() or not labels.any():
        raise ManifestError(f"{source or 'the scores'}: calibration needs both target and non-target trials")
    spread = scores.std() or 1.0
    centre = scores.mean()
    standard = (scores - centre) / spread  # a well-conditioned problem; mapped back below
    weights = np.where(labels, prior / labels.sum(), (1 - prior) / (~labels).sum())
    signs = np.where(labels, 1.0, -1.0)
    shift = logit(prior)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        margin = signs * (params[0] * standard + params[1] + shift)
        value = np.sum(weights * np.logaddexp(0.0, -margin))
        slope = -weights * signs / (1.0 + np.exp(margin))  # d loss / d (llr)
        return float(value), np.array([np.sum(slope * standard), np.sum(slope)])

    fitted = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B").x
    scale = fitted[0] / spread
    return LogisticMap(float(scale), float(fitted[1] - scale * centre), prior, len(labels), int(labels.sum()), source)


# ----------------------------------------------------------------------------- metrics of LLRs


def cllr(llr: np.ndarray, labels: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits: half the mean log2(1 + exp(-llr)) over targets plus half
    the mean log2(1 + exp(llr)) over non-targets."""
    llr = np.asarray(llr, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("Cllr needs both target and non-target trials")
    targets = np.mean(np.logaddexp(0.0, -llr[labels]))
    nontargets = np.mean(np.logaddexp(0.0, llr[~labels]))
    return float((targets + nontargets) / (2 * np.log(2)))


def actual_detection_cost(llr: np.ndarray, labels: np.ndarray, p_target: float, *,
                          c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised detection cost of accepting every trial whose LLR reaches the Bayes threshold
    of `p_target` (the cost the calibrated system actually pays; compare min_detection_cost)."""
    llr = np.asarray(llr, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("the detection cost needs both target and non-target trials")
    accept = llr >= bayes_threshold(p_target, c_miss, c_fa)
    miss = np.mean(~accept[labels])
    false_accept = np.mean(accept[~labels])
    cost = c_miss * p_target * miss + c_fa * (1 - p_target) * false_accept
    return float(cost / min(c_miss * p_target, c_fa * (1 - p_target)))


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """The lowest score threshold whose false-accept rate (accept when score >= threshold) is at
    most `far` (a fraction)."""
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"a false-accept rate lies in [0, 1], got {far}")
    thresholds, _, false_accepts = error_rates(scores, labels)
    meets = false_accepts <= far + 1e-12  # error_rates' 1 - count / total is not exact: 0.01 may come out 0.0100000001
    return float(thresholds[int(np.argmax(meets))])  # false_accepts falls with the threshold


# ----------------------------------------------------------------------------- calibration files


@dataclass
class Calibration:
    """The score -> LLR maps of one encoder's weights (`encoder`: `name@hash`), one per scoring key."""

    encoder: str
    maps: dict[str, LogisticMap] = field(default_factory=dict)

    def map_for(self, key: str, source: str | Path) -> LogisticMap:
        """The map of scores made by scoring `key`; ManifestError when the file has none."""
        if key not in self.maps:
            raise ManifestError(f"{source}: calibrated for scores of {', '.join(sorted(self.maps)) or 'nothing'}, not "
                                f"'{key}'; score with the same --backend/--cohort or fit one with `spk calibrate`")
        return self.maps[key]

    def check_encoder(self, encoder_id: str, source: str | Path) -> None:
        """ManifestError unless the calibration was fitted on scores of `encoder_id`'s embeddings."""
        if encoder_id != self.encoder:
            raise ManifestError(f"{source}: calibration for {self.encoder}, but the scores are from {encoder_id}; "
                                "fit one for them with `spk calibrate`")

    def to_dict(self) -> dict:
        """calibration.json's content."""
        return {"schema": CALIBRATION_SCHEMA, "schema_version": CALIBRATION_VERSION, "encoder": self.encoder,
                "maps": {key: asdict(value) for key, value in sorted(self.maps.items())}}

    def save(self, path: str | Path) -> Path:
        """Write calibration.json to `path` atomically."""
        return write_text_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        """Read a calibration.json (or the CALIBRATION_FILE of a folder)."""
        path = Path(path)
        path = path / CALIBRATION_FILE if path.is_dir() else path
        if not path.is_file():
            raise InputNotFoundError(f"{path}: no such calibration file; fit one with `spk calibrate`")
        try:
            content = json.loads(path.read_text())
            if content.get("schema") != CALIBRATION_SCHEMA or content.get("schema_version") != CALIBRATION_VERSION:
                raise ValueError(f"not a version-{CALIBRATION_VERSION} calibration")
            return cls(content["encoder"], {key: LogisticMap(**value) for key, value in content["maps"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ManifestError(f"{path}: not a calibration file ({error}); fit one with `spk calibrate`") from None


NO_CALIBRATION = "none"
DEFAULT_CALIBRATION = "default"


def resolve_calibration(encoder_id: str, key: str, calibration: str | Path | None = DEFAULT_CALIBRATION, *,
                        checkpoint: str | Path | None = None, notes: list[str] | None = None) -> LogisticMap | None:
    """The score -> LLR map for scores of scoring `key` of `encoder_id`'s embeddings.

    calibration: "default" (or None) for the calibration.json shipped beside the weights
    (registry.scoring_folder); when it is absent, for other weights, or has no map for `key`,
    None, with a note in `notes`. "none": None. Else a calibration file, which must be for these
    weights and hold a map for `key` (else ManifestError).
    """
    notes = notes if notes is not None else []
    if str(calibration) == NO_CALIBRATION:
        return None
    if calibration is None or str(calibration) == DEFAULT_CALIBRATION:
        from speakembed.models.registry import scoring_folder

        path = scoring_folder(encoder_id.split("@", 1)[0], checkpoint) / CALIBRATION_FILE
        if not path.is_file():
            notes.append(f"no calibration ships for {encoder_id}: no probabilities (fit one with `spk calibrate`)")
            return None
        shipped = Calibration.load(path)
        if shipped.encoder != encoder_id or key not in shipped.maps:
            what = f"weights {shipped.encoder}" if shipped.encoder != encoder_id else f"scores of {', '.join(shipped.maps)}"
            notes.append(f"the shipped calibration {path} is for {what}, not '{key}' scores of {encoder_id}: "
                         "no probabilities (fit one with `spk calibrate`)")
            return None
        return shipped.maps[key]
    chosen = Calibration.load(calibration)
    chosen.check_encoder(encoder_id, calibration)
    return chosen.map_for(key, calibration)
