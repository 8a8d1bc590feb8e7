"""Features store: a zarr v3 group holding the log-mel frames of many segments, end to end.

Layout:
    frames       (total_frames, n_mels) float16: every segment's frames, one after the other.
                 float16 halves the disk and the read bandwidth of float32; its ~3 significant
                 digits (relative step 2**-11) are far finer than log-mel needs (a log-mel value
                 is a natural log of power, in about [-14, 10]: the rounding error stays below
                 0.01, well under the frame-to-frame variation of speech).
    offsets      (N + 1,) int64: segment i owns frames[offsets[i]:offsets[i + 1]].
    segment_ids  (N,) strings.
    attrs        schema "features", schema_version 1, plus what the writer adds (frontend:
                 MelConfig.to_dict(), vad method, sample_rate, fingerprint, ...).

The store is built under a temporary name and renamed into place when complete (as the
embeddings store), so an interrupted run never leaves a store that looks finished.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError
from speakembed.pipelines.base.outputs import swap_in_folder
from speakembed.pipelines.data.stores import open_stamped_group

FEATURES_SCHEMA = "features"
FEATURES_VERSION = 1
FRAME_CHUNK = 8192  # frames per chunk: 82 s of 10 ms frames, 640 KiB at 40 float16 mels
ID_CHUNK = 65536


class FeatureWriter:
    """Append segments' features one at a time to a new store at `path`, then `finish(attrs)`.

    `n_mels` None takes it from the first segment added. Use as a context manager: leaving the
    block without `finish` (an error, an interrupt) removes the partial store and leaves any
    previous store at `path` untouched. Frames are flushed to disk a chunk at a time, so memory
    stays bounded whatever the corpus size.
    """

    def __init__(self, path: str | Path, n_mels: int | None = None):
        self.path = Path(path)
        self.n_mels = n_mels  # None: taken from the first segment added
        self.temporary = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.segment_ids: list[str] = []
        self._seen: set[str] = set()
        self.offsets = [0]
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0
        self._frames = None
        self._group = None

    def __enter__(self) -> "FeatureWriter":
        import zarr

        shutil.rmtree(self.temporary, ignore_errors=True)
        self._group = zarr.open_group(str(self.temporary), mode="w")
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)  # gone already after a successful finish

    def add(self, segment_id: str, features: np.ndarray) -> None:
        """Append `features` (frames, n_mels) of `segment_id`."""
        if self.n_mels is None and features.ndim == 2:
            self.n_mels = features.shape[1]
        if features.ndim != 2 or features.shape[1] != self.n_mels:
            raise ValueError(f"{segment_id}: features of shape {features.shape}, expected (frames, {self.n_mels})")
        if segment_id in self._seen:
            raise ValueError(f"{segment_id}: segment ids must be unique in a features store")
        self._seen.add(segment_id)
        self.segment_ids.append(segment_id)
        self.offsets.append(self.offsets[-1] + len(features))
        self._pending.append(features.astype(np.float16))
        self._pending_frames += len(features)
        if self._pending_frames >= FRAME_CHUNK:
            self._flush()

    def finish(self, attrs: dict) -> Path:
        """Write ids, offsets and `attrs`, and move the store into place; returns its path."""
        self._flush()
        rows = max(1, len(self.segment_ids))
        ids = self._group.create_array("segment_ids", shape=(len(self.segment_ids),), dtype=str,
                                       chunks=(min(rows, ID_CHUNK),))
        if self.segment_ids:
            ids[:] = np.array(self.segment_ids, dtype=str)
        self._group.create_array("offsets", data=np.asarray(self.offsets, dtype=np.int64),
                                 chunks=(min(rows + 1, ID_CHUNK),))
        self._group.attrs.update({**attrs, "schema": FEATURES_SCHEMA, "schema_version": FEATURES_VERSION,
                                  "n_mels": self.n_mels or 0, "num_segments": len(self.segment_ids),
                                  "num_frames": int(self.offsets[-1])})
        swap_in_folder(self.temporary, self.path)
        return self.path

    def _flush(self) -> None:
        if self._frames is None:
            self._frames = self._group.create_array("frames", shape=(0, self.n_mels or 0), dtype=np.float16,
                                                    chunks=(FRAME_CHUNK, max(1, self.n_mels or 0)))
        if self._pending:
            self._frames.append(np.concatenate(self._pending), axis=0)
            self._pending, self._pending_frames = [], 0


def write_features(path: str | Path, segment_ids: list[str], feature_list: Iterable[np.ndarray],
                   attrs: dict) -> Path:
    """Write one (frames, n_mels) array per segment id to a store at `path`, atomically.

    `feature_list` may be a generator, so features need not all be in memory at once.
    """
    with FeatureWriter(path) as writer:
        for segment_id, features in zip(segment_ids, feature_list, strict=True):
            writer.add(segment_id, features)
        return writer.finish(attrs)


class FeatureStore:
    """Read view of a features store. Frames are read from disk per segment, on demand."""

    def __init__(self, path: Path, group):
        self.path = path
        self.attrs = dict(group.attrs)
        self.segment_ids = [str(segment_id) for segment_id in group["segment_ids"][:]]
        self.offsets = np.asarray(group["offsets"][:], dtype=np.int64)
        self._frames = group["frames"]
        self._rows = {segment_id: row for row, segment_id in enumerate(self.segment_ids)}

    def __len__(self) -> int:
        return len(self.segment_ids)

    def __contains__(self, segment_id: str) -> bool:
        return segment_id in self._rows

    @property
    def n_mels(self) -> int:
        """Feature bands per frame (the frontend's n_mels)."""
        return int(self._frames.shape[1])

    def num_frames(self, segment_id: str) -> int:
        """Number of 10 ms frames of `segment_id`."""
        row = self._row(segment_id)
        return int(self.offsets[row + 1] - self.offsets[row])

    def load_into_memory(self) -> "FeatureStore":
        """Read every frame into memory once (float16, as stored), so that `get` no longer
        decompresses a whole chunk per segment: what training's random access needs (4 h of
        40-band frames take ~120 MB, of speech blocks ~0.5 GB). Returns self."""
        self._frames = np.asarray(self._frames[:])
        return self

    def get(self, segment_id: str) -> np.ndarray:
        """The frames of `segment_id`, float32 (frames, n_mels); reads only their chunks."""
        row = self._row(segment_id)
        return np.asarray(self._frames[self.offsets[row]:self.offsets[row + 1]], dtype=np.float32)

    def _row(self, segment_id: str) -> int:
        if segment_id not in self._rows:
            raise KeyError(f"{segment_id}: not in the features store {self.path}")
        return self._rows[segment_id]


def read_features(path: str | Path) -> FeatureStore:
    """Open a store written by `write_features` / `FeatureWriter` (or the folder holding `features.zarr`)."""
    path = Path(path)
    if (path / "features.zarr").is_dir():
        path = path / "features.zarr"
    if not path.is_dir():
        raise InputNotFoundError(f"{path}: no such features store; create one with `spk preprocess ... --out DIR`")
    group = open_stamped_group(path, FEATURES_SCHEMA, FEATURES_VERSION, "features store", "spk preprocess")
    return FeatureStore(path, group)
