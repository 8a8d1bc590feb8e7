"""`spk enrol`: add, rename, remove and list the people of a speaker database."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import database_options, options, scoring_options
from speakembed.commands.database_options import count
from speakembed.console import progress_bar, stdout, user_errors

HELP = """Enrol people's voices in a speaker database (a folder), for `spk identify` and `spk diarise --db`.

spk enrol alice a1.wav a2.flac --db voices/       add clips to alice (creates the database, or the name)
spk enrol bob recordings/bob/ --db voices/         every audio file under a folder
spk enrol --rename alice "Alice Liddell" --db voices/
spk enrol --remove bob --db voices/
spk enrol --list --db voices/

The database keeps every clip's embedding, each person's centroid, and the encoder, back-end and VAD it was made with: the first enrolment fixes them (--encoder/--checkpoint, --backend, --vad; their defaults are for a new database), later ones use them and refuse others. A clip that cannot be embedded (missing, unreadable, silent, shorter than the encoder's minimum) fails the command and leaves the database as it was; audio already enrolled under the name is skipped."""


def enrol(
    ctx: typer.Context,
    arguments: Optional[list[str]] = typer.Argument(None, metavar="NAME CLIP...",
                                                    help="The person's name, then audio files or folders of their voice."),
    db: Path = typer.Option(..., "--db", help=database_options.DB_HELP + " Created by the first enrolment."),
    rename: Optional[tuple[str, str]] = typer.Option(None, "--rename", metavar="OLD NEW", help="Rename an enrolled person."),
    remove: Optional[str] = typer.Option(None, "--remove", metavar="NAME", help="Remove an enrolled person and their clips."),
    list_speakers: bool = typer.Option(False, "--list", help="List the enrolled people."),
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    backend: str = scoring_options.BACKEND,
    vad: str = options.VAD,
    device: str = options.DEVICE,
    as_json: bool = options.AS_JSON,
    quiet: bool = options.QUIET,
) -> None:
    """`spk enrol`: manage the people of a speaker database."""
    from speakembed.pipelines import enrol as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    options.check_choice(vad, VAD_METHODS, "--vad")
    modes = [bool(arguments), rename is not None, remove is not None, list_speakers]
    if sum(modes) != 1:
        raise typer.BadParameter("give NAME CLIP..., or one of --rename OLD NEW, --remove NAME, --list",
                                 param_hint="NAME CLIP...")
    with user_errors():
        if list_speakers:
            _print_listing(*pipeline.listing(db), as_json)
        elif rename is not None:
            pipeline.rename(db, *rename)
            stdout.print(f"renamed '{rename[0]}' to '{rename[1]}' in {db}")
        elif remove is not None:
            remaining = pipeline.remove(db, remove)
            stdout.print(f"removed '{remove}' from {db} ({count(len(remaining.names), 'speaker')} left)")
        else:
            _enrol_clips(ctx, pipeline, db, arguments, encoder, checkpoint, backend, vad, device, as_json, quiet)


def _enrol_clips(ctx, pipeline, db: Path, arguments: list[str], encoder, checkpoint, backend, vad, device,
                 as_json: bool, quiet: bool) -> None:
    name, clips = arguments[0], arguments[1:]
    if not clips:
        raise typer.BadParameter(f"give audio files or folders of {name}'s voice after the name", param_hint="CLIP...")
    config = pipeline.EnrolConfig(encoder=database_options.given(ctx, "encoder", encoder),
                                  checkpoint=str(checkpoint) if checkpoint else None,
                                  backend=database_options.given(ctx, "backend", backend),
                                  vad=database_options.given(ctx, "vad", vad), device=device)
    with progress_bar(not quiet) as progress:
        report = pipeline.run(db, name, clips, config=config, progress=progress)
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    created = " (new database)" if report.created else ""
    stdout.print(f"enrolled {count(len(report.added), 'clip')} as '{name}' ({report.clips} in all) with {report.encoder} "
                 f"in {report.database}{created}; {count(report.speakers, 'speaker')} enrolled", soft_wrap=True)
    if report.already_enrolled:
        stdout.print(f"{count(len(report.already_enrolled), 'clip')} already enrolled as '{name}', skipped: "
                     f"{', '.join(report.already_enrolled[:3])}", style="yellow", soft_wrap=True)
    if report.vad_fallback:
        stdout.print(f"{count(report.vad_fallback, 'clip')}: the VAD kept too little speech; embedded energy-trimmed",
                     style="yellow")


def _print_listing(database, speakers, as_json: bool) -> None:
    if as_json:
        stdout.print_json(json.dumps({"database": str(database.path), "encoder": database.encoder.encoder_id,
                                      "backend": database.backend,
                                      "speakers": [asdict(speaker) for speaker in speakers]}))
        return
    from rich import box
    from rich.table import Table

    stdout.print(f"{database.path}: {count(len(speakers), 'speaker')}, {database.encoder.encoder_id}, "
                 f"back-end {database.backend}", soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("name", "clips", "speech s"):
        table.add_column(header, justify="left" if header == "name" else "right")
    for speaker in speakers:
        table.add_row(speaker.name, str(speaker.clips), f"{speaker.speech_s:.1f}")
    stdout.print(table)
