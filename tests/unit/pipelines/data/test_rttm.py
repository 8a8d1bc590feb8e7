"""RTTM reading and writing (pipelines/data/rttm.py), and diarisation metrics (pipelines/evaluate_diarisation.py) on
hand-made references and hypotheses whose scores are worked out by hand in each test."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, OutputError
from speakembed.pipelines.evaluate_diarisation import evaluate_diarisation, write_report
from speakembed.pipelines.data.rttm import read_rttm, rttm_names, to_annotations, write_rttm


def write_turns(path: Path, *turns: tuple[str, float, float, str]) -> Path:
    """Hand-written RTTM (independent of write_rttm) from (recording, onset s, end s, speaker) turns."""
    path.write_text("".join(f"SPEAKER {rec} 1 {start:.3f} {end - start:.3f} <NA> <NA> {spk} <NA> <NA>\n"
                            for rec, start, end, spk in turns))
    return path


def turns_table(*turns: tuple[str, float, float, str]) -> pd.DataFrame:
    return pd.DataFrame([(rec, start, end - start, spk) for rec, start, end, spk in turns],
                        columns=["recording_id", "start_s", "duration_s", "speaker"])


# --- RTTM -----------------------------------------------------------------------------------------

def test_write_then_read_round_trip_sorted_and_rounded_to_milliseconds(tmp_path):
    table = pd.DataFrame({"recording_id": ["b", "a", "a"], "start_s": [1.0, 2.5, 0.12345],
                          "duration_s": [0.5, 1.0, 2.0004], "speaker": ["s2", "s1", "s2"],
                          "confidence": [0.9, 0.8, 0.7]})  # extra columns are ignored
    path = write_rttm(table, tmp_path / "out.rttm")
    assert path.read_text().splitlines()[0] == "SPEAKER a 1 0.123 2.000 <NA> <NA> s2 <NA> <NA>"
    back = read_rttm(path)
    assert list(back.columns) == ["recording_id", "start_s", "duration_s", "speaker"]
    assert back["recording_id"].tolist() == ["a", "a", "b"]
    assert back["start_s"].tolist() == [0.123, 2.5, 1.0]
    assert back["duration_s"].tolist() == [2.0, 1.0, 0.5]
    assert back["speaker"].tolist() == ["s2", "s1", "s2"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.rttm"]  # no temporary file left behind


def test_empty_table_writes_empty_file_and_reads_back_empty(tmp_path):
    path = write_rttm(turns_table(), tmp_path / "empty.rttm")
    assert path.read_text() == ""
    assert read_rttm(path).empty


def test_blank_lines_comments_and_other_line_types_are_skipped(tmp_path):
    path = tmp_path / "x.rttm"
    path.write_text(";; a comment\n\n   \nSPKR-INFO rec 1 <NA> <NA> <NA> unknown alice <NA>\n"
                    "SPEAKER rec 1 0.5 1.25 <NA> <NA> alice <NA> <NA>\n;;SPEAKER rec 1 9 9 <NA> <NA> bob <NA> <NA>\n"
                    "SPEAKER rec 1 2 1 <NA> <NA> bob\n")  # 8 fields (no confidence, lookahead) is accepted
    table = read_rttm(path)
    assert table.to_dict("records") == [
        {"recording_id": "rec", "start_s": 0.5, "duration_s": 1.25, "speaker": "alice"},
        {"recording_id": "rec", "start_s": 2.0, "duration_s": 1.0, "speaker": "bob"},
    ]


@pytest.mark.parametrize("line, message", [
    ("SPEAKER rec 1 0.5 1.0", "fields"),
    ("SPEAKER rec 1 zero 1.0 <NA> <NA> alice <NA> <NA>", "must be numbers"),
    ("SPEAKER rec 1 0.5 nan <NA> <NA> alice <NA> <NA>", "finite"),
    ("SPEAKER rec 1 0.5 -1.0 <NA> <NA> alice <NA> <NA>", "negative"),
    ("SPEAKER rec 1 -0.5 1.0 <NA> <NA> alice <NA> <NA>", "negative"),
], ids=["too-few-fields", "non-numeric", "nan", "negative-duration", "negative-onset"])
def test_malformed_speaker_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.rttm"
    path.write_text(f";; header\nSPEAKER rec 1 0 1 <NA> <NA> alice <NA> <NA>\n{line}\n")
    with pytest.raises(ManifestError, match=message) as caught:
        read_rttm(path)
    assert f"{path}:3" in str(caught.value)


def test_folder_reads_every_rttm_file_sorted_by_name(tmp_path):
    write_turns(tmp_path / "b.rttm", ("rec_b", 0, 1, "x"))
    write_turns(tmp_path / "a.rttm", ("rec_a", 0, 2, "y"), ("rec_a", 3, 4, "z"))
    (tmp_path / "notes.txt").write_text("SPEAKER ignored 1 0 1 <NA> <NA> q <NA> <NA>\n")
    assert read_rttm(tmp_path)["recording_id"].tolist() == ["rec_a", "rec_a", "rec_b"]


def test_missing_path_and_folder_without_rttm_are_input_not_found(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such RTTM"):
        read_rttm(tmp_path / "absent.rttm")
    with pytest.raises(InputNotFoundError, match="no .rttm files"):
        read_rttm(tmp_path)


def test_binary_file_is_a_manifest_error(tmp_path):
    (tmp_path / "x.rttm").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ManifestError, match="UTF-8"):
        read_rttm(tmp_path / "x.rttm")


def test_rttm_names_replace_whitespace_and_keep_everything_else():
    names = ["Réunion 3 ü", "x\ty", "two  spaces", "[a] 'b' \"c\"", "plain", "non\u00a0breaking"]
    assert rttm_names(names) == {"Réunion 3 ü": "Réunion_3_ü", "x\ty": "x_y", "two  spaces": "two_spaces",
                                 "[a] 'b' \"c\"": "[a]_'b'_\"c\"", "plain": "plain", "non\u00a0breaking": "non_breaking"}


def test_rttm_names_that_collide_get_a_stable_hash_suffix():
    fields = rttm_names(["a b", "a_b", "a  b"])
    assert fields["a_b"] == "a_b"  # a name without whitespace never changes
    assert fields["a b"] == "a_b_" + hashlib.sha1("a b".encode()).hexdigest()[:6]
    assert len(set(fields.values())) == 3
    assert rttm_names(["a  b", "a_b", "a b"]) == fields  # the order of the names does not matter


def test_rttm_names_refuse_an_empty_name():
    with pytest.raises(ManifestError, match="empty"):
        rttm_names(["ok", " "])


def test_write_rttm_maps_names_with_whitespace(tmp_path):
    path = write_rttm(turns_table(("Réunion 3 ü", 0, 1, "Ann Lee"), ("Réunion 3 ü", 1, 2, "Ann_Lee")), tmp_path / "x.rttm")
    back = read_rttm(path)
    assert set(back["recording_id"]) == {"Réunion_3_ü"}
    assert back["speaker"].tolist() == [rttm_names(["Ann Lee", "Ann_Lee"])["Ann Lee"], "Ann_Lee"]
    assert back["speaker"].nunique() == 2


@pytest.mark.parametrize("table, message", [
    (turns_table(("rec", 0, 1, "")), "empty"),
    (turns_table(("", 0, 1, "a")), "empty"),
    (turns_table(("rec", 2, 1, "a")), "negative"),
    (turns_table(("rec", 0, 1, "a")).drop(columns="speaker"), "lacks columns"),
], ids=["empty-label", "empty-recording", "negative-duration", "missing-column"])
def test_unwritable_tables_are_refused(tmp_path, table, message):
    with pytest.raises(ManifestError, match=message):
        write_rttm(table, tmp_path / "x.rttm")
    assert not (tmp_path / "x.rttm").exists()


def test_write_into_missing_folder_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_rttm(turns_table(("rec", 0, 1, "a")), tmp_path / "no" / "x.rttm")


def test_to_annotations_keeps_overlapping_turns_and_drops_empty_ones():
    annotations = to_annotations(turns_table(("r1", 0, 4, "a"), ("r1", 2, 6, "a"), ("r1", 5, 5, "b"), ("r2", 0, 1, "c")))
    assert set(annotations) == {"r1", "r2"} and annotations["r1"].uri == "r1"
    assert len(list(annotations["r1"].itertracks())) == 2 and annotations["r1"].labels() == ["a"]
    assert annotations["r1"].label_duration("a") == pytest.approx(6.0)  # union of 0-4 and 2-6


# --- Diarisation metrics ---------------------------------------------------------------------------

# Two speakers, ten seconds each: 20 s of reference speech.
REFERENCE = (("rec", 0, 10, "A"), ("rec", 10, 20, "B"))


def evaluate(tmp_path: Path, reference, hypothesis, **options):
    return evaluate_diarisation(write_turns(tmp_path / "ref.rttm", *reference),
                                write_turns(tmp_path / "hyp.rttm", *hypothesis), **options)


def test_reference_against_itself_is_perfect(tmp_path):
    report = evaluate(tmp_path, REFERENCE, REFERENCE)
    scores = report.recordings[0]
    assert scores.full.der == 0 and scores.collar.der == 0 and scores.jer == 0
    assert scores.purity == 1 and scores.coverage == 1 and scores.speaker_count_error == 0
    assert scores.full.reference_s == pytest.approx(20.0)
    assert report.overall.full.der == 0 and report.overall.exact_speaker_counts == 1


def test_swapped_labels_cost_nothing_thanks_to_the_optimal_mapping(tmp_path):
    report = evaluate(tmp_path, REFERENCE, (("rec", 0, 10, "spk1"), ("rec", 10, 20, "spk0")))
    assert report.overall.full.der == 0 and report.overall.jer == 0


def test_hypothesis_missing_one_speaker_misses_half_the_speech(tmp_path):
    scores = evaluate(tmp_path, REFERENCE, (("rec", 0, 10, "x"),)).recordings[0]
    assert scores.full.der == pytest.approx(0.5)
    assert scores.full.missed_s == pytest.approx(10.0) and scores.full.percent(scores.full.missed_s) == pytest.approx(50.0)
    assert scores.full.false_alarm_s == 0 and scores.full.confusion_s == 0
    assert scores.speaker_count_error == -1
    # JER: A matched perfectly (0), B unmatched (1) -> mean 0.5. Purity: x holds only A -> 1.
    # Coverage: A lies in one cluster, B in none -> 10 s of 20 s.
    assert scores.jer == pytest.approx(0.5) and scores.purity == 1 and scores.coverage == pytest.approx(0.5)


def test_extra_speech_is_false_alarm(tmp_path):
    scores = evaluate(tmp_path, REFERENCE, REFERENCE + (("rec", 20, 25, "A"),)).recordings[0]
    assert scores.full.false_alarm_s == pytest.approx(5.0) and scores.full.der == pytest.approx(0.25)


def test_overlapped_speech_is_scored(tmp_path):
    # A 0-10 and B 5-15 overlap for 5 s: 20 s of reference speech; B's overlapped part is missed.
    reference = (("rec", 0, 10, "A"), ("rec", 5, 15, "B"))
    scores = evaluate(tmp_path, reference, (("rec", 0, 10, "x"), ("rec", 10, 15, "y"))).recordings[0]
    assert scores.full.reference_s == pytest.approx(20.0)
    assert scores.full.missed_s == pytest.approx(5.0) and scores.full.der == pytest.approx(0.25)


def test_collar_is_half_width_on_each_side_of_every_reference_boundary(tmp_path):
    # The speaker change is 0.2 s late: 0.2 s of confusion without a collar (1 % of 20 s).
    hypothesis = (("rec", 0, 10.2, "x"), ("rec", 10.2, 20, "y"))
    report = evaluate(tmp_path, REFERENCE, hypothesis)
    assert report.overall.full.confusion_s == pytest.approx(0.2) and report.overall.full.der == pytest.approx(0.01)
    assert report.overall.collar.der == pytest.approx(0.0, abs=1e-9)  # ±0.25 s hides it
    # ±0.1 s: 10.1-10.2 s stays confused; the collars around 0, 10 and 20 s remove 0.1 + 0.2 + 0.1 s of
    # speech. (Were the collar 0.1 s in total, 0.15 s of confusion over 19.8 s would remain.)
    narrow = evaluate(tmp_path, REFERENCE, hypothesis, collar_s=0.1).overall.collar
    assert narrow.confusion_s == pytest.approx(0.1) and narrow.reference_s == pytest.approx(19.6)
    assert narrow.der == pytest.approx(0.1 / 19.6)


def test_overall_accumulates_components_rather_than_averaging_rates(tmp_path):
    reference = (("long", 0, 30, "A"), ("short", 0, 5, "A"), ("short", 5, 10, "B"))
    hypothesis = (("long", 0, 30, "x"), ("short", 0, 5, "x"))  # short: B's 5 s of 10 s missed
    report = evaluate(tmp_path, reference, hypothesis)
    assert [scores.recording_id for scores in report.recordings] == ["long", "short"]
    assert [scores.full.der for scores in report.recordings] == pytest.approx([0.0, 0.5])
    assert report.overall.full.der == pytest.approx(5 / 40)  # not the mean 0.25
    assert report.overall.speaker_count_mae == pytest.approx(0.5) and report.overall.exact_speaker_counts == 1


def test_recordings_must_match_unless_missing_hypotheses_are_allowed(tmp_path):
    reference = REFERENCE + (("other", 0, 4, "C"),)
    with pytest.raises(ManifestError, match="in the reference only: other"):
        evaluate(tmp_path, reference, REFERENCE)
    report = evaluate(tmp_path, reference, REFERENCE, allow_missing=True)
    assert report.missing_hypotheses == ["other"]
    other = report.recordings[0]
    assert other.recording_id == "other" and other.full.der == 1 and other.full.missed_s == pytest.approx(4.0)
    assert other.hypothesis_speakers == 0 and report.overall.full.der == pytest.approx(4 / 24)


def test_hypothesis_only_recordings_are_refused_even_when_missing_ones_are_allowed(tmp_path):
    with pytest.raises(ManifestError, match="in the hypothesis only: extra") as caught:
        evaluate(tmp_path, REFERENCE, REFERENCE + (("extra", 0, 1, "x"),), allow_missing=True)
    assert "--allow-missing" not in str(caught.value)


def test_empty_reference_is_refused(tmp_path):
    (tmp_path / "ref.rttm").write_text(";; nothing\n")
    with pytest.raises(ManifestError, match="no SPEAKER lines"):
        evaluate_diarisation(tmp_path / "ref.rttm", write_turns(tmp_path / "hyp.rttm", *REFERENCE))


def test_negative_collar_is_refused(tmp_path):
    with pytest.raises(ValueError, match="collar_s"):
        evaluate(tmp_path, REFERENCE, REFERENCE, collar_s=-0.1)


def test_write_report_writes_json_and_markdown(tmp_path):
    report = evaluate(tmp_path, REFERENCE, (("rec", 0, 10, "x"),))
    json_path, markdown_path = write_report(report, tmp_path / "report")
    saved = json.loads(json_path.read_text())
    assert saved["overall"]["der"] == pytest.approx(0.5) and saved["collar_s"] == 0.25
    assert saved["recordings"][0]["full"]["missed_pct"] == pytest.approx(50.0)
    assert saved["recordings"][0]["speaker_count_error"] == -1
    markdown = markdown_path.read_text()
    assert "| rec | 50.00 |" in markdown and "| overall |" in markdown
    assert write_report(report, tmp_path / "no" / "such")[0].is_file()  # the folder is created with its parents
    with pytest.raises(OutputError):
        write_report(report, json_path / "under-a-file")
