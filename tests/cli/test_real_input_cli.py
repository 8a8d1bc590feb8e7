"""Real-world input through the real commands: awkward file names, symlinked folders, missing,
empty and corrupt files, and an --out that cannot be a folder. Each case checks the exit code of
the README's table and that no traceback reaches the user."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from helpers import spk

from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.data.stores import EmbeddingStore, read_store, write_store

ODD_NAMES = ("two words.wav", "Réunion 3 ü.wav", "take[1].wav", "it's \"quoted\".wav")
CORRUPT_WAV = b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00" + bytes(range(256)) * 8  # the fmt chunk is cut off


def assert_exit(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_verify_accepts_odd_file_names(make_wav):
    paths = [make_wav(f"odd/{name}", speaker="A") for name in ODD_NAMES]
    for first, second in itertools.pairwise(paths):
        result = spk("verify", first, second, "--vad", "energy", "--json")
        assert result.exit_code == 0, result.output
        assert -1 <= json.loads(result.stdout)["score"] <= 1


def test_embed_keeps_odd_file_names_as_item_ids(make_wav, tmp_path):
    for name in ODD_NAMES:
        make_wav(f"odd/spk A/{name}", speaker="A")
    result = spk("embed", tmp_path / "odd", "--out", tmp_path / "emb", "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    store = read_store(tmp_path / "emb")
    assert sorted(store.item_ids) == sorted(f"spk A/{name}" for name in ODD_NAMES) and store.valid.all()


def test_embed_follows_a_symlinked_speaker_folder_and_survives_a_loop(make_wav, tmp_path):
    make_wav("data/A/a1.wav", speaker="A")
    make_wav("elsewhere/B/b1.wav", speaker="B")
    make_wav("elsewhere/loose.wav", speaker="C")
    (tmp_path / "data" / "B").symlink_to(tmp_path / "elsewhere" / "B", target_is_directory=True)
    (tmp_path / "data" / "A" / "c1.wav").symlink_to(tmp_path / "elsewhere" / "loose.wav")
    (tmp_path / "data" / "A" / "parent").symlink_to(tmp_path / "data", target_is_directory=True)  # a loop
    result = spk("embed", tmp_path / "data", "--out", tmp_path / "emb", "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    assert sorted(read_store(tmp_path / "emb").item_ids) == ["A/a1.wav", "A/c1.wav", "B/b1.wav"]


@pytest.mark.parametrize("make_input, code, message", [
    (lambda tmp: tmp / "absent.wav", 3, "no such file"),
    (lambda tmp: _write(tmp / "zero bytes.wav", b""), 5, "empty (0 bytes)"),
    (lambda tmp: _write(tmp / "corrupt[1].wav", CORRUPT_WAV), 4, "cannot decode"),
], ids=["missing", "zero-bytes", "corrupt"])
def test_verify_bad_file_exit_code(make_wav, tmp_path, make_input, code, message):
    good = make_wav("good.wav", speaker="A")
    bad = make_input(tmp_path)
    assert_exit(spk("verify", bad, good, "--vad", "energy"), code, message)
    assert bad.name in spk("verify", good, bad, "--vad", "energy").output


def test_embed_records_zero_byte_and_corrupt_files_and_refuses_them_alone(make_wav, tmp_path):
    make_wav("mixed/good.wav", speaker="A")
    _write(tmp_path / "mixed" / "zero bytes.wav", b"")
    _write(tmp_path / "mixed" / "corrupt.wav", CORRUPT_WAV)
    result = spk("embed", tmp_path / "mixed", "--out", tmp_path / "emb", "--vad", "energy", "-q")
    assert result.exit_code == 0, result.output
    failures = read_table(tmp_path / "emb" / "failures.parquet", "failures").set_index("item_id")["reason"].to_dict()
    assert failures == {"zero bytes.wav": "empty", "corrupt.wav": "unreadable"}
    assert_exit(spk("embed", tmp_path / "absent.wav", "--out", tmp_path / "o1"), 3, "no such file")
    assert_exit(spk("embed", tmp_path / "mixed" / "zero bytes.wav", "--out", tmp_path / "o2", "--vad", "energy"), 5,
                "not embedded")


def test_evaluate_verification_out_under_a_file_exits_8(tmp_path):
    ids = [f"{speaker}/{speaker}{index}.wav" for speaker in "AB" for index in range(3)]
    vectors = np.eye(len(ids), 8, dtype=np.float32)
    write_store(tmp_path / "emb" / "embeddings.zarr",
                EmbeddingStore(ids, vectors, np.ones(len(ids), bool), {"encoder": "synthetic@0"}))
    (tmp_path / "trials.txt").write_text("A/A0 A/A1 target\nA/A0 B/B0 nontarget\n")
    (tmp_path / "a_file").write_text("not a folder")
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "report"):
        result = spk("evaluate", "verification", "--embeddings", tmp_path / "emb", "--trials", tmp_path / "trials.txt",
                     "--out", out)
        assert_exit(result, 8, str(tmp_path / "a_file"))
    assert (tmp_path / "a_file").read_text() == "not a folder"


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_zero_byte_fixture_is_distinct_from_the_frameless_one(bad_audio, tmp_path):
    """The shared fixture's `empty` is a header without frames; both kinds are reason 'empty' (exit 5)."""
    zero = _write(tmp_path / "zero.wav", b"")
    for path in (zero, bad_audio["empty"]):
        assert_exit(spk("verify", path, bad_audio["clipped"], "--vad", "energy"), 5, path.name)
