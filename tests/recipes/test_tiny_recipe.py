"""recipes/tiny/run.sh end to end: synthetic corpus -> preprocess -> train -> embed -> verify -> evaluate."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

RECIPE = Path(__file__).parents[2] / "recipes" / "tiny" / "run.sh"


def test_tiny_recipe_runs_end_to_end_and_reruns_as_a_no_op(tmp_path):
    spk = shutil.which("spk", path=str(Path(sys.executable).parent)) or shutil.which("spk")
    environment = {**os.environ, "SPK": spk, "PYTHON": sys.executable}
    command = ["bash", str(RECIPE), "--work", str(tmp_path / "exp"), "--steps", "20"]
    first = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    report = json.loads((tmp_path / "exp" / "eval" / "report.json").read_text())
    assert 0.0 <= report_value(report, "eer") < 0.5  # better than chance after 20 tiny steps
    for picture in ("det.png", "scores.png"):
        assert (tmp_path / "exp" / "eval" / picture).is_file()
    again = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "corpus exists, skipping" in again.stdout and "model exists, skipping" in again.stdout
    assert "up to date" in again.stdout


def report_value(report: dict, key: str) -> float:
    """Find `key` anywhere in the (possibly nested) evaluation report."""
    if key in report:
        return float(report[key])
    for value in report.values():
        if isinstance(value, dict):
            try:
                return report_value(value, key)
            except KeyError:
                continue
    raise KeyError(key)
