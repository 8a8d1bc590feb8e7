"""`spk diarise`: who spoke when, against reference voices or by clustering."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import database_options, options
from speakembed.commands.database_options import count
from speakembed.console import progress_bar, stdout, user_errors

HELP = """Find who spoke when in one or more recordings.

With --refs (alice.wav bob.wav, or alice=a1.wav alice=a2.wav bob=b.wav for several clips per speaker), or --db voices/ (every person enrolled with `spk enrol`, with the database's encoder), every stretch of speech is given to the closest reference voice, or to 'unknown' when none is close enough. Without --refs the voices are found by clustering; give --num-speakers if you know the count, else it is estimated (bounded by --min-speakers/--max-speakers).

Writes to OUT: <recording>.rttm, diarisation.parquet, similarities.parquet (similarity of every window to every voice), <recording>.png and an interactive <recording>.html with audio playback, failures.parquet and report.json. A recording is named by its file name without the extension; inside the RTTM files, whose fields cannot hold whitespace, spaces in recording and speaker names become '_' (report.json gives each recording's rttm_id).

Each run replaces the previous one in OUT: the .rttm/.png/.html files that the previous run wrote for recordings not in this run are removed; other files are left alone. With several recordings, one that cannot be diarised is listed in failures.parquet and the rest go on; if none can be, the command fails (with the recordings' exit code when they all failed alike, else 5)."""


def diarise(
    ctx: typer.Context,
    recordings: list[Path] = typer.Argument(..., help="Audio files, or folders of audio files (not searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    refs: Optional[list[str]] = typer.Option(None, "--refs", "-r", help="Reference clips: PATH (named by its file name) or NAME=PATH. Repeat the option or list several after it."),
    db: Optional[Path] = typer.Option(None, "--db", help=database_options.DB_HELP + " Its people are the reference voices."),
    num_speakers: Optional[int] = typer.Option(None, "--num-speakers", "-n", min=1, help="Known number of speakers (clustering mode)."),
    min_speakers: int = typer.Option(1, "--min-speakers", min=1, help="Lower bound of the estimated count."),
    max_speakers: int = typer.Option(10, "--max-speakers", min=1, help="Upper bound of the estimated count."),
    unknown_threshold: float = typer.Option(0.2, "--unknown-threshold", help="Reference mode: similarity (cosine after removing half the recording's mean window embedding) below which speech is 'unknown'."),
    cluster_unknown: bool = typer.Option(False, "--cluster-unknown", help="Reference mode: split unknown speech into unknown_1..k."),
    hop: float = typer.Option(0.4, "--hop", min=0.05, help="Hop between analysis windows, in seconds."),
    no_views: bool = typer.Option(False, "--no-views", help="Skip the PNG and HTML views."),
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    vad: str = typer.Option("hybrid", "--vad", help="Voice-activity detection: hybrid (silero + energy edges), silero, energy or none."),
    device: str = options.DEVICE,
    quiet: bool = options.QUIET,
) -> None:
    """`spk diarise`: who spoke when."""
    from speakembed.pipelines import diarise as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    options.check_choice(vad, VAD_METHODS, "--vad")
    config = pipeline.DiariseConfig(
        encoder=database_options.given(ctx, "encoder", encoder) if db else encoder, checkpoint=str(checkpoint) if checkpoint else None, vad=vad, device=device, hop_s=hop, unknown_threshold=unknown_threshold,
        cluster_unknown=cluster_unknown, num_speakers=num_speakers, min_speakers=min_speakers,
        max_speakers=max_speakers, write_views=not no_views,
    )
    with user_errors(), progress_bar(not quiet) as progress:
        report = pipeline.run(recordings, out, refs=refs, database=db, config=config, progress=progress)
    for recording in report.recordings:
        stdout.print(_summary(recording))
    stdout.print(f"{report.mode} mode with {report.encoder} -> {report.out_dir}")
    if report.failures:
        stdout.print(f"{count(report.failures, 'recording')} could not be diarised; see "
                     f"{report.out_dir / 'failures.parquet'}", style="yellow")


def _summary(recording) -> str:
    """One line about one diarised recording."""
    name = recording.recording_id
    if recording.rttm_id != name:
        name += f" (RTTM id {recording.rttm_id})"
    if recording.num_segments == 0:
        return f"{name}: no speech found ({recording.duration_s:.1f} s of audio); wrote empty results"
    rate = recording.elapsed_s / recording.duration_s if recording.duration_s else 0.0
    return (f"{name}: {count(recording.num_segments, 'segment')}, {count(len(recording.speakers), 'speaker')} "
            f"({', '.join(recording.speakers)}), {recording.speech_s:.1f}/{recording.duration_s:.1f} s speech, "
            f"{recording.elapsed_s:.1f} s (RTF {rate:.3f})")
