"""The speaker database on disk: round trip, centroids, rename/remove, refusals, and atomic updates
(no encoder: embeddings are made up)."""

import json

import numpy as np
import pytest

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, OutputError, UsageError
from speakembed.pipelines.data import speaker_db
from speakembed.pipelines.data.speaker_db import (
    EncoderIdentity,
    EnrolledClip,
    check_speaker_name,
    is_database,
    new_database,
    open_database,
)
from speakembed.pipelines.data.stores import read_store

ENCODER = EncoderIdentity("toy@000000000000", "toy", None, 4, 0.7)


def clip(source: str, vector, speech_s: float = 2.0) -> EnrolledClip:
    vector = np.asarray(vector, dtype=np.float32)
    return EnrolledClip("", source, f"hash-of-{source}", speech_s, False, "2026-01-01T00:00:00+00:00",
                        vector / np.linalg.norm(vector))


@pytest.fixture
def saved(tmp_path):
    """A database of alice (two clips) and bob (one), saved to tmp_path/voices."""
    database = new_database(tmp_path / "voices", ENCODER)
    database = database.with_clips("alice", [clip("/a/one.wav", [1, 0, 0, 0]), clip("/b/one.wav", [1, 1, 0, 0])])
    database = database.with_clips("bob", [clip("/c/bob.flac", [0, 0, 1, 0])])
    database.save()
    return database


def test_round_trip_keeps_speakers_clips_embeddings_and_encoder(saved):
    opened = open_database(saved.path)
    assert opened.names == ["alice", "bob"]
    assert opened.encoder == ENCODER and opened.backend == "default"
    assert [item.clip_id for item in opened.speakers["alice"]] == ["alice/one.wav", "alice/one-2.wav"]
    np.testing.assert_allclose(opened.speakers["alice"][1].embedding, np.array([1, 1, 0, 0]) / np.sqrt(2), rtol=1e-6)
    manifest = json.loads((saved.path / "database.json").read_text())
    assert manifest["schema"] == "speaker-database" and manifest["encoder"] == "toy@000000000000"
    assert [entry["source"] for entry in manifest["speakers"][0]["clips"]] == ["/a/one.wav", "/b/one.wav"]


def test_centroid_is_the_unit_mean_of_a_speakers_clips_and_is_stored(saved):
    centroids = open_database(saved.path).centroids()
    expected = np.array([1 + 1 / np.sqrt(2), 1 / np.sqrt(2), 0, 0])
    np.testing.assert_allclose(centroids[0], expected / np.linalg.norm(expected), rtol=1e-6)
    np.testing.assert_allclose(centroids[1], [0, 0, 1, 0])
    stored = read_store(saved.path / "centroids.zarr")
    assert stored.item_ids == ["alice", "bob"] and stored.encoder == ENCODER.encoder_id
    np.testing.assert_allclose(stored.embeddings, centroids, rtol=1e-6)
    assert read_store(saved.path / "clips.zarr").item_ids == ["alice/one.wav", "alice/one-2.wav", "bob/bob.flac"]


def test_rename_keeps_the_order_and_renames_clip_ids(saved):
    saved.renamed("alice", "Alice Liddell").save()
    opened = open_database(saved.path)
    assert opened.names == ["Alice Liddell", "bob"]
    assert opened.speakers["Alice Liddell"][0].clip_id == "Alice Liddell/one.wav"
    with pytest.raises(UsageError, match="'bob' is already enrolled"):
        opened.renamed("Alice Liddell", "bob")


def test_remove_and_unknown_names(saved):
    opened = saved.without("alice")
    assert opened.names == ["bob"]
    opened.save()
    assert open_database(saved.path).names == ["bob"]
    with pytest.raises(UsageError, match="'carol' is not enrolled \\(enrolled: bob\\)"):
        open_database(saved.path).without("carol")
    emptied = open_database(saved.path).without("bob")
    emptied.save()
    assert open_database(saved.path).names == [] and open_database(saved.path).centroids().shape == (0, 4)


@pytest.mark.parametrize("name", ["", "   ", "unknown", "unknown_2", "a/b"])
def test_names_that_cannot_be_enrolled(name):
    with pytest.raises(UsageError, match="cannot be a speaker name"):
        check_speaker_name(name)


def test_refuses_folders_that_are_not_databases(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such speaker database"):
        open_database(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    assert not is_database(tmp_path / "other")
    with pytest.raises(ManifestError, match="not a speaker database"):
        open_database(tmp_path / "other")
    with pytest.raises(ManifestError, match="not empty"):
        new_database(tmp_path / "other", ENCODER)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ManifestError, match="is a file"):
        new_database(tmp_path / "file", ENCODER)


def test_refuses_other_versions_and_damaged_databases(saved):
    manifest_path = saved.path / "database.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "schema_version": 99}))
    with pytest.raises(ManifestError, match="version 99 is not supported"):
        open_database(saved.path)
    manifest_path.write_text(json.dumps({**manifest, "encoder": "other@123456789012"}))
    with pytest.raises(ManifestError, match="damaged"):
        open_database(saved.path)
    manifest["speakers"][0]["clips"][0]["clip_id"] = "alice/gone.wav"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="alice/gone.wav"):
        open_database(saved.path)


def test_refuses_embeddings_of_another_encoder(saved):
    saved.require_encoder(ENCODER.encoder_id)
    with pytest.raises(ManifestError, match="made with toy@000000000000, not lstm@39373b86598f; use --encoder toy"):
        saved.require_encoder("lstm@39373b86598f")


def test_a_failed_update_leaves_the_database_as_it_was(saved, monkeypatch):
    before = {path.relative_to(saved.path): path.read_bytes() for path in saved.path.rglob("*") if path.is_file()}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(speaker_db, "write_text_atomically", fail)  # the manifest is written last
    with pytest.raises(OutputError, match="No space left"):
        saved.with_clips("carol", [clip("/d/carol.wav", [0, 0, 0, 1])]).save()
    after = {path.relative_to(saved.path): path.read_bytes() for path in saved.path.rglob("*") if path.is_file()}
    assert after == before
    assert [path.name for path in saved.path.parent.iterdir()] == ["voices"], "temporary folder left behind"
    assert open_database(saved.path).names == ["alice", "bob"]
