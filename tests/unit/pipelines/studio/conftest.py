"""Studio tests: skipped without the ui extra; every test gets its own speaker database folder
(`SPK_UI_DB`, as `spk ui --db` sets it). Helpers: studio_testing.py (importable from here under
any --import-mode)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="needs the ui extra (pip install '.[ui]')")

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def database(monkeypatch, tmp_path) -> Path:
    """This test's speaker database folder (not made yet)."""
    folder = tmp_path / "voices"
    monkeypatch.setenv("SPK_UI_DB", str(folder))
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread():
    """torch on one thread during these tests: on a loaded 2-core machine OpenMP's waiting threads
    made two-thread ops 10-100x slower (an LSTM verify_pair took 10-22 s instead of 0.16 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
