"""`spk embed`: audio files, folders or a segments manifest -> embeddings store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.console import progress_bar, stderr, stdout, user_errors

HELP = """Embed audio into L2-normalised speaker embeddings (a zarr store in OUT).

INPUTS are audio files, folders (searched recursively), a segments.parquet manifest or a Kaldi wav.scp (with a `segments` file beside it, its utterances). Item ids are paths relative to the folder given (or to the current directory for single files), the manifest's segment ids, or the wav.scp's recording (utterance) ids. Items that cannot be embedded are listed in OUT/failures.parquet; clips in which the VAD finds too little speech are embedded whole (energy-trimmed) and flagged (vad_fallback in the store). The store is written in chunks: an interrupted run, started again with the same inputs and options, resumes from its last complete chunk.

--format npy also writes OUT/embeddings.npy (N x D float32) with OUT/ids.txt (one item id per line, in row order); --format kaldi writes OUT/xvector.ark and OUT/xvector.scp (binary float vectors keyed by item id, whitespace -> '_', as Kaldi and WeSpeaker read them). The zarr store is always written."""


def embed(
    inputs: list[Path] = typer.Argument(..., help="Audio files, folders, a segments.parquet manifest or a Kaldi wav.scp."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (embeddings.zarr, failures.parquet, report.json)."),
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    vad: str = options.VAD,
    device: str = options.DEVICE,
    files_per_batch: int = typer.Option(32, "--files-per-batch", min=1, help="Files decoded and embedded together."),
    max_duration: float = typer.Option(1800.0, "--max-duration", min=1.0, help="Longest item accepted, in seconds."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: embed only the K-th of N interleaved parts (for N parallel jobs); readers combine the parts."),
    chunk_size: int = typer.Option(256, "--chunk-size", min=1, help="Items embedded between two writes of the store: what an interrupted run keeps for the next one."),
    export_format: list[str] = typer.Option(["zarr"], "--format", help="Also write the embeddings as npy (embeddings.npy + ids.txt) "
                                            "or kaldi (xvector.ark + xvector.scp); repeat for both."),
    quiet: bool = options.QUIET,
) -> None:
    """`spk embed`: audio to an embeddings store."""
    from speakembed.pipelines import embed as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS
    from speakembed.pipelines.data.exports import EXPORT_FORMATS

    options.check_choice(vad, VAD_METHODS, "--vad")
    for name in export_format:
        options.check_choice(name, EXPORT_FORMATS, "--format")
    with user_errors(), progress_bar(not quiet) as progress:
        config = pipeline.EmbedConfig(encoder=encoder, checkpoint=str(checkpoint) if checkpoint else None, vad=vad, device=device,
                                      files_per_batch=files_per_batch, max_duration_s=max_duration,
                                      shard=pipeline.parse_shard(shard), chunk_size=chunk_size)
        try:
            report = pipeline.run(inputs, out, config=config, formats=tuple(export_format), progress=progress)
        except KeyboardInterrupt:
            stderr.print("interrupted; the chunks embedded so far are kept: run the same command again to resume", soft_wrap=True)
            raise typer.Exit(130) from None
    exported = f"; exported {', '.join(report.exports)}" if report.exports else ""
    if report.up_to_date:
        stdout.print(f"{report.store_path} is up to date ({report.num_embedded} embeddings); nothing to do{exported}",
                     soft_wrap=True)
        return
    failed = report.num_items - report.num_embedded
    notes = [f"{report.num_reused} reused from the interrupted run"] if report.num_reused else []
    if report.num_vad_fallback:
        notes.append(f"{report.num_vad_fallback} embedded without VAD: it kept too little speech (vad_fallback)")
    stdout.print(
        f"embedded {report.num_embedded}/{report.num_items} items ({report.speech_s:.1f} s of speech) "
        f"with {report.encoder} in {report.elapsed_s:.1f} s -> {report.store_path}"
        + (f" ({'; '.join(notes)})" if notes else "") + exported,
        soft_wrap=True,  # one line a script can grep, paths unbroken
    )
    if failed:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.failures.items()))
        stdout.print(f"{failed} items not embedded ({reasons}); see {report.failures_path}", style="yellow")
    if report.num_embedded == 0:
        raise typer.Exit(5)
