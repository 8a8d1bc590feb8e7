"""`spk evaluate`: score system outputs against references (`spk evaluate diarisation`, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options, scoring_options
from speakembed.console import stdout, user_errors
from speakembed.pipelines.base.outputs import prepare_output_folder

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
    as_json: bool = options.AS_JSON,
    allow_missing: bool = typer.Option(False, "--allow-missing",
                                       help="Score reference recordings absent from the hypothesis as all missed."),
) -> None:
    """`spk evaluate diarisation`: DER, JER and more of RTTMs against a reference."""
    from speakembed.pipelines import evaluate_diarisation as pipeline

    with user_errors():
        if out is not None:  # refuse an unwritable --out before the work, not after
            prepare_output_folder(out)
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
        stdout.print(f"scored with an empty hypothesis: {', '.join(report.missing_hypotheses)}", style="yellow")


VERIFICATION_HELP = """Score speaker verification: EER, minDCF, top-1/top-5 speaker retrieval, intra/inter-speaker distances.

spk evaluate verification --embeddings STORE --trials LIST [--speakers FILE] [--out DIR] [--json]
spk evaluate verification --scores scores.parquet [--embeddings STORE] [--out DIR] [--json]

STORE is the output folder of `spk embed` (or its embeddings.zarr). LIST is any trial list `spk verify`
reads (Kaldi, VoxCeleb, an 'enroll test label' TSV, a trials.parquet); every trial must be labelled.
Trials are scored as `spk verify --trials` scores them (the encoder's back-end, --backend, --cohort,
--calibration): those naming an id that is not in the store (an item that failed to embed) are skipped
and counted; --strict refuses such a list instead. Or give a scores.parquet with a label column, as
`spk verify --trials ... --out` writes. minDCF and actual DCF (of the calibrated LLRs) are normalised,
C_miss = C_fa = 1, at p_target 0.01 and 0.05; Cllr in bits; the score thresholds at the EER point and
at false-accept rate --far.

Retrieval and distances use every valid embedding of STORE with a known speaker, from --speakers FILE
(a TSV/CSV with an id column and a speaker column, or a segments.parquet); without it, the speaker is
the first folder of the item id (`kal/kal_000.flac` -> `kal`), as `spk embed` of a folder laid out as
SPEAKER/UTTERANCE gives. --out DIR writes report.json, report.md, det.png, scores.png, embeddings_2d.png."""


@app.command("verification", help=VERIFICATION_HELP)
def verification(
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", "-e", help="Store (or `spk embed` output folder)."),
    trials: Optional[Path] = typer.Option(None, "--trials", "-t", help="Labelled trial list to score against --embeddings."),
    scores: Optional[Path] = typer.Option(None, "--scores", help="Labelled scores.parquet (instead of --trials)."),
    speakers: Optional[Path] = typer.Option(None, "--speakers", help="TSV/CSV (id, speaker columns) or segments.parquet; "
                                            "default: the first folder of each item id."),
    id_column: Optional[str] = typer.Option(None, "--id-column",
                                            help="Id column of --speakers; default: item_id, utt_id, segment_id or path."),
    speaker_column: Optional[str] = typer.Option(None, "--speaker-column",
                                                 help="Speaker column of --speakers; default: speaker."),
    strict: bool = typer.Option(False, "--strict", help="Refuse trials naming ids not in the store (default: skip them)."),
    backend: str = scoring_options.BACKEND,
    cohort: Optional[Path] = scoring_options.COHORT,
    top_k: int = scoring_options.TOP_K,
    calibration: str = scoring_options.CALIBRATION,
    far: float = typer.Option(0.01, "--far", help="Target false-accept rate (0 < FAR < 1) whose score threshold is reported."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write the report and pictures into."),
    as_json: bool = options.AS_JSON,
) -> None:
    """`spk evaluate verification`: EER, minDCF, Cllr, actual DCF and retrieval of embeddings or scores."""
    from speakembed.pipelines import evaluate_verification as pipeline
    from speakembed.pipelines.verify import VerifyConfig

    _check_verification_inputs(embeddings, trials, scores, speakers)
    config = VerifyConfig(backend=backend, cohort=str(cohort) if cohort else None, top_k=top_k, calibration=calibration)
    with user_errors():
        report = pipeline.evaluate_verification(embeddings=embeddings, trials=trials, scores=scores, speakers=speakers,
                                                id_column=id_column, speaker_column=speaker_column, strict=strict,
                                                out_dir=out, config=config, far=far)  # a bad --out fails before any work
        if out is not None:
            pipeline.write_verification_report(report, out)
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    _print_verification(pipeline, report, out)


def _check_verification_inputs(embeddings, trials, scores, speakers) -> None:
    if trials is not None and scores is not None:
        raise typer.BadParameter("give --trials or --scores, not both", param_hint="--scores")
    if trials is not None and embeddings is None:
        raise typer.BadParameter("--trials needs --embeddings STORE to score them against", param_hint="--trials")
    if embeddings is None and scores is None:
        raise typer.BadParameter("give --embeddings STORE with --trials LIST, or --scores scores.parquet",
                                 param_hint="--embeddings")
    if speakers is not None and embeddings is None:
        raise typer.BadParameter("--speakers labels the embeddings of --embeddings; give it too", param_hint="--speakers")


def _print_verification(pipeline, report, out: Path | None) -> None:
    from rich import box
    from rich.table import Table

    headers, rows = pipeline.verification_table(report)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column(headers[0], no_wrap=True)
    table.add_column(headers[1], justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    stdout.print(table)
    stdout.print(pipeline.VERIFICATION_NOTE, style="dim", highlight=False)
    for note in report.notes:
        stdout.print(note, style="yellow", highlight=False)
    if out is not None:
        stdout.print(f"report written to {out / 'report.json'} and {out / 'report.md'}"
                     + (f", pictures: {', '.join(report.plots)}" if report.plots else ""))


CLONE_HELP = """Measure `spk clone` on real speakers: similarity to the reference, intelligibility, speed.

spk evaluate clone DATA [--speakers kal,slt] [--encoder lstm] [--judge conv-transformer] [--refine N] [--refine-with whisper-head] [--reference-clips K] [--out DIR]

DATA holds one folder of recordings per speaker; the first K recordings of each (default 1) are the
reference, the others its real recordings. Each clone is also identified among the evaluated
speakers: is it, by --judge, nearest its own speaker's other recordings (chance 1/speakers)?
SECS (cosine similarity of speaker embeddings) is measured by --judge, an encoder other than the
one that conditions the TTS, for the clone, for the nearest stock Kokoro voice (the baseline) and
for the speaker's other real recordings (the ceiling). WER: 20 sentences spoken by the clones and
transcribed by Whisper-base offline. Needs the clone extra (pip install 'speakembed\\[clone]')."""


@app.command("clone", help=CLONE_HELP)
def clone(
    data: Path = typer.Argument(..., help="Folder of SPEAKER/recording files."),
    speakers: Optional[str] = typer.Option(None, "--speakers", help="Comma-separated speaker folders (default: all)."),
    encoder: str = typer.Option("lstm", "--encoder", "-e", help="Encoder that conditions the TTS."),
    judge: str = typer.Option("conv-transformer", "--judge", help="Encoder that measures similarity (not --encoder)."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="Clone adapter folder (default: the shipped one)."),
    refine: int = typer.Option(0, "--refine", min=0, help="Voices searched per speaker (see spk clone --refine)."),
    reference_clips: int = typer.Option(1, "--reference-clips", min=1, help="Recordings per speaker that form its reference."),
    refine_with: str = options.REFINE_WITH,
    match_pitch: bool = options.MATCH_PITCH,
    wer: bool = typer.Option(True, "--wer/--no-wer", help="Transcribe the clones with Whisper-base for the WER."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for report.json and report.md."),
    as_json: bool = options.AS_JSON,
    quiet: bool = options.QUIET,
) -> None:
    """`spk evaluate clone`: how close and intelligible clones are."""
    from dataclasses import asdict

    from speakembed.console import progress_bar
    from speakembed.pipelines import evaluate_clone as pipeline

    config = pipeline.CloneEvalConfig(encoder=encoder, judge=judge, adapter=str(adapter) if adapter else None, refine=refine,
                                      refine_with=options.encoder_names(refine_with), match_pitch=match_pitch, wer=wer,
                                      reference_clips=reference_clips)
    names = [name.strip() for name in speakers.split(",") if name.strip()] if speakers else None
    with user_errors(), progress_bar(not quiet) as progress:
        if out is not None:  # refuse an unwritable --out before minutes of synthesis, not after
            prepare_output_folder(out)
        report = pipeline.run(data, names, config=config, progress=progress)
        if out is not None:
            pipeline.write_report(report, out)
    if as_json:
        stdout.print_json(json.dumps(asdict(report)))
        return
    stdout.print(pipeline.markdown(report), highlight=False)
