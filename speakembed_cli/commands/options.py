"""Options shared by several commands, declared once."""

from __future__ import annotations

import typer

ENCODER = typer.Option("lstm", "--encoder", "-e", help="Speaker encoder: lstm (pretrained GE2E).")
VAD = typer.Option("silero", "--vad", help="Voice-activity detection: silero, energy or none.")
DEVICE = typer.Option(None, "--device", help="torch device (cpu, cuda, cuda:1); default: CUDA when present.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"'{value}' is not one of: {', '.join(choices)}", param_hint=option)
    return value
