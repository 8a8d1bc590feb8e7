"""`spk preprocess`: a corpus on disk -> manifests, speaker-disjoint splits and log-mel features.

Output folder layout:
    OUT/recordings.parquet  one row per usable recording; paths relative to OUT
    OUT/segments.parquet    one whole-file segment per recording (segment_id = recording_id), with
                            speaker, split (train/dev/test, speaker-disjoint), text, language, and
                            gender when the corpus gives it
    OUT/trials.parquet      the corpus's trial list with segment ids (VoxCeleb, when ROOT has one)
    OUT/retrieval.tsv       VoxCeleb-style retrieval set: `retrieval_per_speaker` recordings of every
                            held-out speaker (test split, else dev) that has that many (segment_id,
                            speaker, split); `spk evaluate verification --speakers OUT/retrieval.tsv`
                            scores top-1/top-5 retrieval on exactly that set
    OUT/features.zarr       log-mel frames of the speech kept by the VAD (see pipelines/data/features.py);
                            attrs `frontend_name` says which frontend made them (`lstm`/`whisper`,
                            the registry's `frontend_names()`)
    OUT/speech.zarr         with `keep_speech`: the VAD-kept waveforms, in 10 ms sample blocks
                            (pipelines/data/speech_store.py), for waveform augmentation in `spk train`
    OUT/failures.parquet    one row per recording that could not be used, with the reason
    OUT/report.json         counts per split, hours, failures, timings
Running again with the same corpus and config finds the features store up to date and does nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.models.frontend import MelConfig
from speakembed.models import registry
from speakembed.models.registry import EncoderSpec
from speakembed.pipelines.audio.decode import AudioInfo, audio_info
from speakembed.pipelines.data.corpora import SPLITS, CommonVoiceFilters, Corpus, Utterance, read_corpus, speaker_splits
from speakembed.pipelines.data.features import FeatureWriter
from speakembed.pipelines.data.items import Item
from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.data.speech_store import SPEECH_STORE, SpeechWriter
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.data.failures import speech_or_failure, write_failures
from speakembed.pipelines.data.stores import read_store_attrs

OUTPUTS = ("recordings.parquet", "segments.parquet", "failures.parquet")


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of `spk preprocess`: VAD, frontend, dev/test split fractions, Common Voice filters and the retrieval clips per speaker."""
    vad: str = "silero"
    frontend: str = "lstm"
    dev_fraction: float = 0.1  # share of speakers, not of utterances
    test_fraction: float = 0.1
    commonvoice: CommonVoiceFilters = CommonVoiceFilters()
    retrieval_per_speaker: int = 3  # recordings per held-out speaker in retrieval.tsv (0: no retrieval set)
    keep_speech: bool = False  # also write speech.zarr (the VAD-kept waveforms) for waveform augmentation

    def fingerprint(self) -> str:
        """sha256 of every setting: an output made with other ones is redone."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass
class PreprocessReport:
    """What `spk preprocess` wrote: utterances and segments, per-split counts, failures, seconds of speech, the trial list, elapsed time (s), whether it was up to date."""
    out_dir: Path
    corpus: str
    num_utterances: int  # found in the corpus (after its filters)
    num_segments: int  # usable, with features
    splits: dict[str, dict] = field(default_factory=dict)  # split -> utterances, speakers, hours
    failures: dict[str, int] = field(default_factory=dict)
    speech_s: float = 0.0  # kept by the VAD, over all segments
    trial_list: str | None = None
    num_trials: int = 0
    elapsed_s: float = 0.0
    up_to_date: bool = False

    @property
    def features_path(self) -> Path:
        """The features store (features.zarr)."""
        return self.out_dir / "features.zarr"

    @property
    def failures_path(self) -> Path:
        """failures.parquet in the output folder."""
        return self.out_dir / "failures.parquet"

    def to_dict(self) -> dict:
        """The report as JSON-ready values (`--json`)."""
        return {**asdict(self), "out_dir": str(self.out_dir)}


def frontend_spec(name: str) -> tuple[EncoderSpec, MelConfig]:
    """The encoder spec whose sample rate, shortest input and frontend module apply, and the
    log-mel config, of frontend `name` (`registry.frontend_spec`; `lstm`: 16 kHz, 40 mels, 25 ms
    windows every 10 ms, at least 0.5 s of speech; `whisper`: 16 kHz, 80 mels on Whisper's scale,
    one frame per 10 ms, no 30 s padding). Training features are always log-mels. UsageError for
    an unknown frontend."""
    spec = registry.frontend_spec(name)
    return spec, dataclasses.replace(spec.mel, log=True)


def run(corpus_name: str, root: str | Path, out_dir: str | Path, *, config: PreprocessConfig = PreprocessConfig(),
        progress: Progress | None = None) -> PreprocessReport:
    """Read corpus `corpus_name` under `root` and write manifests and features into `out_dir`
    (created if missing; its parent must exist). Unusable recordings go to failures.parquet."""
    started = time.perf_counter()
    out_dir = prepare_output_folder(Path(out_dir))
    spec, mel = frontend_spec(config.frontend)
    corpus = read_corpus(corpus_name, root, commonvoice=config.commonvoice)
    fingerprint = f"{corpus.fingerprint()}:{config.fingerprint()}"
    previous = read_store_attrs(out_dir / "features.zarr")
    if previous and previous.get("fingerprint") == fingerprint and all((out_dir / name).is_file() for name in OUTPUTS):
        return PreprocessReport(out_dir, corpus.name, **previous["summary"], up_to_date=True)

    with FeatureWriter(out_dir / "features.zarr", mel.n_mels) as writer, _speech_writer(out_dir, mel, config) as speech:
        rows, failures, speech_samples = _extract_features(corpus, spec, mel, config.vad, writer, speech, progress)
        segments = _write_tables(corpus, rows, speaker_splits(corpus, config.dev_fraction, config.test_fraction), out_dir)
        _write_retrieval_set(segments, config.retrieval_per_speaker, out_dir / "retrieval.tsv")
        summary = {
            "num_utterances": len(corpus.utterances),
            "num_segments": len(rows),
            "splits": split_summary(segments),
            "failures": write_failures(failures, out_dir / "failures.parquet"),
            "speech_s": speech_samples / spec.sample_rate,
            "trial_list": str(corpus.trial_list) if corpus.trial_list else None,
            "num_trials": 0 if corpus.trials is None else len(corpus.trials),
        }
        attrs = {"frontend": mel.to_dict(), "frontend_name": config.frontend, "vad": config.vad,
                 "sample_rate": spec.sample_rate, "corpus": corpus.name, "config": asdict(config),
                 "fingerprint": fingerprint, "summary": summary}
        if speech is not None:  # first, so that a finished features store always has its speech beside it
            speech.finish({**attrs, "kind": "speech blocks", "hop_samples": mel.hop_length})
        else:
            shutil.rmtree(out_dir / SPEECH_STORE, ignore_errors=True)  # an earlier run's, out of step now
        writer.finish(attrs)
    report = PreprocessReport(out_dir, corpus.name, **summary, elapsed_s=time.perf_counter() - started)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def split_summary(segments: pd.DataFrame) -> dict[str, dict]:
    """split -> {"utterances", "speakers", "hours"} (hours of whole recordings), for the splits present."""
    groups = dict(list(segments.groupby("split")))
    return {
        split: {"utterances": len(groups[split]), "speakers": int(groups[split]["speaker"].nunique()),
                "hours": float(groups[split]["duration_s"].sum()) / 3600}
        for split in SPLITS if split in groups
    }


def _speech_writer(out_dir: Path, mel: MelConfig, config: PreprocessConfig):
    """A SpeechWriter for OUT/speech.zarr with `keep_speech`, else a context giving None."""
    if config.keep_speech:
        return SpeechWriter(out_dir / SPEECH_STORE, mel.hop_length)
    return contextlib.nullcontext()


def _extract_features(corpus: Corpus, spec: EncoderSpec, mel: MelConfig, vad: str, writer: FeatureWriter,
                      speech_writer: SpeechWriter | None, progress: Progress | None
                      ) -> tuple[list[tuple[Utterance, AudioInfo]], list[dict], int]:
    """Add each usable utterance's log-mel frames to `writer` (and its waveform to `speech_writer`
    when given); return (utterance, header) of the usable ones, the failures of the others, and
    the number of speech samples kept."""
    frontend = spec.make_frontend(mel).eval()
    rows: list[tuple[Utterance, AudioInfo]] = []
    failures: list[dict] = []
    speech_samples = 0
    for done, utterance in enumerate(corpus.utterances, start=1):
        speech = speech_or_failure(Item(utterance.recording_id, utterance.path), spec, vad, failures)
        if speech is not None:
            writer.add(utterance.recording_id, _log_mel(frontend, speech))
            if speech_writer is not None:
                speech_writer.add(utterance.recording_id, speech)
            rows.append((utterance, audio_info(utterance.path)))
            speech_samples += len(speech)
        report_progress(progress, "preprocessing", done, len(corpus.utterances))
    return rows, failures, speech_samples


def _write_tables(corpus: Corpus, rows: list[tuple[Utterance, AudioInfo]], splits: dict[str, str],
                  out_dir: Path) -> pd.DataFrame:
    """Write recordings, segments and (when the corpus has one) trials; return the segments."""
    recordings = pd.DataFrame(
        [(u.recording_id, os.path.relpath(u.path, out_dir), info.sample_rate, info.num_samples, info.num_channels,
          info.duration_s) for u, info in rows],
        columns=["recording_id", "path", "sample_rate", "num_samples", "num_channels", "duration_s"],
    )
    segments = pd.DataFrame(
        [(u.recording_id, u.recording_id, 0.0, info.duration_s, u.speaker, splits[u.speaker], u.text, u.language)
         for u, info in rows],
        columns=["segment_id", "recording_id", "start_s", "duration_s", "speaker", "split", "text", "language"],
    )
    if any(u.gender is not None for u in corpus.utterances):
        segments["gender"] = pd.Series([u.gender for u, _ in rows], dtype="string")
    write_table(recordings, out_dir / "recordings.parquet", "recordings")
    write_table(segments, out_dir / "segments.parquet", "segments")
    trials_path = out_dir / "trials.parquet"
    if corpus.trials is not None:
        write_table(corpus.trials, trials_path, "trials")
    else:
        trials_path.unlink(missing_ok=True)  # left by an earlier run on another corpus
    return segments


def retrieval_set(segments: pd.DataFrame, per_speaker: int) -> pd.DataFrame:
    """`per_speaker` segments of each held-out speaker (the test split, else dev) that has at least
    that many: columns segment_id, speaker, split. Speakers with fewer are left out, so every query
    has the same number of same-speaker candidates. Segments are picked by a hash of their id (not
    by name order, which tends to take one session), so the choice is stable across runs."""
    columns = ["segment_id", "speaker", "split"]
    held_out = next((split for split in ("test", "dev") if (segments["split"] == split).any()), None)
    if held_out is None or per_speaker < 1:
        return pd.DataFrame(columns=columns)
    pool = segments.loc[segments["split"] == held_out, columns].copy()
    pool["order"] = [hashlib.sha1(str(segment).encode()).hexdigest() for segment in pool["segment_id"]]
    pool = pool.sort_values(["speaker", "order"])
    counts = pool.groupby("speaker")["segment_id"].transform("size")
    chosen = pool[counts >= per_speaker].groupby("speaker").head(per_speaker)
    return chosen[columns].reset_index(drop=True)


def _write_retrieval_set(segments: pd.DataFrame, per_speaker: int, path: Path) -> None:
    chosen = retrieval_set(segments, per_speaker)
    if chosen.empty:
        path.unlink(missing_ok=True)  # none here (no held-out split, or too few recordings per speaker)
        return
    chosen.to_csv(path, sep="\t", index=False)


def _log_mel(frontend, speech: np.ndarray) -> np.ndarray:
    """Log-mel frames float32 of one waveform: (1 + samples // hop, n_mels) for the lstm frontend,
    (samples // hop, 80) for Whisper's (its valid length: the frame count, no 30 s padding)."""
    import torch

    return frontend(torch.from_numpy(speech)[None])[0].numpy()
