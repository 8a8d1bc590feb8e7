"""Plain helpers of the studio tests (the fixtures are in conftest.py): synthetic clips as the bytes a
browser uploads, a studio page under Streamlit's AppTest, and checks of a page's state."""

from __future__ import annotations

import io
import zlib

import soundfile
import synth
from streamlit.testing.v1 import AppTest

RATE = 16000
TIMEOUT_S = 300  # one script run; clones and diarisations take seconds, more on a loaded machine


def wav_bytes(speaker: str, seconds: float = 2.5, seed: int = 0) -> bytes:
    """A 16 kHz 16-bit WAV of a synthetic voice (synth.SPEAKERS), as bytes."""
    buffer = io.BytesIO()
    soundfile.write(buffer, synth.speaker_voice(speaker, seconds, RATE, seed), RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def upload(name: str, speaker: str = "A", seconds: float = 2.5) -> tuple[str, bytes, str]:
    """(name, WAV bytes, mime), what FileUploader.set_value takes; the seed comes from the name, so
    two names are two utterances of the voice."""
    return name, wav_bytes(speaker, seconds, zlib.crc32(name.encode())), "audio/wav"


def page_app(module: str) -> AppTest:
    """An AppTest of the studio page `module` (pipelines/studio/<module>.py) alone, run once."""
    script = f"from speakembed.pipelines.studio import {module}\n{module}.render()\n"
    return AppTest.from_string(script, default_timeout=TIMEOUT_S).run()


def assert_no_failure(app: AppTest) -> None:
    """No exception and no error message in the page."""
    assert not app.exception, [element.value for element in app.exception]
    assert not app.error, [element.value for element in app.error]


def audio_players(app: AppTest) -> list:
    """The page's st.audio elements."""
    return list(app.get("audio"))


def errors(app: AppTest) -> list[str]:
    """The page's st.error messages."""
    return [element.value for element in app.error]
