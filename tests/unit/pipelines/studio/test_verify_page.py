"""Verify page: two uploaded clips -> the verdict in large type with probability, score and
threshold, the same numbers `spk verify A B --json` prints; a clip that cannot be used gives a
one-line error, never a traceback."""

import json

from studio_testing import assert_no_failure, audio_players, errors, page_app, upload

from helpers import spk


def verify(first, second):
    app = page_app("verify_page")
    assert app.button(key="verify_go").disabled  # nothing to compare yet
    app.file_uploader(key="verify_first").set_value(first)
    app.file_uploader(key="verify_second").set_value(second)
    return app.run().button(key="verify_go").click().run()


def verdict(app) -> str:
    return next(element.value for element in app.get("html") if "spk-verdict" in element.value)


def test_same_voice_is_verified_with_the_numbers_of_spk_verify(tmp_path):
    first, second = upload("a1.wav", "A"), upload("a2.wav", "A")
    app = verify(first, second)
    assert_no_failure(app)
    assert ">Same speaker<" in verdict(app) and len(audio_players(app)) == 2
    metrics = {metric.label: metric.value for metric in app.metric}
    for path, (_, data, _) in zip((tmp_path / "a1.wav", tmp_path / "a2.wav"), (first, second)):
        path.write_bytes(data)
    cli = json.loads(spk("verify", tmp_path / "a1.wav", tmp_path / "a2.wav", "--json").output)
    assert metrics == {"Probability of same speaker": f"{cli['probability']:.3f}", "Score": f"{cli['score']:.4f}",
                       "Threshold": f"{cli['threshold']:.4f}"}


def test_different_voices_and_a_corrupt_clip(tmp_path):
    app = verify(upload("a1.wav", "A"), upload("c1.wav", "C"))
    assert_no_failure(app)
    assert ">Different speakers<" in verdict(app)

    app = verify(upload("a1.wav", "A"), ("corrupt.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"))
    assert not app.exception
    assert len(errors(app)) == 1 and errors(app)[0].startswith("Unreadable audio: corrupt.wav")
    assert "\n" not in errors(app)[0] and "Traceback" not in errors(app)[0]
