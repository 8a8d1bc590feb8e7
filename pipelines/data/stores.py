"""Embeddings store: a zarr v3 group holding N x D float32 embeddings joined to item ids.

Layout: arrays `embeddings` (N, D) float32, `item_ids` (N,) strings, `valid` (N,) bool;
attrs: schema name/version, encoder id (name@weights hash), embedding size, the config used,
and a fingerprint of the inputs. Rows are joined by item id, never by position.
The store is written under a temporary name and renamed when complete, so an interrupted run
never leaves a store that looks finished, and an older store stays intact until replaced.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import swap_in_folder

STORE_SCHEMA = "embeddings"
STORE_VERSION = 1


@dataclass
class EmbeddingStore:
    """In-memory view of a store. `embeddings[i]` belongs to `item_ids[i]`."""

    item_ids: list[str]
    embeddings: np.ndarray
    valid: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        if not (len(self.item_ids) == len(self.embeddings) == len(self.valid)):
            raise ValueError("item_ids, embeddings and valid must have the same length")

    @property
    def encoder(self) -> str:
        return self.attrs.get("encoder", "unknown")

    def lookup(self) -> dict[str, int]:
        """item id -> row, over valid rows only."""
        return {item_id: row for row, item_id in enumerate(self.item_ids) if self.valid[row]}


def write_store(path: str | Path, store: EmbeddingStore) -> Path:
    """Write `store` to `path` (a `.zarr` folder) atomically, replacing any previous store."""
    import zarr

    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    group = zarr.open_group(str(temporary), mode="w")
    size = store.embeddings.shape[1] if store.embeddings.ndim == 2 else 0
    rows = max(1, len(store.item_ids))
    group.create_array("embeddings", data=store.embeddings.astype(np.float32).reshape(-1, size),
                       chunks=(min(rows, 8192), max(1, size)))
    ids = group.create_array("item_ids", shape=(len(store.item_ids),), dtype=str, chunks=(min(rows, 65536),))
    if store.item_ids:
        ids[:] = np.array(store.item_ids, dtype=str)
    group.create_array("valid", data=store.valid.astype(bool), chunks=(min(rows, 65536),))
    group.attrs.update({"schema": STORE_SCHEMA, "schema_version": STORE_VERSION, **store.attrs})
    swap_in_folder(temporary, path)
    return path


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
    return EmbeddingStore(item_ids, group["embeddings"][:], group["valid"][:], dict(group.attrs))


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
                          np.concatenate([part.valid for part in parts]), {**parts[0].attrs, "shards": total})


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

