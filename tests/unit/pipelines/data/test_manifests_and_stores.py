import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.data.manifests import SCHEMA_KEY, VERSION_KEY, read_table, write_table
from speakembed.pipelines.data.stores import EmbeddingStore, read_store, write_store
from speakembed.pipelines.data.trials import read_trials


def failures_table():
    return pd.DataFrame({"item_id": ["a.wav"], "stage": ["audio"], "reason": ["silent"], "detail": ["a.wav: silent"]})


def test_manifest_round_trip_keeps_schema_stamp(tmp_path):
    path = write_table(failures_table(), tmp_path / "failures.parquet", "failures")
    metadata = pq.read_schema(path).metadata
    assert metadata[SCHEMA_KEY] == b"failures" and metadata[VERSION_KEY] == b"1"
    assert read_table(path, "failures")["reason"].tolist() == ["silent"]
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_reader_rejects_other_schema_unknown_version_and_unstamped_files(tmp_path):
    path = write_table(failures_table(), tmp_path / "failures.parquet", "failures")
    with pytest.raises(ManifestError, match="expected a 'segments' manifest"):
        read_table(path, "segments")
    arrow = pq.read_table(path)
    pq.write_table(arrow.replace_schema_metadata({SCHEMA_KEY: b"failures", VERSION_KEY: b"99"}), tmp_path / "v99.parquet")
    with pytest.raises(ManifestError, match="version 99 is not supported"):
        read_table(tmp_path / "v99.parquet", "failures")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(ManifestError, match="without a speakembed schema stamp"):
        read_table(tmp_path / "plain.parquet", "failures")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="not a readable parquet"):
        read_table(tmp_path / "junk.parquet", "failures")
    with pytest.raises(InputNotFoundError):
        read_table(tmp_path / "absent.parquet", "failures")


def test_store_round_trip_joins_rows_by_id(tmp_path):
    embeddings = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    store = EmbeddingStore(["b/é.wav", "a.wav", "c.wav"], embeddings, np.array([True, False, True]), {"encoder": "lstm@x"})
    write_store(tmp_path / "embeddings.zarr", store)
    loaded = read_store(tmp_path)  # the folder that holds embeddings.zarr is accepted too
    assert loaded.item_ids == store.item_ids and loaded.encoder == "lstm@x"
    np.testing.assert_array_equal(loaded.embeddings, embeddings)
    assert loaded.lookup() == {"b/é.wav": 0, "c.wav": 2}


def test_rewriting_a_store_replaces_it_whole(tmp_path):
    first = EmbeddingStore(["a"], np.ones((1, 4), np.float32), np.array([True]))
    second = EmbeddingStore(["x", "y"], np.zeros((2, 4), np.float32), np.array([True, True]))
    write_store(tmp_path / "s.zarr", first)
    write_store(tmp_path / "s.zarr", second)
    assert read_store(tmp_path / "s.zarr").item_ids == ["x", "y"]
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


def test_store_reader_rejects_foreign_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError):
        read_store(tmp_path / "empty")
    with pytest.raises(InputNotFoundError):
        read_store(tmp_path / "absent")


@pytest.mark.parametrize(
    "text",
    [
        "a.wav b.wav target\na.wav c.wav nontarget\n",
        "1 a.wav b.wav\n0 a.wav c.wav\n",
        "enroll\ttest\tlabel\na.wav\tb.wav\t1\na.wav\tc.wav\t0\n",
    ],
    ids=["kaldi", "voxceleb", "tsv-with-header"],
)
def test_trial_formats(tmp_path, text):
    path = tmp_path / "trials.txt"
    path.write_text(text)
    trials = read_trials(path)
    assert trials[["enroll", "test"]].values.tolist() == [["a.wav", "b.wav"], ["a.wav", "c.wav"]]
    assert trials["label"].tolist() == [1, 0]


def test_unlabelled_kaldi_trials_and_bad_lines(tmp_path):
    path = tmp_path / "trials.txt"
    path.write_text("a.wav b.wav\n")
    assert read_trials(path)["label"].isna().all()
    path.write_text("a.wav b.wav maybe\n")
    with pytest.raises(ManifestError, match="line 1"):
        read_trials(path)
    path.write_text("\n\n")
    with pytest.raises(ManifestError, match="empty"):
        read_trials(path)


def test_store_keeps_vad_fallback_flags_and_old_stores_read_as_all_false(tmp_path):
    flags = np.array([False, True, False])
    store = EmbeddingStore(["a", "b", "c"], np.eye(3, 4, dtype=np.float32), np.ones(3, bool), {}, flags)
    write_store(tmp_path / "new.zarr", store)
    np.testing.assert_array_equal(read_store(tmp_path / "new.zarr").vad_fallback, flags)
    write_store(tmp_path / "old.zarr", store)
    shutil.rmtree(tmp_path / "old.zarr" / "vad_fallback")  # as written before the flag existed
    old = read_store(tmp_path / "old.zarr")
    assert old.vad_fallback.dtype == bool and not old.vad_fallback.any() and old.item_ids == ["a", "b", "c"]


def test_chunked_writer_resumes_from_its_complete_chunks(tmp_path):
    from speakembed.pipelines.data.stores import ChunkedStoreWriter

    ids = [f"item{i}" for i in range(5)]
    vectors = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    writer = ChunkedStoreWriter.create(tmp_path / ".s.partial", ids, 3, {"fingerprint": "f1"})
    writer.write_chunk(0, vectors[:2], np.ones(2, bool), np.zeros(2, bool), {"n": 2})
    writer.write_chunk(4, vectors[4:], np.ones(1, bool), np.zeros(1, bool), {"n": 1})  # after a gap: not complete
    assert ChunkedStoreWriter.resume(tmp_path / ".s.partial", lambda attrs: attrs["fingerprint"] == "f2") is None
    resumed = ChunkedStoreWriter.resume(tmp_path / ".s.partial", lambda attrs: attrs["fingerprint"] == "f1")
    assert [(record["first"], record["rows"], record["note"]) for record in resumed.completed_chunks()] == [(0, 2, {"n": 2})]
    resumed.write_chunk(2, vectors[2:], np.ones(3, bool), np.array([False, True, False]), {"n": 3})
    resumed.finish(tmp_path / "s.zarr", {"num_embedded": 5})
    store = read_store(tmp_path / "s.zarr")
    assert store.item_ids == ids and store.attrs["num_embedded"] == 5 and store.attrs["fingerprint"] == "f1"
    np.testing.assert_array_equal(store.embeddings, vectors)
    assert store.vad_fallback.tolist() == [False, False, False, True, False]
    assert not (tmp_path / ".s.partial").exists() and not (tmp_path / "s.zarr" / ".resume").exists()
