"""What every command shares: one-line errors with exit codes, and rich progress."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import typer
from rich.console import Console
from rich.text import Text

# No markup parsing: messages carry paths, ids and install hints (`speakembed[clone]`) whose square
# brackets rich would take for tags; colour is given with `style=` or `Text` instead.
stdout = Console(markup=False)
stderr = Console(stderr=True, markup=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's typed errors into `error: ...` on stderr and the error's exit code."""
    from speakembed.pipelines.base.errors import SpeakEmbedError

    try:
        yield
    except SpeakEmbedError as error:
        stderr.print(Text.assemble(("error:", "bold red"), f" {error}"), highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        stderr.print("interrupted; nothing half-written was left behind")
        raise typer.Exit(130) from None


@contextlib.contextmanager
def progress_bar(enabled: bool = True):
    """A progress callback `(step, completed=, total=)` drawn with rich on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(step: str, *, completed: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=completed, total=total)

        yield update
