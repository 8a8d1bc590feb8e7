"""Calibration: the logistic score -> LLR fit, probabilities, Cllr, actual DCF, thresholds, files."""

import json

import numpy as np
import pytest

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError
from speakembed.pipelines.scoring.calibration import (Calibration, LogisticMap, actual_detection_cost, bayes_threshold,
                                                      cllr, fit_logistic, probability, resolve_calibration,
                                                      threshold_at_far)
from speakembed.pipelines.scoring.metrics import error_rates, min_detection_cost


def gaussian_trials(targets: int = 4000, nontargets: int = 12000, seed: int = 0):
    """Scores of equal-variance Gaussians (targets N(0.6, 0.1), non-targets N(0.3, 0.1)), whose true
    LLR is linear: (0.6 - 0.3) / 0.01 * score - (0.36 - 0.09) / 0.02 = 30 score - 13.5."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(0.6, 0.1, targets), rng.normal(0.3, 0.1, nontargets)])
    return scores, np.concatenate([np.ones(targets, int), np.zeros(nontargets, int)])


def test_logistic_fit_recovers_the_true_llr_of_gaussian_scores():
    scores, labels = gaussian_trials()
    fitted = fit_logistic(scores, labels)
    assert fitted.scale == pytest.approx(30, rel=0.08) and fitted.offset == pytest.approx(-13.5, rel=0.08)
    assert (fitted.trials, fitted.targets) == (16000, 4000)
    # the fit does not depend on how many trials each class has: the prior weighs them
    subsampled = fit_logistic(scores[2000:], labels[2000:])
    assert subsampled.scale == pytest.approx(fitted.scale, rel=0.1)


def test_the_fit_is_the_calibration_with_the_lowest_cllr():
    scores, labels = gaussian_trials(seed=1)
    fitted = fit_logistic(scores, labels)
    best = cllr(fitted.llr(scores), labels)
    for scale, offset in ((fitted.scale * 1.2, fitted.offset * 1.2), (fitted.scale, fitted.offset + 1)):
        assert cllr(LogisticMap(scale, offset).llr(scores), labels) > best


def test_probability_combines_the_llr_with_the_prior():
    assert probability(0.0) == pytest.approx(0.5)
    assert probability(np.log(3.0), 0.5) == pytest.approx(0.75)
    assert probability(0.0, 0.1) == pytest.approx(0.1)
    assert bayes_threshold(0.5) == 0.0 and bayes_threshold(0.01) == pytest.approx(np.log(99))
    with pytest.raises(UsageError, match="strictly between 0 and 1"):
        probability(0.0, 1.0)


def test_cllr_is_one_bit_for_a_system_that_knows_nothing():
    labels = np.array([1, 0, 1, 0, 0])
    assert cllr(np.zeros(5), labels) == pytest.approx(1.0)
    assert cllr(np.where(labels == 1, 20.0, -20.0), labels) < 1e-6
    assert cllr(np.where(labels == 1, -5.0, 5.0), labels) > 1  # confidently wrong is worse than nothing


def test_actual_dcf_of_calibrated_llrs_is_near_the_minimum_and_never_below_it():
    scores, labels = gaussian_trials(seed=2)
    llr = fit_logistic(scores, labels).llr(scores)
    for p_target in (0.01, 0.05, 0.5):
        minimum = min_detection_cost(llr, labels, p_target).min_dcf
        actual = actual_detection_cost(llr, labels, p_target)
        assert minimum <= actual <= minimum * 1.1
    miscalibrated = actual_detection_cost(llr + 4, labels, 0.05)
    assert miscalibrated > 1.5 * min_detection_cost(llr, labels, 0.05).min_dcf


def test_threshold_at_far_is_the_lowest_threshold_meeting_the_target():
    scores, labels = gaussian_trials(seed=3)
    threshold = threshold_at_far(scores, labels, 0.01)
    assert np.mean(scores[labels == 0] >= threshold) <= 0.01
    nontargets = scores[labels == 0]
    lower = np.max(nontargets[nontargets < threshold])  # the next threshold down that accepts one more non-target
    assert np.mean(nontargets >= lower) > 0.01
    thresholds, _, far = error_rates(scores, labels)
    assert threshold in thresholds


def test_a_calibration_file_round_trips_and_checks_encoder_and_scoring(tmp_path):
    scores, labels = gaussian_trials()
    calibration = Calibration("lstm@abc", {"backend@1": fit_logistic(scores, labels, source="s.parquet")})
    calibration.save(tmp_path / "calibration.json")
    loaded = Calibration.load(tmp_path)  # a folder finds its calibration.json
    assert loaded.maps == calibration.maps and loaded.encoder == "lstm@abc"
    with pytest.raises(ManifestError, match="calibration for lstm@abc, but the scores are from whisper@1"):
        loaded.check_encoder("whisper@1", "c.json")
    with pytest.raises(ManifestError, match="not 'none'"):
        loaded.map_for("none", "c.json")
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "backend"}))
    with pytest.raises(ManifestError, match="not a calibration file"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(InputNotFoundError):
        Calibration.load(tmp_path / "absent.json")


def test_resolve_calibration_uses_the_shipped_file_only_when_it_fits(tmp_path, monkeypatch):
    from speakembed.models import registry

    monkeypatch.setattr(registry, "PRETRAINED", tmp_path)
    notes = []
    assert resolve_calibration("lstm@abc", "backend@1", notes=notes) is None and "no calibration ships" in notes[0]
    (tmp_path / "lstm").mkdir()
    fitted = LogisticMap(10.0, -5.0)
    Calibration("lstm@abc", {"backend@1": fitted}).save(tmp_path / "lstm" / "calibration.json")
    assert resolve_calibration("lstm@abc", "backend@1") == fitted
    notes = []
    assert resolve_calibration("lstm@abc", "none", notes=notes) is None and "not 'none' scores" in notes[0]
    assert resolve_calibration("lstm@new", "backend@1", notes=notes) is None and "weights lstm@abc" in notes[1]
    assert resolve_calibration("lstm@abc", "backend@1", "none") is None
    with pytest.raises(ManifestError, match="calibration for lstm@abc"):
        resolve_calibration("lstm@new", "backend@1", tmp_path / "lstm" / "calibration.json")
