"""Options shared by several commands, declared once."""

from __future__ import annotations

import typer

ENCODER = typer.Option("lstm", "--encoder", "-e", help="Speaker encoder: lstm (pretrained GE2E), conv-transformer (shipped, faster, trained on synthetic voices), whisper (frozen Whisper-base baseline, 512-d) or whisper-head (Whisper-base + trained head); the whisper ones need speakembed\\[whisper].")
CHECKPOINT = typer.Option(None, "--checkpoint", help="Checkpoint folder written by `spk train` (instead of --encoder's pretrained weights).")
VAD = typer.Option("silero", "--vad", help="Voice-activity detection: silero, energy, hybrid (both) or none.")
DEVICE = typer.Option(None, "--device", help="torch device (cpu, cuda, cuda:1); default: CUDA when present.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
AS_JSON = typer.Option(False, "--json", help="Print the result as JSON.")
REFINE_WITH = typer.Option("whisper-head", "--refine-with", help="Comma-separated encoders that must also find a --refine candidate like the reference (the search keeps the voice the least convinced encoder likes best); '' for the conditioning encoder alone.")


def encoder_names(text: str) -> tuple[str, ...]:
    """--refine-with's comma-separated encoder names as a tuple (empty for '')."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


MATCH_PITCH = typer.Option(False, "--match-pitch/--no-match-pitch", help="Also shift the clone's median pitch to the reference's (PSOLA, formants kept; off by default: it lowered the measured similarity).")


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    """`value` if it is one of `choices`, else a click usage error naming `option` (exit 2)."""
    if value not in choices:
        raise typer.BadParameter(f"'{value}' is not one of: {', '.join(choices)}", param_hint=option)
    return value


def expand_multi_value(args: list[str], names: set[str]) -> list[str]:
    """Let `--refs a.wav b.wav` mean `--refs a.wav --refs b.wav` (click options take one value
    each): values after a listed option, up to the next option, are given to it one by one."""
    expanded: list[str] = []
    current = None
    for arg in args:
        if arg == "--":
            current = None
        elif arg.startswith("-") and len(arg) > 1:
            current = arg if arg in names else None
        elif current is not None and expanded[-1] != current:
            expanded.append(current)
        expanded.append(arg)
    return expanded


def multi_value_command(*names: str):
    """A Typer command class whose options `names` accept several values after one flag."""
    from typer.core import TyperCommand

    class MultiValueCommand(TyperCommand):
        def parse_args(self, ctx, args):
            return super().parse_args(ctx, expand_multi_value(list(args), set(names)))

    return MultiValueCommand
