"""Typed errors raised by library code; the CLI maps each class to an exit code.

Every error carries a one-line message that names the offending item and says what to do.
A bad item inside a batch is not raised: it is recorded in failures.parquet (see `Failure`).
"""

from __future__ import annotations


class SpeakEmbedError(Exception):
    """Base class. `exit_code` is the process exit status the CLI uses for this error."""

    exit_code = 1


class UsageError(SpeakEmbedError):
    """An option names something that does not exist (an unknown encoder, ...)."""

    exit_code = 2


class InputNotFoundError(SpeakEmbedError):
    """A file or folder named by the user does not exist, or a folder holds no audio."""

    exit_code = 3


class UnreadableAudioError(SpeakEmbedError):
    """The file exists but cannot be decoded (corrupt, unsupported format, missing decoder)."""

    exit_code = 4


class UnusableAudioError(SpeakEmbedError):
    """The audio decodes but cannot be embedded: empty, silent or shorter than the minimum."""

    exit_code = 5

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # one of FAILURE_REASONS


class ManifestError(SpeakEmbedError):
    """A parquet manifest, trial list or store has the wrong schema, version or content."""

    exit_code = 6


class MissingDependencyError(SpeakEmbedError):
    """An optional package or program is needed; the message says how to install it."""

    exit_code = 7


class OutputError(SpeakEmbedError):
    """The output location cannot be written (missing parent folder, not a directory, ...)."""

    exit_code = 8


FAILURE_REASONS = ("missing", "unreadable", "empty", "silent", "no_speech", "too_short", "too_long")

EXIT_CODES = {
    0: "success",
    1: "unexpected internal error (please report it)",
    2: "invalid command-line usage (unknown option, encoder or value)",
    3: "input not found (missing file or folder, folder without audio)",
    4: "unreadable audio (corrupt file, unsupported format, decoder missing)",
    5: "unusable audio (empty, silent, no speech, too short / too long), or nothing could be embedded",
    6: "invalid manifest, trial list or store (schema, version, unknown ids)",
    7: "missing optional dependency (the message says what to install)",
    8: "output cannot be written (an existing file where a folder must be, no permission, disk full)",
    130: "interrupted (Ctrl-C); nothing half-written is left behind",
}
"""Every exit status `spk` uses, as the README's exit-code table lists them (a test keeps the two equal)."""


MAX_IDS_IN_MESSAGE = 10


def some_ids(ids: list[str], limit: int = MAX_IDS_IN_MESSAGE) -> str:
    """The first `limit` of `ids` joined for a one-line message, with how many more were left out."""
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
