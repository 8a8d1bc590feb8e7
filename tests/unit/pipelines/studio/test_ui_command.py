"""`spk ui`: the Streamlit command it runs (the packaged app, bound where asked, uploads limited, no
usage statistics), and the one-line install hint without the ui extra."""

from pathlib import Path

from helpers import spk
from speakembed.commands import ui


def test_the_server_command():
    command = ui.streamlit_command("127.0.0.1", 8600, 50)
    assert command[1:4] == ["-m", "streamlit", "run"] and Path(command[4]).is_file() and command[4].endswith("ui.py")
    assert {"--server.address=127.0.0.1", "--server.port=8600", "--server.maxUploadSize=50", "--server.headless=true",
            "--browser.gatherUsageStats=false"} <= set(command)


def test_without_streamlit_the_hint_is_one_line(monkeypatch):
    monkeypatch.setattr(ui, "find_spec", lambda name: None)
    result = spk("ui")
    assert result.exit_code == 7
    assert result.output.strip() == "error: streamlit is not installed; pip install 'speakembed[ui]'"
