"""`spk verify`: same speaker or not, for one pair or a whole trial list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from speakembed.commands import options
from speakembed.console import progress_bar, stderr, stdout, user_errors

HELP = """Decide whether two recordings hold the same speaker.

One pair: spk verify A.wav B.wav  (prints score, threshold and decision; --json for machines)

A trial list: spk verify --trials LIST --embeddings DIR --out scores.parquet, where LIST is Kaldi 'enroll test target|nontarget', VoxCeleb '1 enroll test', an 'enroll test label' TSV, or a trials.parquet, and DIR is the output of `spk embed`."""


def verify(
    recordings: list[Path] = typer.Argument(None, help="Two recordings to compare (omit with --trials)."),
    trials: Optional[Path] = typer.Option(None, "--trials", help="Trial list to score against --embeddings."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="Store (or `spk embed` output folder)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="scores.parquet to write (with --trials)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Cosine threshold; default: the encoder's calibrated one."),
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    vad: str = options.VAD,
    device: str = options.DEVICE,
    as_json: bool = options.AS_JSON,
    quiet: bool = options.QUIET,
) -> None:
    """`spk verify`: same speaker or not, for a pair or a trial list."""
    from speakembed.pipelines import verify as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    options.check_choice(vad, VAD_METHODS, "--vad")
    config = pipeline.VerifyConfig(encoder=encoder, checkpoint=str(checkpoint) if checkpoint else None, vad=vad, device=device, threshold=threshold)
    if trials is not None:
        _score_trials(pipeline, trials, embeddings, out, config, as_json, quiet)
        return
    if not recordings or len(recordings) != 2:
        raise typer.BadParameter("give exactly two recordings, or --trials with --embeddings", param_hint="RECORDINGS")
    with user_errors():
        result = pipeline.verify_pair(recordings[0], recordings[1], config=config)
    if as_json:
        stdout.print_json(json.dumps(result.to_dict()))
        return
    verdict = ("same speaker", "green") if result.same_speaker else ("different speakers", "red")
    stdout.print(Text.assemble(f"score {result.score:.4f}  threshold {result.threshold:.4f}  ->  ", verdict, f"  ({result.encoder})"))
    for path, fallback in zip(recordings, result.vad_fallback):
        if fallback:
            stdout.print(f"note: the VAD kept too little speech in {path}; its energy-trimmed audio was embedded", style="yellow")


def _score_trials(pipeline, trials: Path, embeddings: Path | None, out: Path | None, config, as_json: bool, quiet: bool) -> None:
    if embeddings is None or out is None:
        raise typer.BadParameter("--trials needs --embeddings STORE and --out scores.parquet", param_hint="--trials")
    with user_errors(), progress_bar(not quiet) as progress:
        report = pipeline.score_trials(trials, embeddings, out, config=config, progress=progress)
    summary = {
        "scores": str(report.scores_path), "encoder": report.encoder, "threshold": report.threshold,
        "trials": report.num_trials, "scored": report.num_scored, "missing_ids": len(report.missing_ids),
        "eer": report.eer,
    }
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    stdout.print(f"scored {report.num_scored}/{report.num_trials} trials with {report.encoder} -> {report.scores_path}")
    if report.eer is not None:
        stdout.print(f"EER {100 * report.eer:.2f} %")
    if report.missing_ids:
        stderr.print(f"{len(report.missing_ids)} ids not in the store, e.g. {report.missing_ids[:3]}", style="yellow")
