"""Embeddings in the formats other tools read, written beside a finished store (`spk embed --format`).

    npy     OUT/embeddings.npy (N x D float32, numpy's own format) and OUT/ids.txt (the N item ids,
            one per line, in row order): `np.load` and a list of lines
    kaldi   OUT/xvector.ark + OUT/xvector.scp (binary float vectors; see data/kaldi.py), what
            Kaldi's and WeSpeaker's back-ends (PLDA, scoring) and kaldiio read
    zarr    nothing more: the store itself (OUT/embeddings.zarr) is always written
Only valid rows are exported (items that failed are in failures.parquet). A sharded run's part
gets its suffix: `embeddings.shard-1-of-4.npy`, `xvector.shard-1-of-4.ark`, ...
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import UsageError
from speakembed.pipelines.base.outputs import write_bytes_atomically, write_text_atomically
from speakembed.pipelines.data.kaldi import kaldi_keys, write_vectors
from speakembed.pipelines.data.stores import EmbeddingStore

EXPORT_FORMATS = ("zarr", "npy", "kaldi")


def check_format(name: str) -> str:
    """`name` if it is one of EXPORT_FORMATS, else UsageError."""
    if name not in EXPORT_FORMATS:
        raise UsageError(f"--format {name}: choose one of {', '.join(EXPORT_FORMATS)}")
    return name


def export_store(store: EmbeddingStore, out_dir: str | Path, name: str, suffix: str = "") -> list[Path]:
    """Write the valid rows of `store` in format `name` into `out_dir`; returns the files written."""
    check_format(name)
    out_dir = Path(out_dir)
    rows = np.flatnonzero(store.valid)
    ids = [store.item_ids[row] for row in rows]
    embeddings = np.asarray(store.embeddings[rows], dtype=np.float32)
    if name == "npy":
        return [_write_npy(out_dir / f"embeddings{suffix}.npy", embeddings),
                write_text_atomically(out_dir / f"ids{suffix}.txt", "".join(f"{item_id}\n" for item_id in ids))]
    if name == "kaldi":
        keys = kaldi_keys(ids)
        return list(write_vectors(out_dir / f"xvector{suffix}.ark", out_dir / f"xvector{suffix}.scp",
                                  {keys[item_id]: vector for item_id, vector in zip(ids, embeddings)}))
    return []


def _write_npy(path: Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return write_bytes_atomically(path, buffer.getvalue())
