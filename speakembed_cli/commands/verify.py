"""`spk verify`: same speaker or not, for one pair or a whole trial list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from speakembed.commands import options, scoring_options
from speakembed.console import progress_bar, stderr, stdout, user_errors

HELP = """Decide whether two recordings hold the same speaker.

One pair: spk verify A.wav B.wav  (prints the probability of same speaker at --prior, the log-likelihood ratio, the cosine and the verdict; --json for machines)

A trial list: spk verify --trials LIST --embeddings DIR --out scores.parquet, where LIST is Kaldi 'enroll test target|nontarget', VoxCeleb '1 enroll test', an 'enroll test label' TSV, or a trials.parquet, and DIR is the output of `spk embed`; scores.parquet holds score, cosine, llr, probability and same_speaker per trial.

Scores are cosines after the encoder's shipped back-end (--backend none: raw cosine), with adaptive s-norm against --cohort STORE; the shipped calibration (or --calibration FILE from `spk calibrate`) turns them into probabilities. The verdict is probability >= 0.5, or score >= --threshold when given."""


def verify(
    recordings: list[Path] = typer.Argument(None, help="Two recordings to compare (omit with --trials)."),
    trials: Optional[Path] = typer.Option(None, "--trials", help="Trial list to score against --embeddings."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="Store (or `spk embed` output folder)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="scores.parquet to write (with --trials)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Score threshold of the verdict; default: the calibrated probability >= 0.5."),
    backend: str = scoring_options.BACKEND,
    cohort: Optional[Path] = scoring_options.COHORT,
    top_k: int = scoring_options.TOP_K,
    calibration: str = scoring_options.CALIBRATION,
    prior: float = scoring_options.PRIOR,
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
    with user_errors():
        config = pipeline.VerifyConfig(encoder=encoder, checkpoint=str(checkpoint) if checkpoint else None, vad=vad,
                                       device=device, threshold=threshold, backend=backend,
                                       cohort=str(cohort) if cohort else None, top_k=top_k, calibration=calibration,
                                       prior=prior)
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
    _print_pair(result, recordings)


def _print_pair(result, recordings: list[Path]) -> None:
    verdict = ("same speaker", "green") if result.same_speaker else ("different speakers", "red")
    if result.probability is not None:
        calibrated = f"probability {result.probability:.3f} of same speaker (prior {result.prior:g})  LLR {result.llr:+.2f}  "
    else:
        calibrated = "uncalibrated  "
    after = "" if result.scoring["key"] == "none" else f" (score {result.score:.4f} after {result.scoring['key']})"
    stdout.print(Text.assemble(calibrated, f"cosine {result.cosine:.4f}{after}  ->  ", verdict, f"  ({result.encoder})"))
    for path, fallback in zip(recordings, result.vad_fallback):
        if fallback:
            stdout.print(f"note: the VAD kept too little speech in {path}; its energy-trimmed audio was embedded", style="yellow")
    for note in result.notes:
        stderr.print(f"note: {note}", style="yellow", highlight=False)


def _score_trials(pipeline, trials: Path, embeddings: Path | None, out: Path | None, config, as_json: bool, quiet: bool) -> None:
    if embeddings is None or out is None:
        raise typer.BadParameter("--trials needs --embeddings STORE and --out scores.parquet", param_hint="--trials")
    with user_errors(), progress_bar(not quiet) as progress:
        report = pipeline.score_trials(trials, embeddings, out, config=config, progress=progress)
    summary = {
        "scores": str(report.scores_path), "encoder": report.encoder, "threshold": report.threshold,
        "trials": report.num_trials, "scored": report.num_scored, "missing_ids": len(report.missing_ids),
        "eer": report.eer, "scoring": report.scoring, "calibrated": report.calibrated, "notes": report.notes,
    }
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    stdout.print(f"scored {report.num_scored}/{report.num_trials} trials with {report.encoder} ({report.scoring['key']}"
                 f"{', calibrated' if report.calibrated else ''}) -> {report.scores_path}")
    if report.eer is not None:
        stdout.print(f"EER {100 * report.eer:.2f} %")
    for note in report.notes:
        stderr.print(f"note: {note}", style="yellow", highlight=False)
    if report.missing_ids:
        stderr.print(f"{len(report.missing_ids)} ids not in the store, e.g. {report.missing_ids[:3]}", style="yellow")
