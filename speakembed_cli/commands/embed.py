"""`spk embed`: audio files, folders or a segments manifest -> embeddings store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.console import progress_bar, stdout, user_errors

HELP = """Embed audio into L2-normalised speaker embeddings (a zarr store in OUT).

INPUTS are audio files, folders (searched recursively) or a segments.parquet manifest. Item ids are paths relative to the folder given (or to the current directory for single files), or the manifest's segment ids. Items that cannot be embedded are listed in OUT/failures.parquet."""


def embed(
    inputs: list[Path] = typer.Argument(..., help="Audio files, folders, or a segments.parquet manifest."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (embeddings.zarr, failures.parquet, report.json)."),
    encoder: str = options.ENCODER,
    checkpoint: Optional[Path] = options.CHECKPOINT,
    vad: str = options.VAD,
    device: str = options.DEVICE,
    files_per_batch: int = typer.Option(32, "--files-per-batch", min=1, help="Files decoded and embedded together."),
    max_duration: float = typer.Option(1800.0, "--max-duration", min=1.0, help="Longest item accepted, in seconds."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: embed only the K-th of N interleaved parts (for N parallel jobs); readers combine the parts."),
    quiet: bool = options.QUIET,
) -> None:
    from speakembed.pipelines import embed as pipeline
    from speakembed.pipelines.audio.vad import VAD_METHODS

    options.check_choice(vad, VAD_METHODS, "--vad")
    config = pipeline.EmbedConfig(encoder=encoder, checkpoint=str(checkpoint) if checkpoint else None, vad=vad, device=device, files_per_batch=files_per_batch,
                                  max_duration_s=max_duration, shard=_parse_shard(shard))
    with user_errors(), progress_bar(not quiet) as progress:
        report = pipeline.run(inputs, out, config=config, progress=progress)
    if report.up_to_date:
        stdout.print(f"{report.store_path} is up to date ({report.num_embedded} embeddings); nothing to do")
        return
    failed = report.num_items - report.num_embedded
    stdout.print(
        f"embedded {report.num_embedded}/{report.num_items} items ({report.speech_s:.1f} s of speech) "
        f"with {report.encoder} in {report.elapsed_s:.1f} s -> {report.store_path}"
    )
    if failed:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.failures.items()))
        stdout.print(f"{failed} items not embedded ({reasons}); see {report.failures_path}", style="yellow")
    if report.num_embedded == 0:
        raise typer.Exit(5)


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    part, _, parts = value.partition("/")
    if not (part.isdigit() and parts.isdigit() and 1 <= int(part) <= int(parts)):
        raise typer.BadParameter(f"'{value}' is not K/N with 1 <= K <= N", param_hint="--shard")
    return int(part), int(parts)
