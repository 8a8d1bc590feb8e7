"""The one output policy every command follows.

- Output folders (`--out DIR`) are created with their parents; an `--out` that names an existing
  file is refused. Both checks, and a probe write, happen before any work starts, so a command
  never computes for minutes and then fails to save.
- A single-file output (`spk clone --out a/b.wav`) gets its folder created likewise; an existing
  folder of that name is refused.
- Every file is written atomically: to a temporary name in the same folder, flushed and fsync'ed,
  then renamed into place; the temporary is removed when anything fails. A reader therefore sees
  the old file or the new one, never half of one.
- Any OS error while writing becomes an `OutputError` (exit code 8) naming the path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from speakembed.pipelines.base.errors import OutputError

T = TypeVar("T")


def prepare_output_folder(out_dir: str | Path) -> Path:
    """Create the output folder `out_dir` (and its parents) and check that it can be written.

    Raises OutputError when `out_dir` is an existing file, lies under a file, or cannot be written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder; give a folder for --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _output_error(out_dir, error, "cannot create the output folder") from None
    _probe_writable(out_dir)
    return out_dir


def prepare_output_file(path: str | Path) -> Path:
    """Create the folder of the single-file output `path` and check that it can be written.

    Raises OutputError when `path` is an existing folder or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name for --out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _output_error(path.parent, error, "cannot create the folder for the output") from None
    _probe_writable(path.parent)
    return path


def write_atomically(path: str | Path, write: Callable[[BinaryIO], T]) -> T:
    """Call `write(binary_file)` on a temporary file beside `path`, fsync it and rename it to `path`.

    Returns what `write` returned. The temporary is removed if anything fails; OS errors become
    OutputError. The parent folder must exist (see `prepare_output_folder`).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: the folder to write {path.name} into does not exist; create it first")
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        temporary = None
        return result
    except OSError as error:
        raise _output_error(path, error, "cannot write") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `write_atomically`); return `path`."""
    write_atomically(path, lambda out: out.write(data))
    return Path(path)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write `text` as UTF-8 to `path` atomically (see `write_atomically`); return `path`."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def replace_folder_atomically(folder: str | Path, fill: Callable[[Path], object]) -> Path:
    """Fill a temporary sibling folder with `fill(temporary)`, then swap it in for `folder`, so a
    killed process never leaves a half-written folder behind; the temporary is removed on failure."""
    folder = Path(folder)
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir(parents=True)
        fill(temporary)
        swap_in_folder(temporary, folder)
    except OSError as error:
        raise _output_error(folder, error, "cannot write") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def swap_in_folder(source: Path, target: Path) -> None:
    """Move the folder `source` to `target`; an existing `target` is kept aside until the move
    succeeded, then deleted (restored if the move failed)."""
    if not target.exists():
        os.replace(source, target)
        return
    backup = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, backup)
    try:
        os.replace(source, target)
    except OSError:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder`: permission bits alone say nothing to root, and an
    immutable (`chattr +i`) or read-only-mounted folder only shows itself on a real write."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".spk-write-check.")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise _output_error(folder, error, "cannot write into the output folder") from None


def _output_error(path: Path, error: OSError, what: str) -> OutputError:
    reason = error.strerror or type(error).__name__
    return OutputError(f"{path}: {what} ({reason}); choose another --out or fix its permissions")
