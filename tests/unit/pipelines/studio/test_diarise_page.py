"""Diarise page: a meeting and one reference clip per voice -> the interactive page `spk diarise`
writes (shown in an iframe), a speaker table, RTTM / parquet downloads; with the speaker database
as the references too."""

import io

import numpy as np
import soundfile
import synth
from studio_testing import RATE, assert_no_failure, page_app, upload

from speakembed.pipelines.data.rttm import read_rttm

TURNS = ["A", "C", "A", "C"]


def meeting_upload() -> tuple[str, bytes, str]:
    """Alternating 3 s turns of voices A and C with 0.6 s pauses (14.4 s), as an uploaded WAV."""
    audio = [part for index, speaker in enumerate(TURNS)
             for part in (synth.speaker_voice(speaker, 3.0, RATE, seed=index), np.zeros(int(0.6 * RATE), np.float32))]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.concatenate(audio), RATE, format="WAV")
    return "meet.wav", buffer.getvalue(), "audio/wav"


def iframes(app) -> list:
    return list(app.get("iframe"))


def test_reference_clips_give_the_timeline_table_and_downloads():
    app = page_app("diarise_page")
    assert app.button(key="diarise_go").disabled
    app.file_uploader(key="diarise_meeting").set_value(meeting_upload())
    app.file_uploader(key="diarise_refs").set_value([upload("A.wav", "A", 4.0), upload("C.wav", "C", 4.0)])
    app.run().button(key="diarise_go").click().run()
    assert_no_failure(app)
    assert len(iframes(app)) == 1
    result = app.session_state["diarise_result"]
    table = app.dataframe[0].value.set_index("speaker")
    per_speaker = result.segments.groupby("speaker")["duration_s"]
    assert set(table.index) == {"A", "C"} and (table["turns"] >= 2).all()
    assert np.allclose(table["speech s"], per_speaker.sum()[table.index]) and np.isclose(table["share %"].sum(), 100)
    downloads = {button.label for button in app.get("download_button")}
    assert downloads == {"Download meet.rttm", "Download diarisation.parquet", "Download similarities.parquet",
                         "Download meet.html"}
    page = result.output("meet.html").read_text()
    assert "<audio" in page and "spk-data" in page  # the page `spk diarise` writes, with its player and data
    assert set(read_rttm(result.output("meet.rttm"))["speaker"]) == {"A", "C"}


def test_the_speaker_database_as_references(database):
    from speakembed.pipelines import enrol

    for name, speaker in (("alice", "A"), ("carol", "C")):
        path = database.parent / f"{name}.wav"
        path.write_bytes(upload(f"{name}.wav", speaker, 4.0)[1])
        enrol.run(database, name, [path])
    app = page_app("diarise_page")
    app.radio(key="diarise_mode").set_value("Speaker database")
    app.file_uploader(key="diarise_meeting").set_value(meeting_upload())
    app.run().button(key="diarise_go").click().run()
    assert_no_failure(app)
    assert set(app.dataframe[0].value["speaker"]) == {"alice", "carol"} and len(iframes(app)) == 1
