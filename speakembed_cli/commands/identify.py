"""`spk identify`: who is speaking, against the voices of a speaker database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import database_options, options, scoring_options
from speakembed.commands.database_options import count
from speakembed.console import progress_bar, stderr, stdout, user_errors

HELP = """Name the speaker of each clip among the people enrolled in a speaker database (`spk enrol`).

spk identify x.wav y.mp3 --db voices/             top names with scores (and probabilities when calibrated)
spk identify recordings/ --db voices/ --out ids/  a folder, recursively -> ids/identities.parquet
spk identify x.wav --db voices/ --json

Each clip is embedded with the database's encoder and scored against every person's centroid (with the database's back-end; --backend, --cohort to change). With a calibration for those scores the names come with the posterior probability that the clip is that person, given --prior, the probability that its speaker is enrolled at all; the answer is the most probable of the names and 'unknown'. Without a calibration, or with --threshold, the best name is kept when its score reaches the threshold (default: the encoder's calibrated cosine threshold), else the answer is 'unknown'.

--encoder, --checkpoint, --backend and --vad default to the database's own (another encoder is refused).

--out DIR writes identities.parquet (item_id, identity, rank, speaker, score, probability, encoder: one row per clip and candidate), failures.parquet (clips that could not be embedded) and report.json."""


def identify(
    ctx: typer.Context,
    clips: list[Path] = typer.Argument(..., help="Audio files, folders (searched recursively) or a segments.parquet."),
    db: Path = typer.Option(..., "--db", help=database_options.DB_HELP),
    top: int = typer.Option(5, "--top", min=1, help="Names given per clip, best first."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Score a name needs (instead of the most probable answer)."),
    prior: float = typer.Option(0.5, "--prior", help="Probability that a clip's speaker is enrolled at all (with a calibration)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for identities.parquet, failures.parquet, report.json."),
    backend: str = scoring_options.BACKEND,
    cohort: Optional[Path] = scoring_options.COHORT,
    top_k: int = scoring_options.TOP_K,
    calibration: str = scoring_options.CALIBRATION,
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    vad: str = options.VAD,
    device: str = options.DEVICE,
    as_json: bool = options.AS_JSON,
    quiet: bool = options.QUIET,
) -> None:
    """`spk identify`: the enrolled speaker of each clip, or unknown."""
    from speakembed.pipelines import identify as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    options.check_choice(vad, VAD_METHODS, "--vad")
    with user_errors(), progress_bar(not quiet) as progress:
        config = pipeline.IdentifyConfig(
            encoder=database_options.given(ctx, "encoder", encoder), checkpoint=str(checkpoint) if checkpoint else None,
            backend=database_options.given(ctx, "backend", backend), cohort=str(cohort) if cohort else None,
            cohort_top_k=top_k, calibration=calibration, prior=prior, threshold=threshold, top=top,
            vad=database_options.given(ctx, "vad", vad), device=device)
        report = pipeline.run(clips, db, config=config, out_dir=out, progress=progress)
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    for identification in report.identifications:
        stdout.print(_line(identification, report.decision), soft_wrap=True)
    for note in report.notes:
        stderr.print(f"note: {note}", style="dim", soft_wrap=True)
    if report.failures:
        reasons = ", ".join(sorted({failure["reason"] for failure in report.failures}))
        where = f"; see {report.out_dir / 'failures.parquet'}" if report.out_dir else ""
        stdout.print(f"{count(len(report.failures), 'clip')} could not be embedded ({reasons}){where}", style="yellow",
                     soft_wrap=True)
    if report.out_dir is not None:
        stdout.print(f"identified {count(len(report.identifications), 'clip')} with {report.encoder} -> "
                     f"{report.out_dir / 'identities.parquet'}", soft_wrap=True)


def _line(identification, decision) -> str:
    """`clip  name  score (p 0.93)  next: other 0.61, ...`, or `clip  unknown  best: name 0.52 < 0.81`."""
    best = identification.best
    others = ", ".join(_candidate(candidate) for candidate in identification.candidates[1:])
    if identification.identity == best.name:
        return f"{identification.item_id}  {best.name}  {_candidate(best, named=False)}" + (f"  next: {others}" if others else "")
    if decision.rule == "threshold":
        why = f"best: {best.name} {best.score:.3f} < {decision.threshold:.3f}"
    else:
        why = f"p(unknown) {identification.unknown_probability:.2f}; best: {_candidate(best)}"
    return f"{identification.item_id}  unknown  ({why})"


def _candidate(candidate, named: bool = True) -> str:
    probability = "" if candidate.probability is None else f" (p {candidate.probability:.2f})"
    return (f"{candidate.name} " if named else "") + f"{candidate.score:.3f}{probability}"
