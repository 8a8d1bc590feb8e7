"""`spk evaluate`: score system outputs against references (`spk evaluate diarisation`, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from speakembed.console import stdout, user_errors

app = typer.Typer(help="Score system outputs against references.", no_args_is_help=True)

DIARISATION_HELP = """Score a diarisation (RTTM) against a reference RTTM: DER, JER, purity, coverage.

spk evaluate diarisation --reference REF --hypothesis HYP [--collar 0.25] [--out DIR] [--json]

REF and HYP are RTTM files or folders of *.rttm files naming the same recordings. DER is given
with no collar (overlapped speech scored) and with ±COLLAR seconds unscored around each reference
boundary; hypothesis labels are mapped to reference labels optimally, so their names need not match.
--out DIR writes DIR/report.json and DIR/report.md."""


@app.command("diarisation", help=DIARISATION_HELP)
def diarisation(
    reference: Path = typer.Option(..., "--reference", "-r", help="Reference RTTM file or folder."),
    hypothesis: Path = typer.Option(..., "--hypothesis", "-H", help="Hypothesis RTTM file or folder."),
    collar: float = typer.Option(0.25, "--collar", min=0.0,
                                 help="Seconds left unscored on each side of every reference boundary (±)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write report.json and report.md into."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    allow_missing: bool = typer.Option(False, "--allow-missing",
                                       help="Score reference recordings absent from the hypothesis as all missed."),
) -> None:
    from speakembed.pipelines import evaluate as pipeline

    with user_errors():
        report = pipeline.evaluate_diarisation(reference, hypothesis, collar_s=collar, allow_missing=allow_missing)
        if out is not None:
            pipeline.write_report(report, out)
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    _print_table(pipeline, report)
    if out is not None:
        stdout.print(f"report written to {out / 'report.json'} and {out / 'report.md'}")


def _print_table(pipeline, report) -> None:
    from rich import box
    from rich.table import Table

    headers, rows = pipeline.summary_table(report)
    # A light box and no padding keep the 11 columns inside an 80-column terminal.
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False,
                  caption=pipeline.TABLE_NOTE.format(collar_s=report.collar_s), caption_justify="left")
    table.add_column(headers[0], no_wrap=True)
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*rows[-1], style="bold")
    stdout.print(table)
    stdout.print(pipeline.speaker_count_summary(report))
    if report.missing_hypotheses:
        stdout.print(f"[yellow]scored with an empty hypothesis: {', '.join(report.missing_hypotheses)}[/]")
