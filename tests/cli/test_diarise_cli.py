"""`spk diarise` end to end on a synthetic two-speaker meeting, and every kind of bad input."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import synth
from typer.testing import CliRunner

from speakembed.main import app
from speakembed.pipelines.evaluate import evaluate_diarisation
from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.data.rttm import read_rttm

RATE = 16000
TURNS = ["A", "C", "A", "C", "A", "C"]
runner = CliRunner()


def spk(*args):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def meeting(tmp_path_factory) -> Path:
    """Alternating 3 s turns of synthetic speakers A and C with 0.6 s pauses, its RTTM, and a
    separate 4 s reference clip of each voice."""
    root = tmp_path_factory.mktemp("meeting")
    audio, lines, time = [], [], 0.0
    for index, speaker in enumerate(TURNS):
        audio += [synth.speaker_voice(speaker, 3.0, RATE, seed=index), np.zeros(int(0.6 * RATE), np.float32)]
        lines.append(f"SPEAKER meet 1 {time:.3f} 3.000 <NA> <NA> {speaker} <NA> <NA>")
        time += 3.6
    soundfile.write(root / "meet.wav", np.concatenate(audio), RATE)
    (root / "meet.rttm").write_text("\n".join(lines) + "\n")
    for speaker, seed in (("A", 100), ("C", 101)):
        soundfile.write(root / f"{speaker}.wav", synth.speaker_voice(speaker, 4.0, RATE, seed=seed), RATE)
    return root


def check_outputs(out: Path, speakers: set[str]) -> None:
    segments = read_table(out / "diarisation.parquet", "diarisation")
    assert set(segments["speaker"]) == speakers
    curves = read_table(out / "similarities.parquet", "similarities")
    assert len(curves) > 0 and curves["similarity"].between(-1, 1).all()
    assert read_rttm(out / "meet.rttm")["speaker"].nunique() == len(speakers)


def test_reference_mode_labels_each_turn_with_its_voice(meeting, tmp_path):
    result = spk("diarise", meeting / "meet.wav", "--refs", meeting / "A.wav", meeting / "C.wav",
                 "--out", tmp_path / "out", "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    check_outputs(tmp_path / "out", {"A", "C"})
    report = evaluate_diarisation(meeting / "meet.rttm", tmp_path / "out" / "meet.rttm")
    assert report.overall.full.percent(report.overall.full.confusion_s) < 5
    assert (tmp_path / "out" / "meet.png").stat().st_size > 10_000
    assert "<audio" in (tmp_path / "out" / "meet.html").read_text()


def test_clustering_mode_finds_two_speakers_by_itself(meeting, tmp_path):
    result = spk("diarise", meeting / "meet.wav", "--out", tmp_path / "out", "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    check_outputs(tmp_path / "out", {"speaker_1", "speaker_2"})
    report = evaluate_diarisation(meeting / "meet.rttm", tmp_path / "out" / "meet.rttm")
    assert report.recordings[0].speaker_count_error == 0
    assert report.overall.full.percent(report.overall.full.confusion_s) < 5
    assert not (tmp_path / "out" / "meet.png").exists()


def test_speech_matching_no_reference_is_unknown(meeting, tmp_path):
    result = spk("diarise", meeting / "meet.wav", "--refs", meeting / "A.wav", "--out", tmp_path / "out",
                 "--vad", "energy", "--no-views", "-q", "--unknown-threshold", "0.7")
    assert result.exit_code == 0, result.output
    segments = read_table(tmp_path / "out" / "diarisation.parquet", "diarisation")
    by_speaker = segments.groupby("speaker")["duration_s"].sum()
    assert set(by_speaker.index) == {"A", "unknown"} and by_speaker["unknown"] > 5


def test_no_speech_gives_empty_results_and_a_message(bad_audio, tmp_path):
    result = spk("diarise", bad_audio["silent"], "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert "no speech found" in result.output
    assert read_table(tmp_path / "out" / "diarisation.parquet", "diarisation").empty
    assert (tmp_path / "out" / "silent.rttm").read_text() == ""


def test_recording_shorter_than_a_window_is_diarised(make_wav, tmp_path):
    short = make_wav("short.wav", speaker="B", duration_s=1.0)
    result = spk("diarise", short, "--out", tmp_path / "out", "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert set(read_rttm(tmp_path / "out" / "short.rttm")["speaker"]) == {"speaker_1"}


@pytest.mark.parametrize(
    "make_args, code, message",
    [
        (lambda m, bad: [m / "absent.wav"], 3, "no such file"),
        (lambda m, bad: [m / "meet.wav", "--refs", bad["silent"]], 5, "reference 'silent'"),
        (lambda m, bad: [m / "meet.wav", "--refs", bad["too_short"], "--vad", "energy"], 5, "reference 'too_short'"),
        (lambda m, bad: [m / "meet.wav", "--refs", m / "A.wav", m / "absent.wav"], 3, "no such file"),
        (lambda m, bad: [m / "meet.wav", "--refs", m / "A.wav", bad["clipped"].parent / ".." / m.name / "A.wav"], 6, "both labelled 'A'"),
        (lambda m, bad: [m / "meet.wav", "--min-speakers", "5", "--max-speakers", "2"], 6, "--min-speakers"),
        (lambda m, bad: [bad["corrupt"]], 4, "cannot decode"),
        (lambda m, bad: [m / "meet.wav", "--vad", "loud"], 2, "is not one of"),
    ],
    ids=["missing-meeting", "silent-reference", "too-short-reference", "missing-reference",
         "duplicate-reference-labels", "bad-speaker-bounds", "corrupt-meeting", "unknown-vad"],
)
def test_bad_input_gets_one_line_error(meeting, bad_audio, tmp_path, make_args, code, message):
    result = spk("diarise", *make_args(meeting, bad_audio), "--out", tmp_path / "out", "-q", "--no-views")
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_bad_recording_in_a_folder_is_recorded_and_skipped(meeting, bad_audio, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "meet.wav").write_bytes((meeting / "meet.wav").read_bytes())
    (folder / "broken.wav").write_bytes(bad_audio["corrupt"].read_bytes())
    result = spk("diarise", folder, "--out", tmp_path / "out", "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert "1 recordings could not be diarised" in result.output
    failures = read_table(tmp_path / "out" / "failures.parquet", "failures")
    assert failures["item_id"].tolist() == ["broken"] and failures["reason"].tolist() == ["unreadable"]
    assert set(read_table(tmp_path / "out" / "diarisation.parquet", "diarisation")["recording_id"]) == {"meet"}


def test_unknown_speech_can_be_clustered_into_new_voices(meeting, tmp_path):
    result = spk("diarise", meeting / "meet.wav", "--refs", meeting / "A.wav", "--out", tmp_path / "out",
                 "--vad", "energy", "--no-views", "-q", "--unknown-threshold", "0.7", "--cluster-unknown")
    assert result.exit_code == 0, result.output
    speakers = set(read_table(tmp_path / "out" / "diarisation.parquet", "diarisation")["speaker"])
    assert "A" in speakers and "unknown" not in speakers
    assert speakers - {"A"} and all(name.startswith("unknown_") for name in speakers - {"A"})
