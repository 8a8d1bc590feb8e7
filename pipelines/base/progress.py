"""The progress callback pipelines accept: `progress(step, completed=, total=)`; None is silent."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """A progress callback: `progress(step, completed=, total=)`; the CLI draws it, tests pass None."""
    def __call__(self, step: str, *, completed: int, total: int) -> None: ...


def report_progress(progress: Progress | None, step: str, completed: int, total: int) -> None:
    """Call `progress(step, completed=, total=)` when a callback is given; do nothing for None."""
    if progress is not None:
        progress(step, completed=completed, total=total)
