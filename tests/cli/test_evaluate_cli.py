"""`spk evaluate diarisation` through Typer's CliRunner: reports, output files and bad input."""

import json
from pathlib import Path

import pandas as pd
import pytest

from speakembed.pipelines.data.rttm import write_rttm
from helpers import spk


def rttm(path: Path, *turns: tuple[str, float, float, str]) -> Path:
    """Write (recording, onset s, end s, speaker) turns as RTTM."""
    return write_rttm(pd.DataFrame([(rec, start, end - start, spk) for rec, start, end, spk in turns],
                                   columns=["recording_id", "start_s", "duration_s", "speaker"]), path)


@pytest.fixture
def rttms(tmp_path):
    """ref.rttm (2 recordings), hyp.rttm (rec1 perfect, rec2 missing B's 10 s of 20 s), and
    partial.rttm (rec1 only)."""
    reference = (("rec1", 0, 10, "A"), ("rec1", 10, 20, "B"), ("rec2", 0, 10, "A"), ("rec2", 10, 20, "B"))
    rttm(tmp_path / "ref.rttm", *reference)
    rttm(tmp_path / "hyp.rttm", ("rec1", 0, 10, "s2"), ("rec1", 10, 20, "s1"), ("rec2", 0, 10, "s1"))
    rttm(tmp_path / "partial.rttm", *reference[:2])
    return tmp_path


def test_evaluate_is_listed_with_its_diarisation_subcommand():
    assert "evaluate" in spk("--help").stdout
    result = spk("evaluate", "--help")
    assert result.exit_code == 0 and "diarisation" in result.stdout
    assert "--reference" in spk("evaluate", "diarisation", "--help").stdout


def test_json_report_per_recording_and_overall(rttms):
    result = spk("evaluate", "diarisation", "--reference", rttms / "ref.rttm", "--hypothesis", rttms / "hyp.rttm", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_id = {scores["recording_id"]: scores for scores in report["recordings"]}
    assert by_id["rec1"]["der"] == 0 and by_id["rec1"]["speaker_count_error"] == 0
    assert by_id["rec2"]["der"] == pytest.approx(0.5) and by_id["rec2"]["full"]["missed_pct"] == pytest.approx(50.0)
    assert by_id["rec2"]["reference_speakers"] == 2 and by_id["rec2"]["hypothesis_speakers"] == 1
    assert report["overall"]["der"] == pytest.approx(0.25) and report["collar_s"] == 0.25


def test_table_and_report_files(rttms):
    result = spk("evaluate", "diarisation", "-r", rttms / "ref.rttm", "-H", rttms / "hyp.rttm", "--collar", "0.5",
                 "--out", rttms / "eval")
    assert result.exit_code == 0, result.output
    assert "rec2" in result.stdout and "overall" in result.stdout and "50.00" in result.stdout
    assert "DER±0.5" in result.stdout
    assert json.loads((rttms / "eval" / "report.json").read_text())["collar_s"] == 0.5
    assert "| rec2 | 50.00 |" in (rttms / "eval" / "report.md").read_text()


def test_reference_folder_against_itself_is_perfect(rttms):
    folder = rttms / "refs"
    folder.mkdir()
    (rttms / "ref.rttm").rename(folder / "ref.rttm")
    result = spk("evaluate", "diarisation", "-r", folder, "-H", folder, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overall"]["der"] == 0


def test_allow_missing_scores_absent_recordings_as_missed(rttms):
    result = spk("evaluate", "diarisation", "-r", rttms / "ref.rttm", "-H", rttms / "partial.rttm", "--allow-missing", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["missing_hypotheses"] == ["rec2"] and report["overall"]["der"] == pytest.approx(0.5)


@pytest.mark.parametrize("make_args, code, message", [
    (lambda tmp: ["-r", tmp / "ref.rttm", "-H", tmp / "partial.rttm"], 6, "in the reference only: rec2"),
    (lambda tmp: ["-r", tmp / "partial.rttm", "-H", tmp / "ref.rttm", "--allow-missing"], 6, "in the hypothesis only: rec2"),
    (lambda tmp: ["-r", tmp / "absent.rttm", "-H", tmp / "hyp.rttm"], 3, "no such RTTM"),
    (lambda tmp: ["-r", tmp / "ref.rttm", "-H", tmp / "empty_dir"], 3, "no .rttm files"),
    (lambda tmp: ["-r", tmp / "ref.rttm", "-H", tmp / "bad.rttm"], 6, "bad.rttm:2"),
    (lambda tmp: ["-r", tmp / "ref.rttm", "-H", tmp / "hyp.rttm", "--out", tmp / "ref.rttm" / "out"], 8, "cannot create the output folder"),
    (lambda tmp: ["-r", tmp / "ref.rttm", "-H", tmp / "hyp.rttm", "--collar", "-1"], 2, "--collar"),
    (lambda tmp: ["-r", tmp / "ref.rttm"], 2, "--hypothesis"),
], ids=["missing-hypothesis-recording", "extra-hypothesis-recording", "missing-file", "folder-without-rttm",
        "malformed-line", "out-under-a-file", "negative-collar", "no-hypothesis"])
def test_bad_input_gets_one_line_error_and_exit_code(rttms, make_args, code, message):
    (rttms / "empty_dir").mkdir()
    (rttms / "bad.rttm").write_text("SPEAKER rec1 1 0 10 <NA> <NA> A <NA> <NA>\nSPEAKER rec1 1 ten 10 <NA> <NA> B\n")
    result = spk("evaluate", "diarisation", *make_args(rttms))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if code != 2:  # usage errors are drawn by click in a box; ours are one line
        assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_out_folder_is_created_with_its_parents(rttms):
    out = rttms / "not" / "yet" / "there"
    result = spk("evaluate", "diarisation", "-r", rttms / "ref.rttm", "-H", rttms / "hyp.rttm", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
