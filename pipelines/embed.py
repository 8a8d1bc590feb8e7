"""`spk embed`: audio files, folders or a segments manifest -> embeddings store + failures.

Output folder layout:
    OUT/embeddings.zarr   N x D embeddings, item ids, valid flags (see pipelines/data/stores.py)
    OUT/failures.parquet  one row per item that could not be embedded, with the reason
    OUT/report.json       counts, timings, encoder and config
With `shard=(K, N)` only every N-th item (from the K-th) is embedded, into
`OUT/embeddings.shard-K-of-N.zarr` (and matching failures/report files), so that N jobs of a
scheduler can share a corpus; readers combine the N parts of a folder without copying them.
Running again with the same inputs and config finds the store up to date and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.base.errors import ManifestError
from speakembed.pipelines.data.items import collect_items, items_fingerprint
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.data.failures import speech_or_failure, write_failures
from speakembed.pipelines.data.stores import EmbeddingStore, read_store_attrs, write_store


@dataclass(frozen=True)
class EmbedConfig:
    encoder: str = DEFAULT_ENCODER
    checkpoint: str | None = None  # a `spk train` output folder instead of the pretrained weights
    vad: str = "silero"
    device: str | None = None
    files_per_batch: int = 32
    max_duration_s: float = 1800.0  # one embedding of more than 30 min is almost surely a mistake
    shard: tuple[int, int] | None = None  # (K, N): embed the K-th of N interleaved parts

    @property
    def part_suffix(self) -> str:
        return f".shard-{self.shard[0]}-of-{self.shard[1]}" if self.shard else ""

    def fingerprint(self) -> str:
        settings = {key: value for key, value in asdict(self).items() if key not in ("device", "files_per_batch")}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@dataclass
class EmbedReport:
    out_dir: Path
    encoder: str
    num_items: int
    num_embedded: int
    failures: dict[str, int] = field(default_factory=dict)
    speech_s: float = 0.0
    elapsed_s: float = 0.0
    up_to_date: bool = False
    part_suffix: str = ""  # ".shard-K-of-N" for one part of a sharded run

    @property
    def store_path(self) -> Path:
        return self.out_dir / f"embeddings{self.part_suffix}.zarr"

    @property
    def failures_path(self) -> Path:
        return self.out_dir / f"failures{self.part_suffix}.parquet"

    def to_dict(self) -> dict:
        return {**asdict(self), "out_dir": str(self.out_dir)}


def run(inputs: list[str | Path], out_dir: str | Path, *, config: EmbedConfig = EmbedConfig(),
        progress: Progress | None = None) -> EmbedReport:
    """Embed every item of `inputs` into `out_dir` (created if missing; its parent must exist)."""
    started = time.perf_counter()
    out_dir = prepare_output_folder(Path(out_dir))
    items = select_shard(collect_items(inputs), config.shard)
    fingerprint = f"{items_fingerprint(items)}:{config.fingerprint()}"

    from speakembed.models.registry import load_encoder

    embedder = load_encoder(config.encoder, config.device, config.checkpoint)
    suffix = config.part_suffix
    previous = read_store_attrs(out_dir / f"embeddings{suffix}.zarr")
    if previous and previous.get("fingerprint") == fingerprint and previous.get("encoder") == embedder.encoder_id:
        return EmbedReport(out_dir, embedder.encoder_id, len(items), int(previous["num_embedded"]),
                           previous.get("failures", {}), up_to_date=True, part_suffix=suffix)

    embeddings = np.zeros((len(items), embedder.embedding_size), dtype=np.float32)
    valid = np.zeros(len(items), dtype=bool)
    failures: list[dict] = []
    speech_samples = 0
    for first in range(0, len(items), config.files_per_batch):
        batch = range(first, min(first + config.files_per_batch, len(items)))
        speech = {index: speech_or_failure(items[index], embedder.spec, config.vad, failures,
                                             max_duration_s=config.max_duration_s) for index in batch}
        speech = {index: samples for index, samples in speech.items() if samples is not None}
        if speech:
            embeddings[list(speech)] = embedder.embed(list(speech.values()))
            valid[list(speech)] = True
            speech_samples += sum(len(samples) for samples in speech.values())
        report_progress(progress, "embedding", batch.stop, len(items))

    attrs = {
        "encoder": embedder.encoder_id,
        "embedding_size": embedder.embedding_size,
        "threshold": embedder.spec.default_threshold,
        "config": asdict(config),
        "frontend": embedder.spec.mel.to_dict(),
        "fingerprint": fingerprint,
        "num_embedded": int(valid.sum()),
        "failures": write_failures(failures, out_dir / f"failures{suffix}.parquet"),
    }
    write_store(out_dir / f"embeddings{suffix}.zarr", EmbeddingStore([item.item_id for item in items], embeddings, valid, attrs))
    report = EmbedReport(out_dir, embedder.encoder_id, len(items), int(valid.sum()), attrs["failures"],
                         speech_samples / embedder.spec.sample_rate, time.perf_counter() - started, part_suffix=suffix)
    (out_dir / f"report{suffix}.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def select_shard(items: list, shard: tuple[int, int] | None) -> list:
    """Items K-1, K-1+N, K-1+2N, ... of `shard` = (K, N): interleaved, so parts get similar mixes."""
    if shard is None:
        return items
    part, parts = shard
    if not 1 <= part <= parts:
        raise ManifestError(f"--shard {part}/{parts}: K must lie between 1 and N")
    return items[part - 1 :: parts]

