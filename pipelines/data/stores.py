"""Embeddings store: a zarr v3 group holding N x D float32 embeddings joined to item ids.

Layout: arrays `embeddings` (N, D) float32, `item_ids` (N,) strings, `valid` (N,) bool (False:
the item failed, see failures.parquet; its row is zeros), `vad_fallback` (N,) bool (True: the
VAD kept too little of the clip, so it was embedded from its energy-trimmed or whole signal; see
pipelines/audio/speech.py; stores written before this array existed read as all False);
attrs: schema name/version, encoder id (name@weights hash, which covers a checkpoint), embedding
size, the config used, and a fingerprint of the inputs, config and encoder.
Rows are joined by item id, never by position.

A store is written under a temporary name and swapped in when complete, so an interrupted run
never leaves a store that looks finished, and an older store stays intact until replaced.
`ChunkedStoreWriter` fills the temporary store a chunk of rows at a time (memory stays bounded
by one chunk) and records each finished chunk in its `.resume/` folder, so that a killed run
can be resumed from its last complete chunk (`ChunkedStoreWriter.resume`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import swap_in_folder, write_text_atomically

STORE_SCHEMA = "embeddings"
STORE_VERSION = 1  # `vad_fallback` is optional (absent = all False), so old stores stay readable
STORE_CHUNK_ROWS = 8192  # rows per zarr chunk of `embeddings`
FLAG_CHUNK_ROWS = 65536  # rows per zarr chunk of `item_ids`, `valid`, `vad_fallback`
RESUME_FOLDER = ".resume"  # chunk records of a store being written; removed before it is swapped in


@dataclass
class EmbeddingStore:
    """In-memory view of a store. `embeddings[i]` belongs to `item_ids[i]`; `vad_fallback`
    defaults to all False."""

    item_ids: list[str]
    embeddings: np.ndarray
    valid: np.ndarray
    attrs: dict = field(default_factory=dict)
    vad_fallback: np.ndarray | None = None

    def __post_init__(self):
        if self.vad_fallback is None:
            self.vad_fallback = np.zeros(len(self.valid), dtype=bool)
        if not (len(self.item_ids) == len(self.embeddings) == len(self.valid) == len(self.vad_fallback)):
            raise ValueError("item_ids, embeddings, valid and vad_fallback must have the same length")

    @property
    def encoder(self) -> str:
        """The encoder id (`name@weights-hash`) that made the embeddings."""
        return self.attrs.get("encoder", "unknown")

    def lookup(self) -> dict[str, int]:
        """item id -> row, over valid rows only."""
        return {item_id: row for row, item_id in enumerate(self.item_ids) if self.valid[row]}


def write_store(path: str | Path, store: EmbeddingStore) -> Path:
    """Write `store` to `path` (a `.zarr` folder) atomically, replacing any previous store."""
    path = Path(path)
    size = store.embeddings.shape[1] if store.embeddings.ndim == 2 else 0
    writer = ChunkedStoreWriter.create(path.with_name(f".{path.name}.tmp-{os.getpid()}"), store.item_ids, size, store.attrs)
    try:
        writer.write_chunk(0, store.embeddings.reshape(-1, size), store.valid, store.vad_fallback)
        return writer.finish(path)
    finally:
        shutil.rmtree(writer.path, ignore_errors=True)


class ChunkedStoreWriter:
    """A store under construction in the folder `path`, filled a chunk of rows at a time.

    The arrays are created at their full size up front (zarr keeps only the chunks written, so
    that costs neither memory nor disk). `write_chunk` writes rows [first, first + rows) and then,
    atomically, a record `.resume/<first>.json` that marks them complete and carries the caller's
    `note` (failures, counts). `finish` swaps the folder in for the finished store.
    """

    def __init__(self, path: Path, group):
        self.path = path
        self.group = group

    @classmethod
    def create(cls, path: str | Path, item_ids: list[str], embedding_size: int, attrs: dict) -> "ChunkedStoreWriter":
        """Start an empty store of `len(item_ids)` rows of `embedding_size` at `path` (replaced if present)."""
        import zarr

        path = Path(path)
        shutil.rmtree(path, ignore_errors=True)
        group = zarr.open_group(str(path), mode="w")
        rows = len(item_ids)
        group.create_array("embeddings", shape=(rows, embedding_size), dtype="float32",
                           chunks=(max(1, min(rows, STORE_CHUNK_ROWS)), max(1, embedding_size)))
        flag_chunks = (max(1, min(rows, FLAG_CHUNK_ROWS)),)
        ids = group.create_array("item_ids", shape=(rows,), dtype=str, chunks=flag_chunks)
        if item_ids:
            ids[:] = np.array(item_ids, dtype=str)
        for name in ("valid", "vad_fallback"):
            group.create_array(name, shape=(rows,), dtype=bool, chunks=flag_chunks)
        group.attrs.update({"schema": STORE_SCHEMA, "schema_version": STORE_VERSION, **attrs})
        (path / RESUME_FOLDER).mkdir()
        return cls(path, group)

    @classmethod
    def resume(cls, path: str | Path, matches) -> "ChunkedStoreWriter | None":
        """Reopen the unfinished store at `path` if there is one and `matches(attrs)` says it was
        started with the same inputs and config; else None (the caller starts afresh)."""
        import zarr

        path = Path(path)
        attrs = read_store_attrs(path)
        if not attrs or not (path / RESUME_FOLDER).is_dir() or not matches(attrs):
            return None
        return cls(path, zarr.open_group(str(path), mode="r+"))

    def completed_chunks(self) -> list[dict]:
        """Records {"first", "rows", "note"} of the chunks written so far, in row order, up to the
        first gap (rows after a gap are written again)."""
        records = sorted((json.loads(record.read_text()) for record in (self.path / RESUME_FOLDER).glob("*.json")),
                         key=lambda record: record["first"])
        complete, next_row = [], 0
        for record in records:
            if record["first"] != next_row:
                break
            complete.append(record)
            next_row += record["rows"]
        return complete

    def write_chunk(self, first: int, embeddings: np.ndarray, valid: np.ndarray, vad_fallback: np.ndarray,
                    note: dict | None = None) -> None:
        """Write rows [first, first + len(valid)): embeddings (rows, D) float32, valid and
        vad_fallback (rows,) bool; then record the chunk as complete with the JSON-able `note`."""
        last = first + len(valid)
        self.group["embeddings"][first:last] = np.asarray(embeddings, dtype=np.float32)
        self.group["valid"][first:last] = np.asarray(valid, dtype=bool)
        self.group["vad_fallback"][first:last] = np.asarray(vad_fallback, dtype=bool)
        record = {"first": first, "rows": len(valid), "note": note or {}}
        write_text_atomically(self.path / RESUME_FOLDER / f"{first:012d}.json", json.dumps(record))

    def finish(self, target: str | Path, attrs: dict | None = None) -> Path:
        """Add `attrs`, drop the chunk records and swap the store in for `target`; returns `target`."""
        self.group.attrs.update(attrs or {})
        shutil.rmtree(self.path / RESUME_FOLDER, ignore_errors=True)
        swap_in_folder(self.path, Path(target))
        return Path(target)


def read_store(path: str | Path) -> EmbeddingStore:
    """Open a store written by `write_store`, or the output folder of `spk embed`: its
    embeddings.zarr, or all N parts `embeddings.shard-K-of-N.zarr` of a sharded run, combined."""
    path = Path(path)
    shards = sorted(path.glob("embeddings.shard-*-of-*.zarr")) if path.is_dir() and not (path / "embeddings.zarr").is_dir() else []
    if shards:
        return _combine(path, shards)
    return _read_one(resolve_store_path(path))


def _read_one(path: Path) -> EmbeddingStore:
    group = open_stamped_group(path, STORE_SCHEMA, STORE_VERSION, "embeddings store", "spk embed")
    item_ids = [str(item_id) for item_id in group["item_ids"][:]]
    vad_fallback = group["vad_fallback"][:] if "vad_fallback" in group else None
    return EmbeddingStore(item_ids, group["embeddings"][:], group["valid"][:], dict(group.attrs), vad_fallback)


def open_stamped_group(path: Path, schema: str, version: int, what: str, maker: str):
    """Open the zarr group at `path` for reading after checking its schema name and version
    (attrs `schema`, `schema_version`); ManifestError names the `maker` command to re-create it."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception as error:
        raise ManifestError(f"{path}: not a readable {what} ({error})") from None
    if attrs.get("schema") != schema:
        raise ManifestError(f"{path}: not a speakembed {what}; create one with `{maker}`")
    if attrs.get("schema_version") != version:
        raise ManifestError(
            f"{path}: {what} version {attrs.get('schema_version')} is not supported "
            f"(this spk reads version {version}); re-create it with `{maker}`"
        )
    return group


def _combine(folder: Path, shard_paths: list[Path]) -> EmbeddingStore:
    """The parts of a sharded run as one store; refuses incomplete or mismatched parts."""
    counts = {int(path.name.split("-of-")[1].split(".")[0]) for path in shard_paths}
    if len(counts) != 1:
        raise ManifestError(f"{folder}: holds parts of sharded runs with different N ({sorted(counts)}); keep one run per folder")
    total = counts.pop()
    present = {int(path.name.split("shard-")[1].split("-of-")[0]) for path in shard_paths}
    missing = sorted(set(range(1, total + 1)) - present)
    if missing:
        raise ManifestError(f"{folder}: parts {missing} of {total} are missing; run `spk embed --shard K/{total}` for them")
    parts = [_read_one(path) for path in shard_paths]
    encoders = {part.encoder for part in parts}
    if len(encoders) != 1:
        raise ManifestError(f"{folder}: parts were embedded with different encoders {sorted(encoders)}")
    return EmbeddingStore([item for part in parts for item in part.item_ids],
                          np.concatenate([part.embeddings for part in parts]),
                          np.concatenate([part.valid for part in parts]), {**parts[0].attrs, "shards": total},
                          np.concatenate([part.vad_fallback for part in parts]))


def resolve_store_path(path: str | Path) -> Path:
    """Accept the store itself or the output folder of `spk embed` that contains it."""
    path = Path(path)
    if (path / "embeddings.zarr").is_dir():
        path = path / "embeddings.zarr"
    if not path.is_dir():
        raise InputNotFoundError(f"{path}: no such embeddings store; create one with `spk embed ... --out DIR`")
    return path


def read_store_attrs(path: Path) -> dict | None:
    """The attrs of an existing store at `path`, or None if there is none (or it is unreadable)."""
    import zarr

    try:
        return dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:
        return None

