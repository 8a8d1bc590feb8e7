"""`spk embed`: audio files, folders or a segments manifest -> embeddings store + failures.

Output folder layout:
    OUT/embeddings.zarr   N x D embeddings, item ids, valid and vad_fallback flags (see pipelines/data/stores.py)
    OUT/failures.parquet  one row per item that could not be embedded, with the reason
    OUT/report.json       counts, timings, encoder and config
    OUT/embeddings.npy + ids.txt, or OUT/xvector.ark + xvector.scp   with `formats` npy / kaldi
                          (pipelines/data/exports.py), written from the finished store
With `shard=(K, N)` only every N-th item (from the K-th) is embedded, into
`OUT/embeddings.shard-K-of-N.zarr` (and matching failures/report files), so that N jobs of a
scheduler can share a corpus; readers combine the N parts of a folder without copying them.

The store is written `chunk_size` items at a time into `OUT/.embeddings.zarr.partial` (memory
holds one chunk of embeddings, never all of them), and swapped in when complete. A run that was
interrupted (Ctrl-C, a killed job) resumes from its last complete chunk when run again with the
same inputs, encoder and config (the fingerprint in the store's attrs); anything else starts
over. Running again after a finished run finds the store up to date and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.base.errors import UsageError
from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.data.failures import speech_or_failure, write_failures
from speakembed.pipelines.data.items import collect_items, items_fingerprint
from speakembed.pipelines.data.exports import check_format, export_store
from speakembed.pipelines.data.stores import ChunkedStoreWriter, read_store, read_store_attrs

# Bumped when the same inputs and config would give a different store: 2 = clips in which the VAD
# keeps too little are embedded (flagged vad_fallback) instead of failing, so older stores are stale.
_FINGERPRINT_VERSION = 2
_NOT_FINGERPRINTED = ("device", "files_per_batch", "chunk_size")  # change speed, not the embeddings


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of `spk embed`: encoder/checkpoint, VAD, device, files per batch, maximum duration (s), shard and chunk size."""
    encoder: str = DEFAULT_ENCODER
    checkpoint: str | None = None  # a `spk train` output folder instead of the pretrained weights
    vad: str = "silero"
    device: str | None = None
    files_per_batch: int = 32
    max_duration_s: float = 1800.0  # one embedding of more than 30 min is almost surely a mistake
    shard: tuple[int, int] | None = None  # (K, N): embed the K-th of N interleaved parts
    chunk_size: int = 256  # items embedded between two writes of the store (what an interruption keeps)

    def __post_init__(self):
        if self.chunk_size < 1 or self.files_per_batch < 1:
            raise UsageError(f"chunk_size ({self.chunk_size}) and files_per_batch ({self.files_per_batch}) must be at least 1")

    @property
    def part_suffix(self) -> str:
        """The store name suffix of a shard (`.shard-I-of-N`), empty without --shard."""
        return f".shard-{self.shard[0]}-of-{self.shard[1]}" if self.shard else ""

    def fingerprint(self) -> str:
        """sha256 of the settings that change the embeddings (not device or batching): a store made with other ones is redone."""
        settings = {key: value for key, value in asdict(self).items() if key not in _NOT_FINGERPRINTED}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@dataclass
class EmbedReport:
    """What `spk embed` did: output folder, encoder id, items embedded / failed / reused / embedded without VAD, seconds of speech, elapsed time (s), whether it was already up to date."""
    out_dir: Path
    encoder: str
    num_items: int
    num_embedded: int
    failures: dict[str, int] = field(default_factory=dict)
    speech_s: float = 0.0
    elapsed_s: float = 0.0
    up_to_date: bool = False
    part_suffix: str = ""  # ".shard-K-of-N" for one part of a sharded run
    num_vad_fallback: int = 0  # embedded from the energy-trimmed or whole clip: the VAD kept too little
    num_reused: int = 0  # items taken from an interrupted run's complete chunks instead of embedded again
    exports: list[str] = field(default_factory=list)  # files written in other formats (`formats`), beside the store

    @property
    def store_path(self) -> Path:
        """The finished embeddings store."""
        return self.out_dir / f"embeddings{self.part_suffix}.zarr"

    @property
    def failures_path(self) -> Path:
        """failures.parquet beside the store."""
        return self.out_dir / f"failures{self.part_suffix}.parquet"

    def to_dict(self) -> dict:
        """The report as JSON-ready values (`--json`, report.json)."""
        return {**asdict(self), "out_dir": str(self.out_dir)}


@dataclass
class _Tally:
    """Running totals over the chunks written so far (reused ones included)."""

    rows: int = 0
    embedded: int = 0
    vad_fallback: int = 0
    speech_samples: int = 0
    failures: list[dict] = field(default_factory=list)

    def add(self, rows: int, note: dict) -> None:
        self.rows += rows
        self.embedded += note["embedded"]
        self.vad_fallback += note["vad_fallback"]
        self.speech_samples += note["speech_samples"]
        self.failures.extend(note["failures"])


def run(inputs: list[str | Path], out_dir: str | Path, *, config: EmbedConfig = EmbedConfig(),
        formats: tuple[str, ...] = (), embedder=None, progress: Progress | None = None) -> EmbedReport:
    """Embed every item of `inputs` (files, folders, a segments.parquet, a Kaldi wav.scp) into
    `out_dir` (created with its parents if missing), resuming an interrupted run of the same
    inputs and config, then export the store in `formats` (npy, kaldi); see the module docstring.
    `embedder`: config's encoder already loaded (the studio keeps one per process), else it is loaded here."""
    formats = tuple(check_format(name) for name in formats)
    report = _embed(inputs, out_dir, config, progress, embedder)
    if any(name != "zarr" for name in formats):
        store = read_store(report.store_path)
        report.exports = [path.name for name in formats for path in export_store(store, report.out_dir, name,
                                                                                   report.part_suffix)]
        if not report.up_to_date:
            _write_report(report)
    return report


def _write_report(report: EmbedReport) -> None:
    """OUT/report[.shard-K-of-N].json."""
    write_text_atomically(report.out_dir / f"report{report.part_suffix}.json", json.dumps(report.to_dict(), indent=2) + "\n")


def _embed(inputs: list[str | Path], out_dir: str | Path, config: EmbedConfig, progress: Progress | None,
           embedder=None) -> EmbedReport:
    started = time.perf_counter()
    out_dir = prepare_output_folder(Path(out_dir))
    items = select_shard(collect_items(inputs), config.shard)

    from speakembed.models.registry import load_encoder

    embedder = embedder or load_encoder(config.encoder, config.device, config.checkpoint)
    fingerprint = run_fingerprint(items, config, embedder.encoder_id)
    suffix = config.part_suffix
    store_path = out_dir / f"embeddings{suffix}.zarr"
    previous = read_store_attrs(store_path)
    if previous and previous.get("fingerprint") == fingerprint:
        return EmbedReport(out_dir, embedder.encoder_id, len(items), int(previous["num_embedded"]),
                           previous.get("failures", {}), up_to_date=True, part_suffix=suffix,
                           num_vad_fallback=int(previous.get("num_vad_fallback", 0)))

    writer, tally = _open_partial_store(store_path, items, embedder, config, fingerprint)
    reused = tally.rows
    report_progress(progress, "embedding", reused, len(items))
    for first in range(reused, len(items), config.chunk_size):
        chunk_items = items[first : first + config.chunk_size]
        embeddings, valid, vad_fallback, note = _embed_chunk(
            chunk_items, embedder, config, lambda done: report_progress(progress, "embedding", first + done, len(items)))
        writer.write_chunk(first, embeddings, valid, vad_fallback, note)
        tally.add(len(chunk_items), note)

    failure_counts = write_failures(tally.failures, out_dir / f"failures{suffix}.parquet")
    writer.finish(store_path, {"num_embedded": tally.embedded, "num_vad_fallback": tally.vad_fallback,
                               "failures": failure_counts})
    report = EmbedReport(out_dir, embedder.encoder_id, len(items), tally.embedded, failure_counts,
                         tally.speech_samples / embedder.spec.sample_rate, time.perf_counter() - started,
                         part_suffix=suffix, num_vad_fallback=tally.vad_fallback, num_reused=reused)
    _write_report(report)
    return report


def run_fingerprint(items: list, config: EmbedConfig, encoder_id: str) -> str:
    """What a store depends on: the items (ids, paths, sizes, mtimes), the config that changes
    embeddings (VAD, shard, ...), the encoder id (name@weights hash, so a checkpoint's too)."""
    parts = {"items": items_fingerprint(items), "config": config.fingerprint(), "encoder": encoder_id,
             "version": _FINGERPRINT_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _open_partial_store(store_path: Path, items: list, embedder, config: EmbedConfig,
                        fingerprint: str) -> tuple[ChunkedStoreWriter, _Tally]:
    """The unfinished store beside `store_path` with the totals of its complete chunks, when an
    interrupted run of the same fingerprint left one; else a new empty one."""
    partial = store_path.with_name(f".{store_path.name}.partial")
    tally = _Tally()
    writer = ChunkedStoreWriter.resume(partial, lambda attrs: attrs.get("fingerprint") == fingerprint)
    if writer is not None:
        for record in writer.completed_chunks():
            tally.add(record["rows"], record["note"])
        return writer, tally
    attrs = {
        "encoder": embedder.encoder_id,
        "embedding_size": embedder.embedding_size,
        "threshold": embedder.spec.default_threshold,
        "config": asdict(config),
        "frontend": embedder.spec.mel.to_dict(),
        "fingerprint": fingerprint,
    }
    return ChunkedStoreWriter.create(partial, [item.item_id for item in items], embedder.embedding_size, attrs), tally


def _embed_chunk(items: list, embedder, config: EmbedConfig, on_batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Embeddings (items, D) float32 (zeros where an item failed), valid and vad_fallback flags
    (items,) bool, and the chunk's note (counts and failures, JSON-able) for the store's record.
    `on_batch(done)` is called after each batch with the number of this chunk's items done."""
    embeddings = np.zeros((len(items), embedder.embedding_size), dtype=np.float32)
    valid = np.zeros(len(items), dtype=bool)
    vad_fallback = np.zeros(len(items), dtype=bool)
    failures: list[dict] = []
    speech_samples = 0
    for first in range(0, len(items), config.files_per_batch):
        batch = range(first, min(first + config.files_per_batch, len(items)))
        speech = {index: speech_or_failure(items[index], embedder.spec, config.vad, failures,
                                           max_duration_s=config.max_duration_s) for index in batch}
        speech = {index: samples for index, samples in speech.items() if samples is not None}
        if speech:
            rows = list(speech)
            embeddings[rows] = embedder.embed([np.asarray(samples) for samples in speech.values()])
            valid[rows] = True
            vad_fallback[rows] = [samples.vad_fallback for samples in speech.values()]
            speech_samples += sum(len(samples) for samples in speech.values())
        on_batch(batch.stop)
    note = {"embedded": int(valid.sum()), "vad_fallback": int(vad_fallback.sum()),
            "speech_samples": int(speech_samples), "failures": failures}
    return embeddings, valid, vad_fallback, note


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """`"K/N"` -> (K, N) with 1 <= K <= N; None stays None. UsageError for anything else."""
    if value is None:
        return None
    part, _, parts = value.partition("/")
    if not (part.isdigit() and parts.isdigit() and 1 <= int(part) <= int(parts)):
        raise UsageError(f"--shard '{value}' is not K/N with 1 <= K <= N (e.g. --shard 2/8)")
    return int(part), int(parts)


def select_shard(items: list, shard: tuple[int, int] | None) -> list:
    """Items K-1, K-1+N, K-1+2N, ... of `shard` = (K, N): interleaved, so parts get similar mixes."""
    if shard is None:
        return items
    part, parts = shard
    if not 1 <= part <= parts:
        raise UsageError(f"--shard {part}/{parts}: K must lie between 1 and N")
    return items[part - 1 :: parts]
