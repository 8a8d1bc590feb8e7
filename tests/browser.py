"""Headless Chromium for tests of generated HTML pages: a screenshot, or the DOM after scripts ran.

Tests skip when `/usr/bin/chromium` is absent (Debian: apt-get install chromium). Every run gets
its own profile folder and no network-facing background services, so it is quick and offline.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 30  # a hung browser fails the test rather than the whole run
VIRTUAL_TIME_BUDGET_MS = 3000  # lets the page's scripts and timers run before the dump or shot


def available() -> bool:
    return CHROMIUM.is_file()


def _run(page: Path, work_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--mute-audio", f"--user-data-dir={work_dir / 'profile'}", "--window-size=1400,900",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *arguments, page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def screenshot(page: Path, work_dir: Path) -> Path:
    """Render `page` at 1400x900 px and return the path of the PNG screenshot (in `work_dir`)."""
    shot = work_dir / "shot.png"
    result = _run(page, work_dir, f"--screenshot={shot}")
    if not shot.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-2000:]}")
    return shot


def dump_dom(page: Path, work_dir: Path) -> str:
    """The serialised DOM of `page` after its scripts ran."""
    result = _run(page, work_dir, "--dump-dom")
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"chromium --dump-dom failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return result.stdout
