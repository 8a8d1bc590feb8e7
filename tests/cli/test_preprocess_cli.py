"""`spk preprocess` through Typer's CliRunner on tiny synthetic corpora in each layout."""

import os
import zlib
from pathlib import Path

import pandas as pd
import pytest
import soundfile
import synth

from speakembed.pipelines.data.features import read_features
from speakembed.pipelines.data.manifests import read_table
from helpers import spk

RATE = 16000
SPEAKERS = ("A", "B", "C")


def voice(path: Path, speaker: str, duration_s: float = 1.5, format: str | None = None) -> Path:
    """Write ~`duration_s` s of synthetic `speaker` at `path`; the seed follows the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    waveform = synth.speaker_voice(speaker, duration_s, RATE, zlib.crc32(path.name.encode()))
    soundfile.write(str(path), waveform, RATE, format=format)
    return path


def librispeech(root: Path) -> Path:
    for number, speaker in enumerate(SPEAKERS, start=1):
        chapter = root / str(number) / "100"
        lines = []
        for utt in range(2):
            voice(chapter / f"{number}-100-{utt:04d}.flac", speaker)
            lines.append(f"{number}-100-{utt:04d} WORDS OF SPEAKER {speaker} NUMBER {utt}")
        (chapter / f"{number}-100.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def store_summary(out: Path) -> dict:
    return read_features(out).attrs["summary"]


def preprocess(corpus: str, root: Path, out: Path, *options):
    result = spk("preprocess", corpus, root, "--out", out, "--vad", "energy", "--quiet", *options)
    assert result.exit_code == 0, result.output
    return result


def test_librispeech_manifests_splits_and_features(tmp_path):
    root, out = librispeech(tmp_path / "LibriSpeech"), tmp_path / "prep"
    result = preprocess("librispeech", root, out, "--dev-fraction", "0.34", "--test-fraction", "0.33")
    assert "6/6 utterances" in result.stdout
    recordings = read_table(out / "recordings.parquet", "recordings")
    assert all((out / path).resolve().is_file() and not os.path.isabs(path) for path in recordings["path"])
    assert set(recordings["sample_rate"]) == {RATE} and recordings["duration_s"].round(2).eq(1.5).all()
    segments = read_table(out / "segments.parquet", "segments")
    assert (segments["segment_id"] == segments["recording_id"]).all() and (segments["start_s"] == 0).all()
    assert segments.set_index("segment_id").loc["2-100-0001", "text"] == "WORDS OF SPEAKER B NUMBER 1"
    assert "gender" not in segments.columns and set(segments["language"]) == {"en"}
    assert segments.groupby("speaker")["split"].nunique().eq(1).all()  # each speaker in one split
    assert set(segments["split"]) == {"train", "dev", "test"}
    assert list(store_summary(out)["splits"]) == ["train", "dev", "test"]
    store = read_features(out)
    assert sorted(store.segment_ids) == sorted(segments["segment_id"]) and store.n_mels == 40
    assert store.attrs["frontend"]["log"] is True and store.attrs["vad"] == "energy" and store.attrs["sample_rate"] == RATE
    speech_s = store.attrs["summary"]["speech_s"]
    assert 0.5 * 6 * 1.5 < speech_s <= 6 * 1.5
    frames = sum(store.num_frames(segment_id) for segment_id in store.segment_ids)
    assert abs(frames - 100 * speech_s) <= len(store)  # one frame per 10 ms hop, +1 per segment
    assert store.get("1-100-0000").shape[1] == 40
    assert not (out / "retrieval.tsv").exists()  # 2 recordings per speaker: too few for the default 3


def test_retrieval_set_holds_k_recordings_of_each_held_out_speaker(tmp_path):
    root, out = librispeech(tmp_path / "LibriSpeech"), tmp_path / "prep"
    result = preprocess("librispeech", root, out, "--dev-fraction", "0.34", "--test-fraction", "0.33",
                        "--retrieval-per-speaker", "2")
    assert result.exit_code == 0, result.output
    chosen = pd.read_csv(out / "retrieval.tsv", sep="\t", dtype=str)
    segments = read_table(out / "segments.parquet", "segments")
    test_speakers = set(segments.loc[segments["split"] == "test", "speaker"])
    assert set(chosen["speaker"]) == test_speakers and set(chosen["split"]) == {"test"}
    assert chosen.groupby("speaker").size().eq(2).all() and set(chosen["segment_id"]) <= set(segments["segment_id"])


def test_retrieval_set_skips_speakers_with_too_few_recordings_and_falls_back_to_dev():
    from speakembed.pipelines.preprocess import retrieval_set

    segments = pd.DataFrame({"segment_id": [f"s{i}" for i in range(9)],
                             "speaker": ["a"] * 4 + ["b"] * 2 + ["c"] * 3,
                             "split": ["dev"] * 9})
    chosen = retrieval_set(segments, 3)
    assert chosen.groupby("speaker").size().to_dict() == {"a": 3, "c": 3}
    assert chosen.equals(retrieval_set(segments.sample(frac=1, random_state=0), 3))  # order-independent
    assert retrieval_set(segments.assign(split="train"), 3).empty and retrieval_set(segments, 0).empty


def test_corrupt_file_is_a_failure_and_rerun_is_a_no_op(tmp_path):
    root, out = tmp_path / "voices", tmp_path / "prep"
    for speaker in SPEAKERS[:2]:
        for utt in range(2):
            voice(root / speaker / "session" / f"{utt}.wav", speaker)
    (root / "B" / "broken.wav").write_bytes(b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00" + bytes(500))
    result = preprocess("folder", root, out)
    assert "1 recordings not used (1 unreadable)" in result.stdout
    failures = read_table(out / "failures.parquet", "failures")
    assert failures[["item_id", "reason"]].values.tolist() == [["B/broken.wav", "unreadable"]]
    assert len(read_table(out / "segments.parquet", "segments")) == len(read_features(out)) == 4
    stamp = (out / "features.zarr" / "zarr.json").stat().st_mtime_ns
    again = preprocess("folder", root, out)
    assert "up to date" in again.stdout
    assert (out / "features.zarr" / "zarr.json").stat().st_mtime_ns == stamp
    voice(root / "A" / "session" / "new.wav", "A")
    assert "up to date" not in preprocess("folder", root, out).stdout  # a changed corpus is redone
    assert len(read_features(out)) == 5


def test_folder_follows_symlinked_speaker_folders_and_records_empty_files(tmp_path):
    """A speaker folder that is a symlink is read like any other (a link back to the root ends);
    a 0-byte file is recorded as reason 'empty', not 'unreadable'."""
    root, elsewhere, out = tmp_path / "voices", tmp_path / "elsewhere", tmp_path / "prep"
    for utt in range(2):
        voice(root / "A" / f"{utt}.wav", "A")
        voice(elsewhere / "B" / f"{utt}.wav", "B")
    (root / "B").symlink_to(elsewhere / "B", target_is_directory=True)
    (root / "A" / "again").symlink_to(root, target_is_directory=True)  # a loop
    (root / "A" / "zero.wav").write_bytes(b"")
    result = preprocess("folder", root, out)
    assert "1 recordings not used (1 empty)" in result.stdout
    segments = read_table(out / "segments.parquet", "segments")
    assert sorted(segments["segment_id"]) == ["A/0.wav", "A/1.wav", "B/0.wav", "B/1.wav"]
    assert sorted(set(segments["speaker"])) == ["A", "B"]
    failures = read_table(out / "failures.parquet", "failures")
    assert failures[["item_id", "reason"]].values.tolist() == [["A/zero.wav", "empty"]]


def test_interrupted_run_leaves_no_finished_store(tmp_path, monkeypatch):
    from speakembed.pipelines import preprocess as pipeline

    root, out = librispeech(tmp_path / "ls"), tmp_path / "prep"
    calls = []

    def interrupt(frontend, speech):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(frontend, speech)

    original = pipeline._log_mel
    monkeypatch.setattr(pipeline, "_log_mel", interrupt)
    result = spk("preprocess", "librispeech", root, "--out", out, "--vad", "energy", "--quiet")
    assert result.exit_code == 130
    assert not (out / "features.zarr").exists() and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_voxceleb_trial_list_becomes_trials_parquet_and_test_speakers(tmp_path):
    root, out = tmp_path / "vox1", tmp_path / "prep"
    for index, speaker in enumerate(SPEAKERS):
        for utt in range(2):
            voice(root / f"id1000{index}" / f"video{utt}" / "00001.wav", speaker)
    (root / "veri_test2.txt").write_text(
        "1 id10000/video0/00001.wav id10000/video1/00001.wav\n0 id10000/video0/00001.wav id10001/video0/00001.wav\n")
    preprocess("voxceleb", root, out, "--dev-fraction", "0", "--test-fraction", "0")
    segments = read_table(out / "segments.parquet", "segments").set_index("segment_id")
    trials = read_table(out / "trials.parquet", "trials")
    assert set(trials["enroll"]) | set(trials["test"]) <= set(segments.index)
    assert trials["label"].tolist() == [1, 0]
    assert segments.groupby("speaker")["split"].first().to_dict() == {"id10000": "test", "id10001": "test", "id10002": "train"}


@pytest.mark.skipif(not synth.can_write("MP3"), reason="this libsndfile cannot encode MP3")
def test_commonvoice_mp3_filters_and_gender(tmp_path):
    root, out = tmp_path / "cv" / "en", tmp_path / "prep"
    rows = [("spkA", "a1.mp3", 3, 0, "male_masculine"), ("spkA", "a2.mp3", 2, 0, "male_masculine"),
            ("spkA", "a3.mp3", 2, 1, "male_masculine"), ("spkB", "b1.mp3", 2, 0, ""), ("spkB", "b2.mp3", 5, 0, ""),
            ("spkC", "c1.mp3", 2, 0, "female_feminine"), ("spkC", "c2.mp3", 0, 0, "female_feminine")]
    speakers = {"spkA": "A", "spkB": "B", "spkC": "C"}
    for client, name, *_ in rows:
        voice(root / "clips" / name, speakers[client], format="MP3")
    lines = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\tlocale"]
    lines += [f"{client}\t{name}\tSentence {name}.\t{up}\t{down}\t\t{gender}\ten" for client, name, up, down, gender in rows]
    (root / "validated.tsv").write_text("\n".join(lines) + "\n")
    preprocess("commonvoice", root, out)
    segments = read_table(out / "segments.parquet", "segments").set_index("segment_id")
    assert sorted(segments.index) == ["a1", "a2", "b1", "b2"]  # a3 down-voted, c2 under-voted, so spkC has 1
    assert segments.loc["a1", "gender"] == "male_masculine" and pd.isna(segments.loc["b1", "gender"])
    assert segments.loc["b2", "text"] == "Sentence b2.mp3." and set(segments["language"]) == {"en"}
    result = spk("preprocess", "commonvoice", root, "--out", out, "--min-upvotes", "6", "--quiet")
    assert result.exit_code == 5 and "--min-upvotes 6" in result.output


@pytest.mark.parametrize("make_args, code, message", [
    (lambda tmp: ["preprocess", "timit", tmp, "--out", tmp / "o"], 2, "is not one of"),
    (lambda tmp: ["preprocess", "folder", tmp / "absent", "--out", tmp / "o"], 3, "no such folder"),
    (lambda tmp: ["preprocess", "librispeech", tmp / "empty", "--out", tmp / "o"], 3, "<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac"),
    (lambda tmp: ["preprocess", "commonvoice", tmp / "empty", "--out", tmp / "o"], 3, "no validated.tsv"),
    (lambda tmp: ["preprocess", "folder", tmp / "empty", "--out", tmp / "o", "--frontend", "mfcc"], 2, "is not one of"),
    (lambda tmp: ["preprocess", "folder", tmp / "empty", "--out", tmp / "a_file" / "o"], 8, "cannot create the output folder"),
], ids=["unknown-corpus", "missing-root", "no-audio-in-layout", "commonvoice-without-tsv", "unknown-frontend", "out-under-a-file"])
def test_bad_input_gets_one_line_error_and_exit_code(tmp_path, make_args, code, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    result = spk(*make_args(tmp_path))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
