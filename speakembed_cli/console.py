"""What every command shares: one-line errors with exit codes, and rich progress."""

from __future__ import annotations

import contextlib
import errno
import sys
from typing import Iterator

import typer
from rich.console import Console
from rich.text import Text

# No markup parsing: messages carry paths, ids and install hints (`speakembed[clone]`) whose square
# brackets rich would take for tags; colour is given with `style=` or `Text` instead.
stdout = Console(markup=False)
stderr = Console(stderr=True, markup=False)


_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _print_error(message: str) -> None:
    stderr.print(Text.assemble(("error:", "bold red"), f" {message}"), highlight=False, soft_wrap=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's typed errors into `error: ...` on stderr and the error's exit code."""
    from speakembed.pipelines.base.errors import OutputError, SpeakEmbedError

    try:
        yield
    except SpeakEmbedError as error:
        _print_error(str(error))
        raise typer.Exit(error.exit_code) from None
    except OSError as error:
        if error.errno not in _WRITE_ERRNOS:
            raise
        # A write the library did not route through base.outputs (a zarr chunk, a plot backend):
        # still one line and the output exit code, never a traceback.
        _print_error(f"{error.filename or 'output'}: cannot write ({error.strerror}); choose another --out or fix its permissions")
        raise typer.Exit(OutputError.exit_code) from None
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
