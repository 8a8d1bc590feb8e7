"""What the commands that use a speaker database (enrol, identify, diarise --db) share."""

from __future__ import annotations

import typer

DB_HELP = "Speaker database folder (made by `spk enrol`)."


def given(ctx: typer.Context, parameter: str, value):
    """`value` when the user gave the option `parameter` (the function argument's name), None when
    it kept its default: then the database's own setting (encoder, back-end) applies."""
    source = ctx.get_parameter_source(parameter)
    return None if source is None or source.name == "DEFAULT" else value


def count(number: int, noun: str) -> str:
    """'1 clip', '2 clips'."""
    return f"{number} {noun}" + ("" if number == 1 else "s")
