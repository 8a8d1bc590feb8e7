"""`spk diarise` end to end on a synthetic two-speaker meeting, and every kind of bad input."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import synth

from speakembed.pipelines.evaluate_diarisation import evaluate_diarisation
from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.data.rttm import read_rttm
from helpers import spk

RATE = 16000
TURNS = ["A", "C", "A", "C", "A", "C"]


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
    assert "1 segment, 1 speaker (speaker_1)" in result.output


@pytest.mark.parametrize(
    "make_args, code, message",
    [
        (lambda m, bad: [m / "absent.wav"], 3, "no such file"),
        (lambda m, bad: [m / "meet.wav", "--refs", bad["silent"]], 5, "reference 'silent'"),
        (lambda m, bad: [m / "meet.wav", "--refs", bad["too_short"], "--vad", "energy"], 5, "reference 'too_short'"),
        (lambda m, bad: [m / "meet.wav", "--refs", m / "A.wav", m / "absent.wav"], 3, "no such file"),
        (lambda m, bad: [m / "meet.wav", "--refs", m / "A.wav", bad["clipped"].parent / ".." / m.name / "A.wav"], 6, "both labelled 'A'"),
        (lambda m, bad: [m / "meet.wav", "--min-speakers", "5", "--max-speakers", "2"], 2, "--min-speakers"),
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
    for name in ("meet.wav", "Réunion 3 ü.wav"):
        shutil.copy(meeting / "meet.wav", folder / name)
    shutil.copy(bad_audio["corrupt"], folder / "broken.wav")
    result = spk("diarise", folder, "--out", tmp_path / "out", "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert "1 recording could not be diarised" in result.output
    failures = read_table(tmp_path / "out" / "failures.parquet", "failures")
    assert failures["item_id"].tolist() == ["broken"] and failures["reason"].tolist() == ["unreadable"]
    recordings = set(read_table(tmp_path / "out" / "diarisation.parquet", "diarisation")["recording_id"])
    assert recordings == {"meet", "Réunion 3 ü"}
    assert set(read_rttm(tmp_path / "out")["recording_id"]) == {"meet", "Réunion_3_ü"}


def test_unknown_speech_can_be_clustered_into_new_voices(meeting, tmp_path):
    result = spk("diarise", meeting / "meet.wav", "--refs", meeting / "A.wav", "--out", tmp_path / "out",
                 "--vad", "energy", "--no-views", "-q", "--unknown-threshold", "0.7", "--cluster-unknown")
    assert result.exit_code == 0, result.output
    speakers = set(read_table(tmp_path / "out" / "diarisation.parquet", "diarisation")["speaker"])
    assert "A" in speakers and "unknown" not in speakers
    assert speakers - {"A"} and all(name.startswith("unknown_") for name in speakers - {"A"})


# --- real-world input: long recordings, any file name, bad folders, bad --out ---------------------


def test_recording_of_several_minutes_gets_every_output_with_views(meeting, tmp_path):
    """Past ~2.5 min a one-call OGG Vorbis write crashes libsndfile 1.2.2 (segmentation fault):
    the HTML's embedded audio must be encoded in blocks."""
    long_audio = tmp_path / "long.wav"
    soundfile.write(long_audio, np.tile(soundfile.read(meeting / "meet.wav", dtype="float32")[0], 9), RATE)  # 3.2 min
    result = spk("diarise", long_audio, "--out", tmp_path / "out", "--vad", "energy", "--hop", "1.6",
                 "--num-speakers", "2", "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert read_rttm(out / "long.rttm")["start_s"].max() > 180
    assert read_table(out / "diarisation.parquet", "diarisation")["speaker"].nunique() == 2
    assert (out / "long.png").stat().st_size > 10_000
    assert 'src="data:audio/ogg;base64,' in (out / "long.html").read_text()


NAMES = ["Réunion 3 ü", "meeting [take 2] (final)", "Bob's \"quoted\" call", "tab\tand  two spaces"]


@pytest.mark.parametrize("name", NAMES, ids=["spaces-accents", "brackets", "quotes", "tab-and-double-space"])
def test_any_file_name_is_a_recording_id(meeting, tmp_path, name):
    recording = tmp_path / f"{name}.wav"
    shutil.copy(meeting / "meet.wav", recording)
    result = spk("diarise", recording, "--refs", f"Ann Lee={meeting / 'A.wav'}", meeting / "C.wav",
                 "--out", tmp_path / "out", "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    segments = read_table(out / "diarisation.parquet", "diarisation")
    assert set(segments["recording_id"]) == {name} and set(segments["speaker"]) == {"Ann Lee", "C"}
    rttm = read_rttm(out / f"{name}.rttm")
    rttm_id = "_".join(name.split())
    assert set(rttm["recording_id"]) == {rttm_id} and set(rttm["speaker"]) == {"Ann_Lee", "C"}
    assert json.loads((out / "report.json").read_text())["recordings"][0]["rttm_id"] == rttm_id
    assert (out / f"{name}.png").is_file() and "data:audio/ogg" in (out / f"{name}.html").read_text()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="m4a needs ffmpeg")
def test_m4a_with_spaces_and_accents_in_its_name(meeting, tmp_path):
    recording = tmp_path / "Réunion 3 ü.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(meeting / "meet.wav"), str(recording)], check=True)
    result = spk("diarise", recording, "--out", tmp_path / "out", "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert set(read_rttm(tmp_path / "out" / "Réunion 3 ü.rttm")["recording_id"]) == {"Réunion_3_ü"}
    assert "Réunion 3 ü (RTTM id Réunion_3_ü): " in result.output


def test_names_that_collide_in_rttm_stay_distinct(meeting, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ("a b.wav", "a_b.wav"):
        shutil.copy(meeting / "meet.wav", folder / name)
    result = spk("diarise", folder, "--out", tmp_path / "out", "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert set(read_rttm(tmp_path / "out" / "a_b.rttm")["recording_id"]) == {"a_b"}
    (hashed,) = set(read_rttm(tmp_path / "out" / "a b.rttm")["recording_id"])
    assert hashed.startswith("a_b_") and len(hashed) == len("a_b_") + 6


def test_out_under_a_regular_file_fails_before_any_work(meeting, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the encoder was loaded before the output folder was checked")

    monkeypatch.setattr("speakembed.models.registry.load_encoder", no_work)
    (tmp_path / "file").write_text("a regular file")
    result = spk("diarise", meeting / "meet.wav", "--out", tmp_path / "file" / "out", "-q")
    assert result.exit_code == 8, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1 and "--out" in result.output


def test_a_folder_where_every_recording_is_corrupt_fails_with_their_exit_code(bad_audio, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ("one.wav", "two.wav"):
        shutil.copy(bad_audio["corrupt"], folder / name)
    result = spk("diarise", folder, "--out", tmp_path / "out", "--no-views", "-q")
    assert result.exit_code == 4, result.output
    assert "none of the 2 recordings could be diarised" in result.output and "Traceback" not in result.output
    assert read_table(tmp_path / "out" / "failures.parquet", "failures")["item_id"].tolist() == ["one", "two"]
    assert read_table(tmp_path / "out" / "diarisation.parquet", "diarisation").empty


def test_a_folder_where_recordings_fail_in_different_ways_exits_5(bad_audio, tmp_path, monkeypatch):
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(bad_audio["corrupt"], folder / "corrupt.wav")
    (folder / "phone.m4a").write_bytes(b"not decoded: ffmpeg is missing")
    monkeypatch.setattr("speakembed.pipelines.audio.decode.shutil.which", lambda program: None)
    result = spk("diarise", folder, "--out", tmp_path / "out", "--no-views", "-q")
    assert result.exit_code == 5, result.output
    assert set(read_table(tmp_path / "out" / "failures.parquet", "failures")["item_id"]) == {"corrupt", "phone"}


def test_a_new_run_removes_the_previous_runs_per_recording_files(meeting, tmp_path):
    folder, out = tmp_path / "recordings", tmp_path / "out"
    folder.mkdir()
    for name in ("first.wav", "second.wav"):
        shutil.copy(meeting / "meet.wav", folder / name)
    assert spk("diarise", folder, "--out", out, "--vad", "energy", "-q").exit_code == 0
    assert (out / "second.html").is_file()
    (out / "notes.txt").write_text("the user's own file")
    result = spk("diarise", folder / "first.wav", "--out", out, "--vad", "energy", "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "diarisation.parquet", "failures.parquet", "first.rttm", "notes.txt", "report.json", "similarities.parquet"]
    assert set(read_table(out / "diarisation.parquet", "diarisation")["recording_id"]) == {"first"}
