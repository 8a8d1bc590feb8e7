"""`spk ui`: the SpeakEmbed studio in the browser (a Streamlit server on pipelines/ui.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import typer

from speakembed.console import stderr, stdout, user_errors

HELP = """Start the SpeakEmbed studio, a web app in your browser: clone a voice, compare encoders, verify, identify and enrol speakers, diarise a meeting, look at embeddings.

spk ui                          serves http://127.0.0.1:8501 (this machine only)
spk ui --port 8600 --db voices/

Uploads are limited to --max-upload-mb MB per file (Streamlit's server.maxUploadSize). Uploaded and generated files live in a temporary folder per browser session, removed when the session ends or the server stops. --host 0.0.0.0 serves every network this machine is on: there is no login, so anyone who can reach the port can upload audio, clone voices and change the speaker database; use it only on a network you trust.
Needs the ui extra: pip install 'speakembed\\[ui]' (the Clone page also needs speakembed\\[clone])."""

INSTALL_HINT = "streamlit is not installed; pip install 'speakembed[ui]'"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on; 0.0.0.0 opens it to the network (no login: see above)."),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve on."),
    db: Path = typer.Option(Path("voices"), "--db", help="Speaker database folder of the Identify and Diarise pages (made by the first enrolment)."),
    max_upload_mb: int = typer.Option(200, "--max-upload-mb", min=1, help="Largest upload accepted, in MB per file."),
) -> None:
    """`spk ui`: serve the studio until Ctrl-C."""
    from speakembed.pipelines.base.errors import MissingDependencyError

    with user_errors():
        if find_spec("streamlit") is None:
            raise MissingDependencyError(INSTALL_HINT)
    from speakembed.pipelines.studio.session import DATABASE_ENV  # imports streamlit
    if host not in LOOPBACK_HOSTS:
        stderr.print(f"warning: serving on {host}: anyone who can reach port {port} can use the studio and change "
                     f"the speaker database {db} (there is no login)", style="yellow", soft_wrap=True)
    stdout.print(f"SpeakEmbed studio on http://{_url_host(host)}:{port} (speaker database {db.absolute()}); Ctrl-C stops it",
                 soft_wrap=True)
    environment = {**os.environ, DATABASE_ENV: str(db.absolute())}
    raise typer.Exit(serve(streamlit_command(host, port, max_upload_mb), environment))


def streamlit_command(host: str, port: int, max_upload_mb: int) -> list[str]:
    """`python -m streamlit run` on the packaged app, bound to host:port, headless, without usage
    statistics (nothing leaves the machine) or file watching."""
    import speakembed.pipelines

    app = Path(speakembed.pipelines.__file__).parent / "ui.py"
    return [sys.executable, "-m", "streamlit", "run", str(app),
            f"--server.address={host}", f"--server.port={port}", f"--server.maxUploadSize={max_upload_mb}",
            "--server.headless=true", "--server.fileWatcherType=none", "--browser.gatherUsageStats=false",
            "--global.developmentMode=false", "--client.toolbarMode=minimal"]


def serve(command: list[str], environment: dict[str, str]) -> int:
    """Run the server until it exits; SIGTERM and Ctrl-C stop it (and wait for it). Its exit status."""
    server = subprocess.Popen(command, env=environment)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    while True:
        try:
            return server.wait()
        except KeyboardInterrupt:  # the server got the same Ctrl-C: wait for it to finish
            continue


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
