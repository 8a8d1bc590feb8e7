"""`spk embed --format npy|kaldi` and Kaldi wav.scp input. The ark is read back by a parser written
here from Kaldi's binary format (not by the code that wrote it)."""

import json
import struct

import numpy as np
import soundfile
import synth

from helpers import spk
from speakembed.pipelines.data.stores import read_store

RATE = 16000


def read_ark(path):
    """key -> (offset of its `\\0B`, float32 vector) of a binary Kaldi archive of float vectors."""
    data, position, records = path.read_bytes(), 0, {}
    while position < len(data):
        space = data.index(b" ", position)
        key, position = data[position:space].decode(), space + 1
        assert data[position:position + 5] == b"\0BFV " and data[position + 5] == 4, "not a binary float vector"
        (size,) = struct.unpack("<i", data[position + 6:position + 10])
        records[key] = (position, np.frombuffer(data, dtype="<f4", count=size, offset=position + 10))
        position += 10 + 4 * size
    return records


def write_clips(root):
    (root / "in" / "A").mkdir(parents=True)
    soundfile.write(root / "in" / "A" / "take one.wav", synth.speaker_voice("A", 2.0, RATE, seed=1), RATE)
    soundfile.write(root / "in" / "A" / "take_two.wav", synth.speaker_voice("A", 2.0, RATE, seed=2), RATE)
    soundfile.write(root / "in" / "silent.wav", np.zeros(RATE, np.float32), RATE)
    return root / "in"


def test_npy_and_kaldi_exports_hold_the_stores_valid_rows(tmp_path):
    folder = write_clips(tmp_path)
    result = spk("embed", folder, "--out", tmp_path / "emb", "--vad", "energy", "--format", "npy", "--format", "kaldi",
                 "-q")
    assert result.exit_code == 0, result.output
    store = read_store(tmp_path / "emb")
    valid = {item_id: store.embeddings[row] for item_id, row in store.lookup().items()}
    assert sorted(valid) == ["A/take one.wav", "A/take_two.wav"]  # silent.wav failed

    ids = (tmp_path / "emb" / "ids.txt").read_text().splitlines()
    matrix = np.load(tmp_path / "emb" / "embeddings.npy")
    assert matrix.dtype == np.float32 and matrix.shape == (2, 256) and sorted(ids) == sorted(valid)
    for item_id, row in zip(ids, matrix):
        np.testing.assert_array_equal(row, valid[item_id])

    records = read_ark(tmp_path / "emb" / "xvector.ark")
    assert list(records) == ["A/take_one.wav", "A/take_two.wav"]  # whitespace -> _, sorted
    np.testing.assert_array_equal(records["A/take_one.wav"][1], valid["A/take one.wav"])
    scp = [line.split() for line in (tmp_path / "emb" / "xvector.scp").read_text().splitlines()]
    ark = (tmp_path / "emb" / "xvector.ark").absolute()
    assert scp == [[key, f"{ark}:{records[key][0]}"] for key in records]
    report = json.loads((tmp_path / "emb" / "report.json").read_text())
    assert report["exports"] == ["embeddings.npy", "ids.txt", "xvector.ark", "xvector.scp"]


def test_an_up_to_date_store_is_still_exported(tmp_path):
    folder = write_clips(tmp_path)
    assert spk("embed", folder, "--out", tmp_path / "emb", "--vad", "energy", "-q").exit_code == 0
    result = spk("embed", folder, "--out", tmp_path / "emb", "--vad", "energy", "--format", "kaldi", "-q")
    assert result.exit_code == 0 and "up to date" in result.output and "xvector.scp" in result.output
    assert len(read_ark(tmp_path / "emb" / "xvector.ark")) == 2


def test_kaldi_wav_scp_with_segments_as_input(tmp_path):
    voice = synth.speaker_voice("C", 4.0, RATE, seed=3)
    soundfile.write(tmp_path / "long.wav", voice, RATE)
    soundfile.write(tmp_path / "tail.wav", voice[int(1.5 * RATE):], RATE)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {tmp_path / 'long.wav'}\n")
    (data / "segments").write_text("utt-a rec1 0.0 1.5\nutt-b rec1 1.5 -1\n")
    result = spk("embed", data / "wav.scp", tmp_path / "tail.wav", "--out", tmp_path / "emb", "--vad", "none", "-q")
    assert result.exit_code == 0, result.output
    store = read_store(tmp_path / "emb")
    rows = store.lookup()
    tail = next(item_id for item_id in rows if item_id.endswith("tail.wav"))  # a single file's id is its path
    assert set(rows) == {"utt-a", "utt-b", tail}
    # utt-b is the recording from 1.5 s to its end: the same audio as tail.wav
    assert float(store.embeddings[rows["utt-b"]] @ store.embeddings[rows[tail]]) > 0.999
    assert float(store.embeddings[rows["utt-a"]] @ store.embeddings[rows[tail]]) < 0.999


def test_wav_scp_without_segments_and_what_it_refuses(tmp_path):
    soundfile.write(tmp_path / "a.wav", synth.speaker_voice("A", 2.0, RATE, seed=1), RATE)
    (tmp_path / "wav.scp").write_text("first a.wav\n")  # relative to the wav.scp's folder
    result = spk("embed", tmp_path / "wav.scp", "--out", tmp_path / "emb", "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    assert read_store(tmp_path / "emb").item_ids == ["first"]
    for content, words in (("rec sox in.sph -t wav - |\n", "is a command"), ("rec archive.ark:1234\n", "into an archive"),
                           ("lonely\n", "expected '<recording-id> <path>'")):
        (tmp_path / "bad.scp").write_text(content)
        refused = spk("embed", tmp_path / "bad.scp", "--out", tmp_path / "bad")
        assert refused.exit_code == 6, refused.output
        assert words in refused.output and refused.output.count("\n") == 1
    assert spk("embed", tmp_path / "none.scp", "--out", tmp_path / "bad").exit_code == 3
    assert spk("embed", tmp_path / "wav.scp", "--out", tmp_path / "bad", "--format", "hdf5").exit_code == 2
