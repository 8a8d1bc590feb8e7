"""What every studio page shares: the session's temporary folder, uploads saved into it, errors
shown as one-line messages, a progress bar fed by the pipelines' progress callback, and the
speaker database the server was started with.

Files: every upload and every output of a browser session lives in its own temporary folder under
one folder per server process (`speakembed-studio-*` in the system temporary folder). The
session's folder is removed when Streamlit drops the session's state (the tab is closed and the
session expires), and the process's folder, with whatever is left in it, when the server exits.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import logging
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator

import streamlit as st

from speakembed.pipelines.audio.decode import AUDIO_EXTENSIONS
from speakembed.pipelines.base.errors import (InputNotFoundError, ManifestError, MissingDependencyError, OutputError,
                                              SpeakEmbedError, UnreadableAudioError, UnusableAudioError, UsageError)

DATABASE_ENV = "SPK_UI_DB"  # the speaker database folder (`spk ui --db`), set by the command
DEFAULT_DATABASE = "voices"
PROCESS_PREFIX = "speakembed-studio-"
AUDIO_TYPES = sorted(extension.lstrip(".") for extension in AUDIO_EXTENSIONS)  # what the uploaders accept
MAX_UNZIPPED_BYTES = 2 * 1024**3  # a zip that would unpack to more is refused (a zip bomb, or a mistake)
_FOLDER_KEY = "_studio_session_folder"
_UPLOADS = "uploads"
_LOG = logging.getLogger("speakembed.studio")

# A one-line heading for each typed error (pipelines/base/errors.py), as the CLI's exit codes tell them apart.
ERROR_TITLES = {
    UsageError: "Invalid input",
    InputNotFoundError: "Not found",
    UnreadableAudioError: "Unreadable audio",
    UnusableAudioError: "Unusable audio",
    ManifestError: "Invalid file or database",
    MissingDependencyError: "Missing dependency",
    OutputError: "Cannot write",
}
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


@functools.cache
def process_folder() -> Path:
    """This server process's temporary folder, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix=PROCESS_PREFIX))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def session_folder() -> Path:
    """This browser session's temporary folder (made on first use). A TemporaryDirectory held in
    the session state: its finaliser removes the folder when the state is dropped."""
    holder = st.session_state.get(_FOLDER_KEY)
    if holder is None:
        holder = tempfile.TemporaryDirectory(prefix="session-", dir=process_folder())
        st.session_state[_FOLDER_KEY] = holder
    return Path(holder.name)


def work_folder(name: str) -> Path:
    """A fresh, empty folder `name` in the session folder (the previous one of that name is removed)."""
    folder = session_folder() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def database_path() -> Path:
    """The speaker database folder of this server (`spk ui --db`; `voices` in the working folder by default)."""
    return Path(os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE).absolute()


def save_upload(upload) -> Path:
    """The file of an upload (st.file_uploader / st.audio_input), written once into the session
    folder under its own name (uploads/<file id>/<name>); the same upload keeps its path on reruns."""
    path = session_folder() / _UPLOADS / _safe_component(upload.file_id) / _safe_component(PurePosixPath(upload.name).name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(upload.getvalue())
    return path


def unpack_zip(path: Path, folder: Path) -> list[PurePosixPath]:
    """Unpack the zip archive `path` into `folder`; returns the relative paths of its audio files.
    UnreadableAudioError for a file that is not a zip; UsageError for members that would land
    outside `folder` or for an archive that unpacks to more than MAX_UNZIPPED_BYTES."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UnreadableAudioError(f"{path.name}: not a zip archive") from None
    with archive:
        members = [member for member in archive.infolist() if not member.is_dir()]
        if sum(member.file_size for member in members) > MAX_UNZIPPED_BYTES:
            raise UsageError(f"{path.name}: unpacks to more than {MAX_UNZIPPED_BYTES // 1024**3} GB; upload fewer clips")
        relative = []
        for member in members:
            name = PurePosixPath(member.filename)
            if name.is_absolute() or ".." in name.parts:
                raise UsageError(f"{path.name}: member '{member.filename}' points outside the archive")
            if name.suffix.lower() in AUDIO_EXTENSIONS and not name.name.startswith("."):
                archive.extract(member, folder)
                relative.append(name)
    return relative


def _safe_component(name: str) -> str:
    """`name` as one harmless path component (no separators, not '.' or '..')."""
    cleaned = re.sub(r"[/\\\x00]", "_", name).strip()
    return cleaned if cleaned not in ("", ".", "..") else "upload"


@contextlib.contextmanager
def shown_errors() -> Iterator[None]:
    """Show an error raised in the block as a one-line st.error instead of a traceback: the typed
    errors with their heading and message; an OS write error as the CLI tells it; anything else
    as an unexpected error (its traceback goes to the server log only)."""
    try:
        yield
    except SpeakEmbedError as error:
        st.error(f"{_title(error)}: {readable(str(error))}")
    except OSError as error:
        if error.errno not in _WRITE_ERRNOS:
            _unexpected(error)
        else:
            st.error(f"Cannot write: {readable(str(error.filename or 'output'))} ({error.strerror})")
    except Exception as error:  # a bug: one line in the page, the traceback in the server log
        _unexpected(error)


def _title(error: SpeakEmbedError) -> str:
    return next((title for kind, title in ERROR_TITLES.items() if isinstance(error, kind)), "Error")


def _unexpected(error: Exception) -> None:
    _LOG.exception("unexpected error in the studio")
    first_line = (str(error).splitlines() or [""])[0][:300]
    st.error(f"Unexpected error (please report it): {type(error).__name__}: {readable(first_line)}")


def readable(message: str) -> str:
    """`message` with the session's temporary paths shortened to the uploaded file names."""
    folder = st.session_state.get(_FOLDER_KEY)
    if folder is None:
        return message
    uploads = re.escape(f"{folder.name}{os.sep}{_UPLOADS}{os.sep}") + r"[^/\\]+[/\\]"
    message = re.sub(uploads, "", message)
    return message.replace(f"{folder.name}{os.sep}", "")


@contextlib.contextmanager
def progress_bar(text: str = "working") -> Iterator:
    """A progress callback `(step, completed=, total=)` (pipelines/base/progress.py) drawn as an
    st.progress bar, removed when the block ends."""
    bar = st.progress(0.0, text=text)

    def update(step: str, *, completed: int, total: int) -> None:
        fraction = min(1.0, completed / total) if total else 0.0
        bar.progress(fraction, text=f"{step}: {completed}/{total}" if total else step)

    try:
        yield update
    finally:
        bar.empty()


def count(number: int, noun: str) -> str:
    """'1 clip', '2 clips'."""
    return f"{number} {noun}" + ("" if number == 1 else "s")
