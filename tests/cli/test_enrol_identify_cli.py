"""`spk enrol`, `spk identify`, `spk evaluate identification` and `spk diarise --db` on synthetic
voices (recipes/common/synth.py), and every kind of bad input with its exit code.

Decisions are checked with raw cosine and a fixed threshold (`--backend none --calibration none
--threshold`), so that they do not move when the shipped back-end or calibration is refitted."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import synth

from helpers import spk
from speakembed.pipelines.data.manifests import read_table

RATE = 16000
ENROLLED = ("A", "B", "C")  # D is never enrolled: an impostor
RAW = ("--backend", "none", "--calibration", "none", "--threshold", "0.79")  # A..C clips score >= 0.82, D's <= 0.76


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """clips/<speaker>/<n>.wav, four 2 s clips of each synthetic speaker A-D; silent.wav, short.wav."""
    root = tmp_path_factory.mktemp("voices")
    for speaker in "ABCD":
        (root / "clips" / speaker).mkdir(parents=True)
        for index in range(4):
            soundfile.write(root / "clips" / speaker / f"{index}.wav", synth.speaker_voice(speaker, 2.0, RATE, seed=index), RATE)
    soundfile.write(root / "silent.wav", np.zeros(RATE, np.float32), RATE)
    soundfile.write(root / "short.wav", synth.speaker_voice("A", 0.3, RATE, seed=9), RATE)
    return root


@pytest.fixture(scope="module")
def database(clips) -> Path:
    """voices/ with A, B and C enrolled from their clips 0 and 1."""
    db = clips / "db"
    for speaker in ENROLLED:
        result = spk("enrol", speaker, clips / "clips" / speaker / "0.wav", clips / "clips" / speaker / "1.wav",
                     "--db", db, "--vad", "energy", "-q")
        assert result.exit_code == 0, result.output
    return db


def copy_of(database: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(database, tmp_path / "db"))


def snapshot(folder: Path) -> dict:
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_enrol_creates_the_database_and_lists_it(database):
    result = spk("enrol", "--list", "--db", database, "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert [speaker["name"] for speaker in listing["speakers"]] == list(ENROLLED)
    assert all(speaker["clips"] == 2 and speaker["speech_s"] > 2.5 for speaker in listing["speakers"])
    assert listing["encoder"].startswith("lstm@")
    table = spk("enrol", "--list", "--db", database)
    assert "3 speakers" in table.output and "C" in table.output


def test_enrolling_more_clips_adds_them_and_skips_audio_already_enrolled(clips, database, tmp_path):
    db = copy_of(database, tmp_path)
    result = spk("enrol", "A", clips / "clips" / "A" / "1.wav", clips / "clips" / "A" / "2.wav", "--db", db,
                 "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["added"] == ["A/2.wav"] and len(report["already_enrolled"]) == 1 and report["clips"] == 3
    again = spk("enrol", "B", clips / "clips" / "A" / "2.wav", "--db", db)
    assert again.exit_code == 2 and "already enrolled as 'A'" in again.output


def test_identify_names_enrolled_voices_and_answers_unknown_for_others(clips, database, tmp_path):
    result = spk("identify", clips / "clips", "--db", database, *RAW, "--vad", "energy", "--out", tmp_path / "ids", "-q")
    assert result.exit_code == 0, result.output
    table = read_table(tmp_path / "ids" / "identities.parquet", "identities")
    decided = table[table["rank"] == 1].set_index("item_id")["identity"]
    assert all(decided[f"{speaker}/{index}.wav"] == speaker for speaker in ENROLLED for index in range(4))
    assert (decided[[f"D/{index}.wav" for index in range(4)]] == "unknown").all()
    assert table.groupby("item_id")["rank"].max().eq(3).all()  # --top 5 with 3 people enrolled
    report = json.loads((tmp_path / "ids" / "report.json").read_text())
    assert report["enrolled"] == list(ENROLLED) and report["decision"]["rule"] == "threshold"
    assert "D/0.wav  unknown  (best:" in result.output and "< 0.790" in result.output

    evaluated = spk("evaluate", "identification", "--identities", tmp_path / "ids", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    scores = json.loads(evaluated.output)
    assert scores["closed_set"]["top_k"] == {"1": 1.0, "5": 1.0}
    assert scores["open_set"]["miss_rate"] == 0.0 and scores["open_set"]["false_alarm_rate"] == 0.0
    assert (scores["open_set"]["genuine"], scores["open_set"]["impostors"]) == (12, 4)


def test_identify_with_the_default_scoring_and_json(clips, database):
    result = spk("identify", clips / "clips" / "A" / "3.wav", clips / "clips" / "B" / "3.wav", "--db", database,
                 "--vad", "energy", "--top", "2", "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [answer["candidates"][0]["name"] for answer in report["identifications"]] == ["A", "B"]
    assert all(len(answer["candidates"]) == 2 for answer in report["identifications"])
    assert set(report["scoring"]) >= {"key", "backend"} and report["encoder"].startswith("lstm@")


def test_identify_lists_clips_that_cannot_be_embedded(clips, database, tmp_path):
    result = spk("identify", clips / "clips" / "A" / "2.wav", clips / "silent.wav", "--db", database, *RAW,
                 "--vad", "energy", "--out", tmp_path / "ids", "-q")
    assert result.exit_code == 0, result.output
    failures = read_table(tmp_path / "ids" / "failures.parquet", "failures")
    assert failures["reason"].tolist() == ["silent"]
    only_silence = spk("identify", clips / "silent.wav", "--db", database)
    assert only_silence.exit_code == 5 and "silent" in only_silence.output


def test_rename_and_remove(database, tmp_path):
    db = copy_of(database, tmp_path)
    assert spk("enrol", "--rename", "A", "Ann Lee", "--db", db).exit_code == 0
    assert spk("enrol", "--remove", "B", "--db", db).exit_code == 0
    listing = json.loads(spk("enrol", "--list", "--db", db, "--json").output)
    assert [speaker["name"] for speaker in listing["speakers"]] == ["Ann Lee", "C"]
    taken = spk("enrol", "--rename", "Ann Lee", "C", "--db", db)
    assert taken.exit_code == 2 and "'C' is already enrolled" in taken.output
    for name in ("Ann Lee", "C"):
        assert spk("enrol", "--remove", name, "--db", db).exit_code == 0
    empty = spk("identify", db / "database.json", "--db", db)
    assert empty.exit_code == 2 and "no speaker is enrolled" in empty.output


def test_a_failed_enrol_leaves_the_database_as_it_was(clips, database, tmp_path):
    db = copy_of(database, tmp_path)
    before = snapshot(db)
    for clip, code, words in ((clips / "silent.wav", 5, "silent"), (clips / "short.wav", 5, "shorter than"),
                              (clips / "missing.wav", 3, "no such file")):
        result = spk("enrol", "A", clips / "clips" / "A" / "3.wav", clip, "--db", db)
        assert result.exit_code == code, result.output
        assert words in result.output and result.output.count("\n") == 1, result.output
    assert snapshot(db) == before
    assert sorted(path.name for path in db.parent.iterdir()) == ["db"], "temporary folders left behind"


def test_bad_names_and_folders(clips, database):
    clip = clips / "clips" / "A" / "3.wav"
    for args, db, code, words in ((("enrol", "--remove", "Z"), database, 2, "'Z' is not enrolled"),
                                  (("enrol", "unknown", clip), database, 2, "cannot be a speaker name"),
                                  (("enrol", "A", clip, "--vad", "silero"), database, 2, "made with VAD 'energy'"),
                                  (("enrol", "--list"), clips / "clips", 6, "not a speaker database"),
                                  (("enrol", "A", clip), clips / "clips", 6, "not a speaker database"),
                                  (("identify", clip), clips / "clips", 6, "not a speaker database")):
        result = spk(*args, "--db", db)
        assert result.exit_code == code, (args, result.output)
        assert words in result.output and result.output.count("\n") == 1, result.output


def test_a_database_refuses_another_encoder(clips, database, tmp_path):
    result = spk("enrol", "D", clips / "clips" / "D" / "0.wav", "--db", database, "--encoder", "conv-transformer")
    assert result.exit_code == 6 and "made with lstm@" in result.output and "--encoder lstm" in result.output
    other = tmp_path / "ct"
    assert spk("enrol", "D", clips / "clips" / "D" / "0.wav", "--db", other, "--encoder", "conv-transformer",
               "--vad", "energy", "-q").exit_code == 0
    refused = spk("identify", clips / "clips" / "D" / "1.wav", "--db", other, "--encoder", "lstm")
    assert refused.exit_code == 6 and "made with conv-transformer@" in refused.output
    no_database = spk("identify", clips / "clips" / "D" / "1.wav", "--db", tmp_path / "nothing")
    assert no_database.exit_code == 3 and "spk enrol" in no_database.output


def test_usage_errors(database):
    assert spk("enrol", "--db", database).exit_code == 2  # no mode
    assert spk("enrol", "A", "--db", database).exit_code == 2  # a name without clips
    assert spk("enrol", "--list", "--remove", "A", "--db", database).exit_code == 2
    assert spk("evaluate", "identification").exit_code == 2


def test_diarise_against_the_database_and_score_the_names(clips, database, tmp_path):
    audio, lines, time = [], [], 0.0
    for index, speaker in enumerate("ABAB"):
        audio += [synth.speaker_voice(speaker, 3.0, RATE, seed=20 + index), np.zeros(int(0.6 * RATE), np.float32)]
        lines.append(f"SPEAKER meet 1 {time:.3f} 3.000 <NA> <NA> {speaker} <NA> <NA>")
        time += 3.6
    soundfile.write(tmp_path / "meet.wav", np.concatenate(audio), RATE)
    (tmp_path / "meet.rttm").write_text("\n".join(lines) + "\n")
    result = spk("diarise", tmp_path / "meet.wav", "--db", database, "--out", tmp_path / "out", "--vad", "energy",
                 "--no-views", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["database"] == str(database.absolute())
    scored = spk("evaluate", "identification", "--reference", tmp_path / "meet.rttm", "--hypothesis",
                 tmp_path / "out" / "meet.rttm", "--json")
    assert scored.exit_code == 0, scored.output
    overall = json.loads(scored.output)["overall"]
    assert overall["ier"] < 0.1 and overall["der"] <= overall["ier"] + 1e-9
    # names count: the same turns with the names swapped keep the DER (optimal mapping) but not the IER
    swapped = (tmp_path / "out" / "meet.rttm").read_text().replace(" A ", " X ").replace(" B ", " A ").replace(" X ", " B ")
    (tmp_path / "swapped.rttm").write_text(swapped)
    wrong = json.loads(spk("evaluate", "identification", "--reference", tmp_path / "meet.rttm", "--hypothesis",
                           tmp_path / "swapped.rttm", "--json").output)["overall"]
    assert wrong["ier"] > 0.9 and wrong["der"] == pytest.approx(overall["der"])
    both = spk("diarise", tmp_path / "meet.wav", "--db", database, "--refs", clips / "clips" / "A" / "0.wav",
               "--out", tmp_path / "out2")
    assert both.exit_code == 2 and "not both" in both.output
