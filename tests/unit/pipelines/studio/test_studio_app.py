"""The studio app (pipelines/ui.py) and what its pages share (pipelines/studio/session.py): the
sidebar navigation between the pages, every page's first view, one-line errors, the session's
temporary folder and the zip unpacking."""

import gc
import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from studio_testing import TIMEOUT_S, assert_no_failure, errors, page_app, upload

from helpers import REPOSITORY
from speakembed.pipelines.base import errors as typed
from speakembed.pipelines.studio import session

PAGE_MODULES = ["clone_page", "compare_page", "verify_page", "identify_page", "diarise_page", "embeddings_page"]


def test_the_app_opens_on_the_clone_page_with_every_page_in_the_sidebar(database):
    from speakembed.pipelines import ui

    app = AppTest.from_file(str(REPOSITORY / "pipelines" / "ui.py"), default_timeout=TIMEOUT_S).run()
    assert_no_failure(app)
    assert [title.value for title in app.title] == ["Clone a voice"]
    assert str(database) in app.sidebar.caption[0].value
    assert [module.__name__.rsplit(".", 1)[1] for module in ui.PAGES] == PAGE_MODULES
    assert len({module.URL_PATH for module in ui.PAGES}) == len(ui.PAGES)


@pytest.mark.parametrize("module", PAGE_MODULES)
def test_every_page_opens_without_inputs(module):
    app = page_app(module)
    assert_no_failure(app)
    assert len(app.title) == 1 and app.button[0].disabled  # nothing to run on yet


ERROR_SCRIPT = """
import errno
from speakembed.pipelines.base import errors
from speakembed.pipelines.studio.session import shown_errors

for error in [errors.UsageError("bad"), errors.InputNotFoundError("gone"), errors.UnreadableAudioError("garbled"),
              errors.UnusableAudioError("silent", "silent"), errors.ManifestError("schema"),
              errors.MissingDependencyError("pip install x"), errors.OutputError("full"),
              PermissionError(errno.EACCES, "Permission denied", "/out/x.wav"), ValueError("boom\\nsecond line")]:
    with shown_errors():
        raise error
"""


def test_errors_are_one_line_messages():
    app = AppTest.from_string(ERROR_SCRIPT, default_timeout=TIMEOUT_S).run()
    assert not app.exception
    assert errors(app) == ["Invalid input: bad", "Not found: gone", "Unreadable audio: garbled", "Unusable audio: silent",
                           "Invalid file or database: schema", "Missing dependency: pip install x", "Cannot write: full",
                           "Cannot write: /out/x.wav (Permission denied)",
                           "Unexpected error (please report it): ValueError: boom"]
    assert set(session.ERROR_TITLES) == {kind for kind in vars(typed).values()
                                         if isinstance(kind, type) and issubclass(kind, typed.SpeakEmbedError)
                                         and kind is not typed.SpeakEmbedError}


def test_the_session_folder_goes_with_the_session():
    app = page_app("verify_page")
    app.file_uploader(key="verify_first").set_value(upload("a1.wav"))
    app.run()
    folder = Path(app.session_state["_studio_session_folder"].name)
    assert folder.parent == session.process_folder() and (folder / "uploads").is_dir()
    assert [path.name for path in folder.rglob("*.wav")] == ["a1.wav"]
    del app
    gc.collect()
    assert not folder.exists()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("member", ["../outside.wav", "/etc/outside.wav", "a/../../outside.wav"])
def test_a_zip_member_outside_the_archive_is_refused(tmp_path, member):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_of({"fine.wav": b"x", member: b"x"}))
    with pytest.raises(typed.UsageError, match="points outside the archive"):
        session.unpack_zip(archive, tmp_path / "out")
    assert not (tmp_path / "outside.wav").exists()


def test_a_zip_gives_its_audio_files_only(tmp_path):
    archive = tmp_path / "clips.zip"
    archive.write_bytes(zip_of({"alice/1.wav": b"x", "alice/notes.txt": b"x", "__MACOSX/._1.wav": b"x",
                                "bob/2.FLAC": b"x"}))
    found = session.unpack_zip(archive, tmp_path / "out")
    assert [path.as_posix() for path in found] == ["alice/1.wav", "bob/2.FLAC"]
    assert sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*.*")) == \
        ["alice/1.wav", "bob/2.FLAC"]
