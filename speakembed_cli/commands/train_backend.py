"""`spk train backend`: fit a scoring back-end on an embeddings store (called by `spk train`)."""

from __future__ import annotations

from pathlib import Path

import typer

from speakembed.console import stderr, stdout, user_errors


def train_backend(embeddings: Path | None, out: Path, speakers: Path | None, id_column: str | None,
                  speaker_column: str | None, lda_dim: int | None, wccn: bool) -> None:
    """Fit OUT/backend.npz on `embeddings` and print what was fitted."""
    from speakembed.pipelines import train_backend as pipeline

    if embeddings is None:
        raise typer.BadParameter("spk train backend needs --embeddings STORE (the output of `spk embed`)",
                                 param_hint="--embeddings")
    with user_errors():
        report = pipeline.run(embeddings, out, speakers=speakers, id_column=id_column, speaker_column=speaker_column,
                              config=pipeline.BackendConfig(lda_dim=lda_dim, wccn=wccn))
    speakers_text = "" if report.speakers is None else f" of {report.speakers} speakers"
    stdout.print(f"fitted {report.backend_id} for {report.encoder} on {report.embeddings} embeddings{speakers_text} "
                 f"({report.output_size}-d scores) -> {report.path}", highlight=False)
    for note in report.notes:
        stderr.print(f"note: {note}", style="yellow", highlight=False)
