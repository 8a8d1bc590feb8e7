"""`spk preprocess`: a corpus folder -> manifests, speaker-disjoint splits and log-mel features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.console import progress_bar, stdout, user_errors

HELP = """Prepare a corpus for training and evaluation: manifests, splits and log-mel features in OUT.

CORPUS is the layout of ROOT: librispeech (ROOT/<speaker>/<chapter>/*.flac), voxceleb (ROOT/<id>/<video>/<utt>.wav|.m4a, with an optional trial list such as veri_test2.txt in ROOT), commonvoice (ROOT/validated.tsv and ROOT/clips/) or folder (ROOT/<speaker>/.../<file>). Speakers are split train/dev/test by a hash of their id, so each lands in exactly one split. Recordings that cannot be used are listed in OUT/failures.parquet."""


def preprocess(
    corpus: str = typer.Argument(..., help="Corpus layout: librispeech, voxceleb, commonvoice or folder."),
    root: Path = typer.Argument(..., help="Root folder of the corpus."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (manifests, features.zarr, failures.parquet)."),
    vad: str = options.VAD,
    frontend: str = typer.Option("lstm", "--frontend", help="Feature frontend: lstm (40 log-mels, 25 ms / 10 ms; for the GE2E encoders) or whisper (Whisper's 80 log-mels; for spk train --encoder whisper)."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", min=0.0, max=1.0, help="Share of speakers in dev."),
    test_fraction: float = typer.Option(0.1, "--test-fraction", min=0.0, max=1.0, help="Share of speakers in test."),
    keep_speech: bool = typer.Option(False, "--keep-speech", help="Also write OUT/speech.zarr, the VAD-kept waveforms (about 0.1 GB per hour of speech), for waveform augmentation in spk train (augment_waveform)."),
    retrieval_per_speaker: int = typer.Option(3, "--retrieval-per-speaker", min=0, help="Recordings per held-out speaker in OUT/retrieval.tsv, a VoxCeleb-style retrieval set (0: none)."),
    min_upvotes: int = typer.Option(2, "--min-upvotes", min=0, help="commonvoice: fewest up-votes a clip needs."),
    max_downvotes: int = typer.Option(0, "--max-downvotes", min=0, help="commonvoice: most down-votes a clip may have."),
    min_per_speaker: int = typer.Option(2, "--min-recordings-per-speaker", min=1,
                                        help="commonvoice: drop speakers with fewer clips."),
    max_per_speaker: Optional[int] = typer.Option(None, "--max-recordings-per-speaker", min=1,
                                                  help="commonvoice: keep at most this many clips per speaker."),
    quiet: bool = options.QUIET,
) -> None:
    """`spk preprocess`: a corpus into manifests and features."""
    from speakembed.models.registry import frontend_names
    from speakembed.pipelines import preprocess as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS
    from speakembed.pipelines.data.corpora import CORPORA, CommonVoiceFilters

    options.check_choice(corpus, CORPORA, "CORPUS")
    options.check_choice(vad, VAD_METHODS, "--vad")
    options.check_choice(frontend, frontend_names(), "--frontend")
    if dev_fraction + test_fraction > 1:
        raise typer.BadParameter("--dev-fraction and --test-fraction must sum to at most 1", param_hint="--test-fraction")
    filters = CommonVoiceFilters(min_upvotes, max_downvotes, min_per_speaker, max_per_speaker)
    config = pipeline.PreprocessConfig(vad=vad, frontend=frontend, dev_fraction=dev_fraction,
                                       test_fraction=test_fraction, commonvoice=filters,
                                       retrieval_per_speaker=retrieval_per_speaker, keep_speech=keep_speech)
    with user_errors(), progress_bar(not quiet) as progress:
        report = pipeline.run(corpus, root, out, config=config, progress=progress)
    if report.up_to_date:
        stdout.print(f"{report.features_path} is up to date ({report.num_segments} segments); nothing to do")
        return
    _print_summary(report)
    if report.num_segments == 0:
        raise typer.Exit(5)


def _print_summary(report) -> None:
    stdout.print(
        f"{report.corpus}: {report.num_segments}/{report.num_utterances} utterances "
        f"({report.speech_s / 3600:.2f} h of speech) in {report.elapsed_s:.1f} s -> {report.out_dir}"
    )
    for split, counts in report.splits.items():
        stdout.print(f"  {split:<5} {counts['utterances']:>7} utterances {counts['speakers']:>6} speakers "
                     f"{counts['hours']:>8.2f} h of recordings")
    if report.trial_list:
        stdout.print(f"  trials: {report.num_trials} from {report.trial_list} -> {report.out_dir / 'trials.parquet'}")
    if report.failures:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.failures.items()))
        failed = sum(report.failures.values())
        stdout.print(f"{failed} recordings not used ({reasons}); see {report.failures_path}", style="yellow")
