"""Helpers shared by test modules: the CLI through Typer's CliRunner, a synthetic features corpus
for the trainers, and a training run killed part way then resumed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from speakembed.main import app
from speakembed.pipelines.data.features import write_features
from speakembed.pipelines.data.manifests import write_table

REPOSITORY = Path(__file__).resolve().parents[1]  # the repository root
runner = CliRunner()


def spk(*args):
    """Run `spk ARGS...` in-process (arguments are str()-ed); returns click's Result."""
    return runner.invoke(app, [str(arg) for arg in args])


def write_feature_corpus(root: Path, attrs: dict, n_mels: int = 40, mixing_std: float = 1.0, offset_std: float = 0.3,
                         speakers: int = 11, train_speakers: int = 8) -> Path:
    """segments.parquet + features.zarr of `speakers` "speakers" (the first `train_speakers` in
    train, the rest in dev), 4 utterances each of 80-199 frames, whose `n_mels` bands mix 6 latent
    sources in a speaker-specific way (which survives per-utterance normalisation). Seeded: the
    same arguments give the same corpus. `attrs` go to the store (frontend, frontend_name, ...)."""
    rng = np.random.default_rng(0)
    rows, features = [], []
    for speaker in range(speakers):
        mixing = rng.normal(0, mixing_std, (6, n_mels))
        for utterance in range(4):
            segment = f"s{speaker:02d}-{utterance}"
            frames = rng.normal(0, 1, (int(rng.integers(80, 200)), 6)) @ mixing + rng.normal(0, offset_std, (1, n_mels))
            rows.append({"segment_id": segment, "recording_id": segment, "start_s": 0.0, "duration_s": len(frames) / 100,
                         "speaker": f"s{speaker:02d}", "split": "train" if speaker < train_speakers else "dev",
                         "text": "", "language": "en"})
            features.append(frames.astype(np.float32))
    write_table(pd.DataFrame(rows), root / "segments.parquet", "segments")
    write_features(root / "features.zarr", [row["segment_id"] for row in rows], features, attrs)
    return root


class Interrupt(Exception):
    """Raised by the progress callback to kill a training run."""


def kill_then_resume(run, data: Path, out: Path, config, kill_after: int = 4) -> None:
    """`run(data, out, config=...)` killed (from its progress callback) after step `kill_after`,
    then resumed to the end with `resume=True`."""
    import pytest

    def kill(step, *, completed, total):
        if completed == kill_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(data, out, config=config, progress=kill)
    run(data, out, config=config, resume=True)


def assert_same_weights(first: Path, second: Path) -> dict:
    """Assert two checkpoint folders hold bit-identical model.safetensors; returns the first's tensors."""
    from safetensors.torch import load_file

    one, other = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert one.keys() == other.keys()
    for name in one:
        assert (one[name] == other[name]).all(), name
    return one


def assert_embeds_unit_vectors(embedder, size: int, seconds: float = 1.0) -> None:
    """A loaded embedder turns a second of noise into one unit-length embedding of `size` values."""
    clip = np.random.default_rng(1).normal(0, 0.1, int(seconds * 16000)).astype(np.float32)
    embedding = embedder.embed([clip])
    assert embedding.shape == (1, size) and np.isclose(np.linalg.norm(embedding), 1.0, atol=1e-5)


def write_fake_kokoro_js(path: Path, names: list[str], table_bytes: int = 510 * 256 * 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A gzipped tarball laid out like `npm pack kokoro-js` (package/package.json and
    package/voices/<name>.bin raw little-endian float32 tables of `table_bytes` bytes, seeded
    random values); returns name -> the table's float32 values (flat)."""
    import io
    import tarfile

    rng = np.random.default_rng(seed)
    tables = {name: rng.normal(0, 0.2, table_bytes // 4).astype("<f4") for name in names}
    members = {"package/package.json": b'{"name": "kokoro-js", "version": "1.2.1"}',
               **{f"package/voices/{name}.bin": table.tobytes() for name, table in tables.items()}}
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tables
