"""`spk ui` in a real browser: the test starts the server on a free port, opens it in headless Debian
chromium (Playwright drives /usr/bin/chromium; its own browser download is never used), uploads a
clip pair on the Verify page and waits for the verdict, fills the Identify, Diarise and Embeddings
pages, screenshots every page into its temporary folder and checks each shot, then stops the
server and checks that nothing listens on the port and that the server's temporary files are gone.

SPK_UI_SCREENSHOTS=1 also runs the two slow pages (Clone: Kokoro; Compare: every encoder, Whisper
included) and writes the shots to docs/ui-<page>.png, the README's pictures:
    SPK_UI_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_ui_browser.py
Skipped without chromium, Playwright or the ui extra."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import soundfile
import synth
import torch

import browser
from helpers import REPOSITORY

pytest.importorskip("streamlit", reason="needs the ui extra (pip install '.[ui]')")
pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install '.[test]')")
pytestmark = pytest.mark.skipif(not browser.available(), reason="needs Debian chromium (apt-get install chromium)")

SCREENSHOTS_ENV = "SPK_UI_SCREENSHOTS"
DOCS = REPOSITORY / "docs"
RATE = 16000
START_TIMEOUT_S = 90
STEP_TIMEOUT_MS = 240_000  # one page's work on a loaded 2-core machine (a clone, a diarisation)
VIEWPORT = {"width": 1400, "height": 1000}
TALL_PAGES = {"diarise": 1350, "embeddings": 1150, "clone": 1100, "compare": 1100}  # page -> screenshot height (px)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def write_voice(path: Path, speaker: str, seconds: float, seed: int) -> Path:
    soundfile.write(path, synth.speaker_voice(speaker, seconds, RATE, seed), RATE)
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> Path:
    """Clips of voices A, C and D, a meeting of A and C, a zip of speaker folders, and a speaker
    database with alice (A), carol (C) and dave (D) enrolled."""
    from speakembed.pipelines import enrol

    root = tmp_path_factory.mktemp("ui-audio")
    for name, speaker, seed in (("a1", "A", 1), ("a2", "A", 2), ("c1", "C", 3), ("A", "A", 100), ("C", "C", 101)):
        write_voice(root / f"{name}.wav", speaker, 4.0 if len(name) == 1 else 2.5, seed)
    turns = [part for index, speaker in enumerate("ACAC")
             for part in (synth.speaker_voice(speaker, 3.0, RATE, seed=index), np.zeros(int(0.6 * RATE), np.float32))]
    soundfile.write(root / "meeting.wav", np.concatenate(turns), RATE)
    with zipfile.ZipFile(root / "voices.zip", "w") as archive:
        for speaker in "ACD":
            for take in range(3):
                buffer = io.BytesIO()
                soundfile.write(buffer, synth.speaker_voice(speaker, 2.0, RATE, 10 * take + ord(speaker)), RATE, format="WAV")
                archive.writestr(f"{speaker}/{take}.wav", buffer.getvalue())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server's OMP_NUM_THREADS=1 (see `studio`)
    for name, speaker in (("alice", "A"), ("carol", "C"), ("dave", "D")):
        enrol.run(root / "voices", name, [write_voice(root / f"{name}.wav", speaker, 3.0, ord(name[0]))])
    torch.set_num_threads(threads)
    return root


@contextlib.contextmanager
def studio(database: Path, temporary: Path):
    """`spk ui` on a free port (its temporary files under `temporary`): yields (url, port); stops
    the server with SIGTERM, as a service manager would, and kills it if that fails."""
    port = free_port()
    # one torch thread: on a loaded 2-core machine OpenMP's waiting threads slow two-thread ops many times
    environment = {**os.environ, "TMPDIR": str(temporary), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "speakembed.main", "ui", "--port", str(port), "--db", str(database)],
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        yield f"http://127.0.0.1:{port}", port
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"spk ui exited ({server.returncode}): {server.stdout.read()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        time.sleep(0.5)
    raise AssertionError(f"spk ui did not answer within {START_TIMEOUT_S} s")


def open_page(page, url: str, path: str, ready_text: str) -> None:
    """Go to one studio page and wait until its script has drawn `ready_text` (a button or title)."""
    page.goto(f"{url}/{path}")
    page.get_by_text(ready_text, exact=True).first.wait_for(timeout=STEP_TIMEOUT_MS)
    settle(page)


def settle(page) -> None:
    """Wait until the script run that the last action started has finished, and drawing stopped."""
    page.wait_for_timeout(250)  # the rerun of an upload or click starts a moment later
    page.locator('[data-testid="stApp"]:not([data-test-script-state="running"])').wait_for(timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(250)


def upload(page, index: int, *paths: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(index).set_input_files([str(path) for path in paths])
    settle(page)


def click(page, name: str, then_text: str) -> None:
    """Click the button `name` and wait for `then_text` to appear."""
    button = page.get_by_role("button", name=name, exact=True)
    button.wait_for(timeout=STEP_TIMEOUT_MS)
    page.wait_for_function("b => !b.disabled", arg=button.element_handle(), timeout=STEP_TIMEOUT_MS)
    button.click()
    page.get_by_text(then_text).first.wait_for(timeout=STEP_TIMEOUT_MS)
    settle(page)


def shoot(page, name: str, folder: Path) -> Path:
    """A screenshot of the page as it is, checked: a PNG of the page's width, far from blank, and
    no exception or error box drawn."""
    assert page.locator('[data-testid="stException"]').count() == 0, name
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0, name
    page.set_viewport_size({"width": VIEWPORT["width"], "height": TALL_PAGES.get(name, VIEWPORT["height"])})
    page.wait_for_timeout(300)
    path = folder / f"ui-{name}.png"
    page.screenshot(path=str(path))
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[1] == VIEWPORT["width"] and pixels[..., :3].std() > 0.05, name
    page.set_viewport_size(VIEWPORT)
    return path


def test_spk_ui_serves_every_page_and_verifies_in_a_browser(audio, tmp_path):
    from playwright.sync_api import sync_playwright

    docs = bool(os.environ.get(SCREENSHOTS_ENV))
    shots, temporary = tmp_path / "shots", tmp_path / "server-tmp"
    shots.mkdir()
    temporary.mkdir()
    with studio(audio / "voices", temporary) as (url, port), sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(browser.CHROMIUM), args=["--no-sandbox", "--mute-audio"])
        page = chromium.new_page(viewport=VIEWPORT)

        open_page(page, url, "verify", "Verify")
        upload(page, 0, audio / "a1.wav")
        upload(page, 1, audio / "a2.wav")
        click(page, "Verify", "Same speaker")
        assert page.get_by_text("Probability of same speaker", exact=True).count() == 1  # the metric
        shoot(page, "verify", shots)

        open_page(page, url, "identify", "Identify")
        upload(page, 0, audio / "a1.wav")
        click(page, "Identify", "a1.wav: alice")
        shoot(page, "identify", shots)

        open_page(page, url, "diarise", "Diarise")
        upload(page, 0, audio / "meeting.wav")
        upload(page, 1, audio / "A.wav", audio / "C.wav")
        click(page, "Diarise", "Download meeting.rttm")
        timeline = page.frame_locator("iframe").first
        timeline.locator("svg").first.wait_for(timeout=STEP_TIMEOUT_MS)  # the page `spk diarise` writes, drawn
        shoot(page, "diarise", shots)

        open_page(page, url, "embeddings", "Embed")
        page.get_by_text("A zip archive or several clips").click()
        settle(page)
        upload(page, 0, audio / "voices.zip")
        click(page, "Embed", "Cosine similarity")
        shoot(page, "embeddings", shots)

        open_page(page, url, "", "Clone the voice")  # the default page lives at the root
        if docs:
            upload(page, 0, audio / "a1.wav", audio / "a2.wav")
            page.get_by_text("I have the consent").click()
            settle(page)
            click(page, "Clone the voice", "Download the WAV (tagged as synthetic speech)")
        shoot(page, "clone", shots)

        open_page(page, url, "compare", "Compare")
        if docs:
            upload(page, 0, audio / "a1.wav", audio / "a2.wav", audio / "c1.wav")
            click(page, "Compare", "Scores of different encoders")
        shoot(page, "compare", shots)
        chromium.close()
    assert not listening(port), "the server still listens after the test"
    assert not list(temporary.glob("speakembed-studio-*")), "the server left its temporary files"
    if docs:
        DOCS.mkdir(exist_ok=True)
        for shot in sorted(shots.glob("ui-*.png")):
            shutil.copyfile(shot, DOCS / shot.name)
