"""Deciding identities (thresholds, open-set posteriors) and scoring them (closed/open set, EER)."""

import json

import numpy as np
import pandas as pd
import pytest

from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.evaluate_identification import evaluate_identification, open_set_eer
from speakembed.pipelines.identify import DecisionRule, decide, open_set_posteriors
from speakembed.pipelines.scoring.calibration import LogisticMap

NAMES = ["alice", "bob", "carol"]


def test_threshold_rule_names_the_best_or_unknown():
    rule = DecisionRule("threshold", 0.5, threshold=0.7)
    named = decide("x.wav", np.array([0.2, 0.9, 0.4]), NAMES, None, rule, top=2)
    assert named.identity == "bob" and [candidate.name for candidate in named.candidates] == ["bob", "carol"]
    assert named.best.probability is None and named.unknown_probability is None
    assert decide("y.wav", np.array([0.2, 0.69, 0.4]), NAMES, None, rule, top=5).identity == "unknown"


def test_open_set_posteriors_sum_to_one_and_follow_the_prior():
    llrs = np.array([3.0, -2.0, -4.0])
    named, nobody = open_set_posteriors(llrs, prior=0.5)
    assert named.sum() + nobody == pytest.approx(1.0)
    # by hand: weights 0.5 for nobody, 0.5/3 e^llr for each name
    weights = np.array([0.5, *(0.5 / 3 * np.exp(llrs))])
    assert nobody == pytest.approx(weights[0] / weights.sum())
    assert named[0] == pytest.approx(weights[1] / weights.sum())
    _, sceptical = open_set_posteriors(llrs, prior=0.01)
    assert sceptical > nobody


def test_probability_rule_answers_unknown_when_nobody_is_most_probable():
    calibration = LogisticMap(scale=10.0, offset=-7.0)  # llr 0 at score 0.7
    rule = DecisionRule("probability", 0.5)
    assert decide("x", np.array([0.95, 0.3, 0.2]), NAMES, calibration, rule, top=3).identity == "alice"
    doubtful = decide("y", np.array([0.72, 0.3, 0.2]), NAMES, calibration, rule, top=3)
    assert doubtful.identity == "unknown" and doubtful.unknown_probability > doubtful.best.probability
    assert sum(candidate.probability for candidate in doubtful.candidates) + doubtful.unknown_probability == pytest.approx(1)


def test_open_set_eer_by_hand():
    # genuine clips: scores 0.9 (right), 0.8 (right), 0.7 (wrong person first); impostors 0.75, 0.3
    eer, threshold = open_set_eer(np.array([0.9, 0.8, 0.7]), np.array([True, True, False]), np.array([0.75, 0.3]))
    # FNIR is 1/3 (the wrong one) up to t = 0.8; FPIR falls from 1/2 (t <= 0.75) to 0 (t > 0.75):
    # the curves cross at 1/3, a third of the way from 0.75 to 0.8 (linear interpolation)
    assert eer == pytest.approx(1 / 3) and threshold == pytest.approx(0.75 + 0.05 / 3)
    assert open_set_eer(np.array([0.9]), np.array([True]), np.array([])) == (None, None)


def identities(rows):
    table = pd.DataFrame(rows, columns=["item_id", "identity", "rank", "speaker", "score"])
    return table.assign(probability=np.nan, encoder="toy@0")


def test_evaluation_of_an_identities_table(tmp_path):
    rows = [
        ("alice/1.wav", "alice", 1, "alice", 0.9), ("alice/1.wav", "alice", 2, "bob", 0.3),
        ("alice/2.wav", "unknown", 1, "alice", 0.6), ("alice/2.wav", "unknown", 2, "bob", 0.5),
        ("bob/1.wav", "alice", 1, "alice", 0.8), ("bob/1.wav", "alice", 2, "bob", 0.75),
        ("dave/1.wav", "bob", 1, "bob", 0.85), ("dave/1.wav", "bob", 2, "alice", 0.2),
        ("erin/1.wav", "unknown", 1, "alice", 0.4), ("erin/1.wav", "unknown", 2, "bob", 0.1),
    ]
    write_table(identities(rows), tmp_path / "identities.parquet", "identities")
    (tmp_path / "report.json").write_text(json.dumps({"enrolled": ["alice", "bob"]}))
    report = evaluate_identification(tmp_path)
    assert report.enrolled == ["alice", "bob"] and report.clips == 5
    assert report.closed_set.top_k == {1: pytest.approx(2 / 3), 5: 1.0}  # 2 names given, 2 enrolled
    opened = report.open_set
    assert (opened.genuine, opened.impostors) == (3, 2)
    assert opened.miss_rate == pytest.approx(1 / 3) and opened.confusion_rate == pytest.approx(1 / 3)
    assert opened.detection_identification_rate == pytest.approx(1 / 3)
    assert opened.false_alarm_rate == pytest.approx(1 / 2)
    assert report.per_speaker["alice"] == {"clips": 2, "top_1": 1.0, "miss_rate": 0.5}


def test_evaluation_with_a_speaker_table_and_fewer_names_than_top_5(tmp_path):
    rows = [("c1.wav", "alice", 1, "alice", 0.9), ("c2.wav", "bob", 1, "bob", 0.8), ("c3.wav", "bob", 1, "bob", 0.7)]
    write_table(identities(rows), tmp_path / "identities.parquet", "identities")
    (tmp_path / "report.json").write_text(json.dumps({"enrolled": ["alice", "bob", "carol", "dan", "eve", "fay"]}))
    (tmp_path / "truth.tsv").write_text("item_id\tspeaker\nc1\talice\nc2.wav\tcarol\n")  # ids found as trial ids are
    report = evaluate_identification(tmp_path / "identities.parquet", speakers=tmp_path / "truth.tsv")
    assert report.clips == 2  # c3 has no known speaker
    assert report.closed_set.top_k == {1: 0.5, 5: None}
    assert any("--top 5" in note for note in report.notes) and any("no known speaker" in note for note in report.notes)
    assert report.open_set.false_alarm_rate is None
