"""Corpus readers, speaker splits and the features store, on tiny layouts of placeholder files
(readers only look at names and tables; decoding is tested through `spk preprocess`)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from speakembed.pipelines.data.corpora import (
    CommonVoiceFilters,
    EmptySelectionError,
    assign_split,
    read_corpus,
    speaker_splits,
)
from speakembed.pipelines.base.errors import InputNotFoundError
from speakembed.pipelines.data.features import FeatureWriter, read_features, write_features


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_librispeech_reads_ids_speakers_and_transcripts(tmp_path):
    touch(tmp_path, "19/198/19-198-0001.flac", "19/198/19-198-0002.flac", "26/495/26-495-0000.flac",
          "26/495/notes.flac", "README.TXT")
    (tmp_path / "19/198/19-198.trans.txt").write_text("19-198-0001 HELLO THERE\n19-198-0002 GOOD BYE\n")
    corpus = read_corpus("librispeech", tmp_path)
    assert [(u.recording_id, u.speaker, u.text, u.language) for u in corpus.utterances] == [
        ("19-198-0001", "19", "HELLO THERE", "en"), ("19-198-0002", "19", "GOOD BYE", "en"),
        ("26-495-0000", "26", "", "en")]


def test_voxceleb_ids_m4a_and_any_trial_list(tmp_path):
    touch(tmp_path, "id1/vidA/00001.wav", "id1/vidB/00002.m4a", "id2/vidC/00001.wav", "id3/vidD/00001.wav",
          "id1/vidA/readme.txt")
    (tmp_path / "notes.txt").write_text("not a trial list\n")
    (tmp_path / "my_trials.txt").write_text("1 id1/vidA/00001.wav id1/vidB/00002.wav\n0 id1/vidA/00001.wav id2/vidC/00001.wav\n")
    corpus = read_corpus("voxceleb", tmp_path)
    assert [u.recording_id for u in corpus.utterances] == ["id1/vidA/00001", "id1/vidB/00002", "id2/vidC/00001", "id3/vidD/00001"]
    assert corpus.trial_list.name == "my_trials.txt"
    assert corpus.trials.values.tolist() == [["id1/vidA/00001", "id1/vidB/00002", 1], ["id1/vidA/00001", "id2/vidC/00001", 0]]
    assert corpus.test_speakers == {"id1", "id2"}
    splits = speaker_splits(corpus, dev_fraction=0.0, test_fraction=0.0)
    assert splits == {"id1": "test", "id2": "test", "id3": "train"}


def test_voxceleb_official_list_name_wins(tmp_path):
    touch(tmp_path, "id1/v/1.wav")
    for name in ("a_other.txt", "veri_test2.txt"):
        (tmp_path / name).write_text("1 id1/v/1.wav id1/v/1.wav\n")
    assert read_corpus("voxceleb", tmp_path).trial_list.name == "veri_test2.txt"


def write_validated(root: Path, rows: list[tuple]) -> None:
    lines = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\tlocale"]
    lines += ["\t".join(map(str, row)) for row in rows]
    (root / "validated.tsv").write_text("\n".join(lines) + "\n")


VALIDATED = [
    ("spk1", "c1.mp3", 'He said "hi".', 2, 0, "twenties", "male_masculine", "cy"),
    ("spk1", "c2.mp3", "Two.", 3, 0, "twenties", "male_masculine", "cy"),
    ("spk1", "c3.mp3", "Three.", 5, 0, "twenties", "male_masculine", "cy"),
    ("spk2", "c4.mp3", "Four.", 2, 0, "", "", "cy"),
    ("spk2", "c5.mp3", "Five.", 2, 1, "", "", "cy"),  # down-voted: dropped, so spk2 has 1 clip left
    ("spk3", "c6.mp3", "Six.", 1, 0, "", "female_feminine", "cy"),  # too few up-votes
    ("spk3", "c7.mp3", "Seven.", 4, 0, "", "female_feminine", "cy"),
    ("spk3", "c8.mp3", "Eight.", 4, 0, "", "female_feminine", "cy"),
]


def test_commonvoice_filters_votes_and_recordings_per_speaker(tmp_path):
    write_validated(tmp_path, VALIDATED)
    corpus = read_corpus("commonvoice", tmp_path)
    assert [(u.recording_id, u.speaker) for u in corpus.utterances] == [
        ("c1", "spk1"), ("c2", "spk1"), ("c3", "spk1"), ("c7", "spk3"), ("c8", "spk3")]
    first = corpus.utterances[0]
    assert (first.text, first.language, first.gender, first.path) == ('He said "hi".', "cy", "male_masculine", tmp_path / "clips" / "c1.mp3")
    capped = read_corpus("commonvoice", tmp_path, commonvoice=CommonVoiceFilters(max_recordings_per_speaker=2))
    assert Counter(u.speaker for u in capped.utterances) == {"spk1": 2, "spk3": 2}
    lenient = read_corpus("commonvoice", tmp_path, commonvoice=CommonVoiceFilters(1, 1, 1))
    assert len(lenient.utterances) == 8 and lenient.utterances[3].gender is None


@pytest.mark.parametrize("filters, option", [
    (CommonVoiceFilters(min_upvotes=9), "--min-upvotes 9"),
    (CommonVoiceFilters(min_upvotes=0, max_downvotes=0, min_recordings_per_speaker=9), "--min-recordings-per-speaker 9"),
])
def test_commonvoice_filter_leaving_nothing_names_it(tmp_path, filters, option):
    write_validated(tmp_path, VALIDATED)
    with pytest.raises(EmptySelectionError, match=option):
        read_corpus("commonvoice", tmp_path, commonvoice=filters)


def test_folder_speaker_is_first_component(tmp_path):
    touch(tmp_path, "alice/day1/a.wav", "alice/b.flac", "bob/x/y/z.mp3", "loose.wav", "bob/notes.txt")
    corpus = read_corpus("folder", tmp_path)
    assert [(u.recording_id, u.speaker) for u in corpus.utterances] == [
        ("alice/b.flac", "alice"), ("alice/day1/a.wav", "alice"), ("bob/x/y/z.mp3", "bob")]


@pytest.mark.parametrize("corpus, layout", [
    ("librispeech", "<speaker>/<chapter>"), ("voxceleb", "<id>/<video>/<utt>.wav"),
    ("folder", "<speaker>/"), ("commonvoice", "validated.tsv"),
])
def test_root_without_the_layout_names_it(tmp_path, corpus, layout):
    touch(tmp_path, "stray.wav")
    with pytest.raises(InputNotFoundError, match=layout):
        read_corpus(corpus, tmp_path)


def test_splits_are_deterministic_disjoint_and_near_the_fractions():
    speakers = [f"speaker{index}" for index in range(3000)]
    splits = [assign_split(speaker, 0.1, 0.2) for speaker in speakers]
    assert splits == [assign_split(speaker, 0.1, 0.2) for speaker in speakers]
    shares = {split: count / len(speakers) for split, count in Counter(splits).items()}
    assert shares["test"] == pytest.approx(0.2, abs=0.03) and shares["dev"] == pytest.approx(0.1, abs=0.03)
    assert {assign_split(speaker, 0.0, 0.0) for speaker in speakers} == {"train"}
    with pytest.raises(ValueError):
        assign_split("x", 0.6, 0.6)


def test_features_store_round_trip_reads_rows_lazily(tmp_path):
    rng = np.random.default_rng(0)
    features = [rng.normal(-5, 3, size=(frames, 40)).astype(np.float32) for frames in (120, 1, 300)]
    write_features(tmp_path / "f.zarr", ["a", "b", "c"], iter(features), {"vad": "energy"})
    store = read_features(tmp_path / "f.zarr")
    assert len(store) == 3 and store.segment_ids == ["a", "b", "c"] and store.attrs["vad"] == "energy"
    assert store.offsets.tolist() == [0, 120, 121, 421] and store._frames.dtype == np.float16
    for segment_id, expected in zip(store.segment_ids, features):
        got = store.get(segment_id)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=0.01)
    with pytest.raises(KeyError):
        store.get("absent")


def test_interrupted_writer_leaves_previous_store_and_no_temporary(tmp_path):
    write_features(tmp_path / "features.zarr", ["a"], [np.zeros((5, 40), np.float32)], {})
    with pytest.raises(RuntimeError):
        with FeatureWriter(tmp_path / "features.zarr") as writer:
            writer.add("b", np.ones((7, 40), np.float32))
            raise RuntimeError("interrupted")
    assert read_features(tmp_path).segment_ids == ["a"]
    assert [path.name for path in tmp_path.iterdir()] == ["features.zarr"]


def test_folder_follows_symlinked_speakers_and_files_and_ends_a_loop(tmp_path):
    store, root = tmp_path / "store", tmp_path / "corpus"
    touch(store, "carol/c1.wav", "carol/deep/c2.flac", "dave.wav")
    touch(root, "alice/a.wav")
    (root / "carol").symlink_to(store / "carol", target_is_directory=True)  # a linked speaker folder
    (root / "bob").mkdir()
    (root / "bob" / "b.wav").symlink_to(store / "dave.wav")  # a linked file
    (root / "alice" / "up").symlink_to(root, target_is_directory=True)  # a loop back to the root
    (root / "bob" / "gone.wav").symlink_to(tmp_path / "nowhere.wav")  # dangling: passed over
    corpus = read_corpus("folder", root)
    assert [(u.recording_id, u.speaker) for u in corpus.utterances] == [
        ("alice/a.wav", "alice"), ("bob/b.wav", "bob"), ("carol/c1.wav", "carol"), ("carol/deep/c2.flac", "carol")]
