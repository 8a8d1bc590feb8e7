"""`spk train`: train a GE2E speaker encoder on `spk preprocess` output."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from speakembed.console import progress_bar, stdout, user_errors

HELP = """Train a speaker encoder (conv-transformer or lstm) with the GE2E loss.

DATA is the output folder of `spk preprocess`. Settings come from defaults, then --config FILE (JSON), then the options, then --set KEY=VALUE (repeatable; model.* reaches the encoder arguments, e.g. --set model.num_layers=2). Checkpoints go to OUT/checkpoints every checkpoint_every steps; --resume continues the latest one exactly. Under `torchrun --nproc_per_node K` the processes train data-parallel."""


def train(
    data: Path = typer.Option(..., "--data", "-d", help="Folder written by `spk preprocess`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the model and checkpoints."),
    encoder: Optional[str] = typer.Option(None, "--encoder", "-e", help="conv-transformer (default) or lstm."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="JSON file of training settings."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE override (repeatable)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Training steps."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Pretrained encoder to distil from (e.g. lstm)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N; default: CUDA when present."),
    resume: bool = typer.Option(False, "--resume", help="Continue the latest checkpoint in OUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    from speakembed.pipelines import train as pipeline
    from speakembed.pipelines.train_config import load_config

    with user_errors(), progress_bar(not quiet) as progress:
        config = load_config(config_file, overrides, encoder=encoder, steps=steps, teacher=teacher, device=device)
        report = pipeline.run(data, out, config=config, resume=resume, progress=progress)
    eer = "n/a" if report.dev_eer is None else f"{100 * report.dev_eer:.2f} %"
    stdout.print(f"trained {config.encoder} for {report.steps} steps ({report.utterances_per_second:.0f} utterances/s): "
                 f"loss {report.final_loss:.3f}, dev EER {eer} -> {report.out_dir}")
