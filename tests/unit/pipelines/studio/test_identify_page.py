"""Identify & enrol page: enrol voices into the server's speaker database (`spk ui --db`) the way
`spk enrol` does, list them, and identify a clip against them."""

from studio_testing import assert_no_failure, page_app, upload

from speakembed.pipelines.data.speaker_db import open_database


def enrol(app, name, clips):
    app.text_input(key="enrol_name").set_value(name)
    app.file_uploader(key="enrol_clips").set_value(clips)
    return app.run().button(key="enrol_go").click().run()


def test_enrol_then_identify(database):
    app = page_app("identify_page")
    assert app.button(key="identify_go").disabled  # no database yet
    assert app.selectbox(key="enrol_encoder").value == "lstm"
    enrol(app, "alice", [upload("alice1.wav", "A", 3.0), upload("alice2.wav", "A", 3.0)])
    assert_no_failure(app)
    assert [message.value for message in app.success] == ["Enrolled 2 clips as 'alice' (2 in all) (a new database)."]
    enrol(app, "carol", [upload("carol1.wav", "C", 3.0)])
    assert_no_failure(app)
    assert open_database(database).names == ["alice", "carol"]
    assert app.dataframe[-1].value["name"].tolist() == ["alice", "carol"]  # People enrolled

    app.file_uploader(key="identify_clips").set_value([upload("who.wav", "A")])
    app.run().button(key="identify_go").click().run()
    assert_no_failure(app)
    assert "who.wav: alice" in [header.value for header in app.subheader]
    candidates = app.dataframe[0].value
    assert candidates["speaker"].tolist() == ["alice", "carol"] and candidates["rank"].tolist() == [1, 2]
    assert candidates["score"].is_monotonic_decreasing


def test_the_same_recording_cannot_be_two_people():
    app = page_app("identify_page")
    enrol(app, "alice", [upload("one.wav", "A")])
    enrol(app, "bob", [upload("one.wav", "A")])
    assert not app.exception
    assert [message.value for message in app.error] == [
        "Invalid input: one.wav: this recording is already enrolled as 'alice'; one recording cannot be two people "
        "(remove it from them first)"]
