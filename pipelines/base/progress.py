"""The progress callback pipelines accept: `progress(step, completed=, total=)`; None is silent."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, *, completed: int, total: int) -> None: ...


def report_progress(progress: Progress | None, step: str, completed: int, total: int) -> None:
    if progress is not None:
        progress(step, completed=completed, total=total)
