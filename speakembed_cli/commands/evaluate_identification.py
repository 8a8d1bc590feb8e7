"""`spk evaluate identification`: closed- and open-set identification, or a named diarisation's
identification error rate. Registered under `spk evaluate` by main.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.console import stdout, user_errors
from speakembed.pipelines.base.outputs import prepare_output_folder

HELP = """Score speaker identification: closed-set top-1/top-5, open-set miss, confusion and false-alarm rates; or the identification error rate of a named diarisation.

spk evaluate identification --identities IDS [--speakers FILE] [--db voices/] [--out DIR] [--json]
spk evaluate identification --reference REF.rttm --hypothesis HYP.rttm [--collar 0] [--out DIR] [--json]

IDS is the --out folder of `spk identify` (or its identities.parquet); who was enrolled comes from its report.json, or --db. A clip's true speaker comes from --speakers FILE (a TSV/CSV with an id and a speaker column, or a segments.parquet), else the first folder of its item id (SPEAKER/CLIP). Clips of enrolled people give the closed-set top-k accuracy and, at the decisions identify made, the miss rate (answered unknown), confusion rate (another name) and the rate named rightly; clips of people not enrolled give the false-alarm rate (given a name). The open-set EER sweeps a threshold over the best candidate's score.

With --reference/--hypothesis (RTTM files or folders, e.g. `spk diarise --db` output), names must match the reference's: pyannote.metrics' identification error rate (no optimal mapping), its parts, and the DER beside it."""


def identification(
    identities: Optional[Path] = typer.Option(None, "--identities", "-i", help="`spk identify --out` folder or identities.parquet."),
    speakers: Optional[Path] = typer.Option(None, "--speakers", help="TSV/CSV (id, speaker columns) or segments.parquet; "
                                            "default: the first folder of each item id."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Id column of --speakers."),
    speaker_column: Optional[str] = typer.Option(None, "--speaker-column", help="Speaker column of --speakers."),
    db: Optional[Path] = typer.Option(None, "--db", help="Speaker database: who was enrolled (default: report.json beside IDS)."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="Reference RTTM file or folder (named diarisation)."),
    hypothesis: Optional[Path] = typer.Option(None, "--hypothesis", "-H", help="Hypothesis RTTM file or folder (`spk diarise --db`)."),
    collar: float = typer.Option(0.0, "--collar", min=0.0, help="Seconds left unscored on each side of reference boundaries (±)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write report.json and report.md into."),
    as_json: bool = options.AS_JSON,
) -> None:
    """`spk evaluate identification`: identification accuracy and error rates."""
    from speakembed.pipelines import evaluate_identification as pipeline

    diarisation = reference is not None or hypothesis is not None
    if diarisation == (identities is not None):
        raise typer.BadParameter("give --identities IDS, or --reference REF with --hypothesis HYP", param_hint="--identities")
    if diarisation and (reference is None or hypothesis is None):
        raise typer.BadParameter("--reference and --hypothesis go together", param_hint="--reference")
    with user_errors():
        if out is not None:  # refuse an unwritable --out before the work, not after
            prepare_output_folder(out)
        if diarisation:
            report = pipeline.evaluate_named_diarisation(reference, hypothesis, collar_s=collar)
        else:
            report = pipeline.evaluate_identification(identities, database=db, speakers=speakers, id_column=id_column,
                                                      speaker_column=speaker_column)
        if out is not None:
            pipeline.write_report(report, out)
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    _print_table(pipeline, report, diarisation)
    for note in report.notes:
        stdout.print(note, style="yellow", highlight=False)
    if out is not None:
        stdout.print(f"report written to {out / 'report.json'} and {out / 'report.md'}")


def _print_table(pipeline, report, diarisation: bool) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    if diarisation:
        headers, rows = pipeline.named_diarisation_table(report)
        table.caption, table.caption_justify = "rates in %; correct, conf, miss, FA: % of reference speech", "left"
    else:
        headers, rows = ["metric", "value"], pipeline.identification_table(report)
    table.add_column(headers[0], no_wrap=True)
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    stdout.print(table)
