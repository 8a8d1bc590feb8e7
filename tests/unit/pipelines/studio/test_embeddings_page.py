"""Embeddings page: clips of several voices (an uploaded folder, a zip, or loose files named
speaker_*) -> embedded by `spk embed`'s pipeline, a PCA projection coloured by speaker and the
similarity matrix; the voice named by the folder holding each clip."""

import io
import zipfile
from pathlib import PurePosixPath

import pytest
from studio_testing import assert_no_failure, errors, page_app, upload

from speakembed.pipelines.studio.embeddings_page import speaker_of

VOICES = {"A": 2, "C": 2, "D": 2}  # voice -> clips


def folder_uploads() -> list[tuple[str, bytes, str]]:
    """What a browser sends for a picked folder: each file named by its path inside it."""
    return [upload(f"clips/{voice}/{voice.lower()}{number}.wav", voice) for voice, clips in VOICES.items()
            for number in range(clips)]


def charts(app) -> list:
    return list(app.get("vega_lite_chart"))


def test_a_folder_of_speaker_folders():
    app = page_app("embeddings_page")
    app.file_uploader(key="embeddings_folder").set_value(folder_uploads())
    app.run().button(key="embeddings_go").click().run()
    assert_no_failure(app)
    view = app.session_state["embeddings_result"]
    assert sorted(view.speakers.tolist()) == ["A", "A", "C", "C", "D", "D"] and view.points.shape == (6, 2)
    assert len(charts(app)) == 2
    metrics = {metric.label: metric.value for metric in app.metric}
    assert float(metrics["Mean cosine, same speaker"]) > float(metrics["Mean cosine, different speakers"])
    assert metrics["Nearest clip is the same speaker"].endswith("%")


def test_a_zip_and_loose_files_and_what_is_not_audio():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, _ in folder_uploads()[:4]:
            archive.writestr(name.removeprefix("clips/"), data)
        archive.writestr("notes.txt", "not a clip")
    app = page_app("embeddings_page")
    app.radio(key="embeddings_source").set_value("A zip archive or several clips")
    app.run().file_uploader(key="embeddings_files").set_value(
        [("voices.zip", buffer.getvalue(), "application/zip"), upload("D_1.wav", "D"), upload("D_2.wav", "D")])
    app.run().button(key="embeddings_go").click().run()
    assert_no_failure(app)
    assert sorted(app.session_state["embeddings_result"].speakers.tolist()) == ["A", "A", "C", "C", "D", "D"]

    app.file_uploader(key="embeddings_files").set_value([("broken.zip", b"PK not really", "application/zip")])
    app.run().button(key="embeddings_go").click().run()
    assert errors(app) == ["Unreadable audio: broken.zip: not a zip archive"]


@pytest.mark.parametrize("path, speaker", [("clips/alice/1.wav", "alice"), ("alice/x_1.wav", "alice"),
                                           ("bob_2.flac", "bob"), ("carol.wav", "carol")])
def test_the_speaker_of_a_clip(path, speaker):
    assert speaker_of(PurePosixPath(path)) == speaker
