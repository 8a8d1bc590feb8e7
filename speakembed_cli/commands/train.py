"""`spk train`: train a speaker encoder (GE2E, or Whisper + head with triplet + NT-Xent) on `spk preprocess` output."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speakembed.commands import options
from speakembed.commands.options import check_choice
from speakembed.console import progress_bar, stdout, user_errors

HELP = """Train a speaker encoder (conv-transformer or lstm) with the GE2E loss, a head on the pretrained Whisper-base encoder (--encoder whisper: batch-hard triplet + NT-Xent against an augmented view; the Whisper encoder frozen unless --set model.trainable_layers=K), or with `spk train clone-adapter` the adapter of `spk clone`.

DATA is the output folder of `spk preprocess` (with --frontend whisper for --encoder whisper). Settings come from defaults, then --config FILE (JSON), then the options, then --set KEY=VALUE (repeatable; model.* reaches the encoder arguments, e.g. --set model.num_layers=2). Checkpoints go to OUT/checkpoints every checkpoint_every steps; --resume continues the latest one exactly. Under `torchrun --nproc_per_node K` the processes train data-parallel.

spk train clone-adapter --data CORPUS --out DIR [--encoder lstm]: CORPUS is a folder made by recipes/synthetic/local/make_corpus.py (Kokoro voices and their kokoro_voices.tsv); the adapter learns to map the encoder's embedding of a voice to its Kokoro recipe.

spk train backend --embeddings STORE [--speakers FILE] --out DIR [--lda-dim K] [--wccn]: fit a scoring back-end (the speaker-balanced mean of STORE's voices removed from every embedding; optionally LDA to K dimensions and WCCN) for the encoder that made STORE; DIR/backend.npz is what --backend DIR of spk verify / evaluate uses. Speakers come from FILE (a TSV/CSV with id and speaker columns, or a segments.parquet) or the first folder of each item id."""


def train(
    target: Optional[str] = typer.Argument(None, metavar="[clone-adapter|backend]", help="Omit to train an encoder; clone-adapter trains the adapter of spk clone, backend a scoring back-end."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Folder written by `spk preprocess` (not for backend)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the model and checkpoints."),
    encoder: Optional[str] = typer.Option(None, "--encoder", "-e", help="conv-transformer (default), lstm or whisper."),
    loss: Optional[str] = typer.Option(None, "--loss", help="ge2e or triplet-ntxent; default: ge2e, triplet-ntxent for whisper."),
    whisper_model: Optional[str] = typer.Option(None, "--whisper-model", help="whisper: a local Whisper folder (CTranslate2 or Hugging Face) instead of the packaged Whisper-base."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="JSON file of training settings."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE override (repeatable)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Training steps."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Pretrained encoder to distil from (e.g. lstm)."),
    device: Optional[str] = options.DEVICE,
    resume: bool = typer.Option(False, "--resume", help="Continue the latest checkpoint in OUT."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="backend: the embeddings store (`spk embed` output) to fit on."),
    speakers: Optional[Path] = typer.Option(None, "--speakers", help="backend: TSV/CSV (id, speaker columns) or segments.parquet; default: the first folder of each item id."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="backend: id column of --speakers."),
    speaker_column: Optional[str] = typer.Option(None, "--speaker-column", help="backend: speaker column of --speakers."),
    lda_dim: Optional[int] = typer.Option(None, "--lda-dim", min=1, help="backend: project onto the K most speaker-discriminant directions (LDA)."),
    wccn: bool = typer.Option(False, "--wccn", help="backend: whiten the within-speaker covariance (WCCN)."),
    quiet: bool = options.QUIET,
) -> None:
    """`spk train`: train an encoder (or the clone adapter, or a scoring back-end)."""
    if target is not None:
        check_choice(target, ("clone-adapter", "backend"), "[clone-adapter|backend]")
        if target == "backend":
            from speakembed.commands.train_backend import train_backend

            train_backend(embeddings, out, speakers, id_column, speaker_column, lda_dim, wccn)
            return
        _train_clone_adapter(_required_data(data), out, encoder, steps, device, quiet)
        return
    data = _required_data(data)
    from speakembed.pipelines import train as pipeline
    from speakembed.pipelines.training.config import load_config

    with user_errors(), progress_bar(not quiet) as progress:
        config = load_config(config_file, overrides, encoder=encoder, loss=loss, whisper_model=whisper_model, steps=steps,
                             teacher=teacher, device=device)
        report = pipeline.run(data, out, config=config, resume=resume, progress=progress)
    eer = "n/a" if report.dev_eer is None else f"{100 * report.dev_eer:.2f} %"
    stdout.print(f"trained {config.encoder} for {report.steps} steps ({report.utterances_per_second:.0f} utterances/s): "
                 f"loss {report.final_loss:.3f}, dev EER {eer} -> {report.out_dir}")


def _required_data(data: Path | None) -> Path:
    if data is None:
        raise typer.BadParameter("give --data, the folder to train on", param_hint="--data")
    return data


def _train_clone_adapter(corpus: Path, out: Path, encoder: str | None, steps: int | None, device: str | None, quiet: bool) -> None:
    from speakembed.pipelines import train_clone_adapter as pipeline

    config = pipeline.AdapterConfig(**{key: value for key, value in
                                       {"encoder": encoder, "steps": steps, "device": device}.items() if value is not None})
    with user_errors(), progress_bar(not quiet) as progress:
        report = pipeline.run(corpus, out, config=config, progress=progress)
    stdout.print(f"trained the clone adapter on {report.voices - report.held_out_voices} voices ({report.encoder_id}); "
                 f"held-out voices: weight error {report.held_out_weight_error:.3f}, factor error "
                 f"{report.held_out_factor_error:.3f} -> {report.out_dir}")
