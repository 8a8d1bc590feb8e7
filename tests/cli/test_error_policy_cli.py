"""One error policy for every command: the README's exit-code table is the code's, usage errors
exit 2, and an output that cannot be written fails before the work with exit 8 and one line."""

from __future__ import annotations

import re

import pytest

from speakembed.pipelines.base.errors import EXIT_CODES
from helpers import REPOSITORY, spk

README = REPOSITORY / "README.md"


def _readme_exit_codes() -> dict[int, str]:
    section = README.read_text().split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code): meaning.strip() for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)}


def test_readme_exit_code_table_is_the_code():
    assert _readme_exit_codes() == EXIT_CODES


def test_help_lists_the_exit_codes():
    result = spk("--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.output and "130" in result.output


@pytest.mark.parametrize("args", [
    ["embed", "x.wav", "--out", "o", "--no-such-option"],
    ["verify", "a.wav", "b.wav", "--vad", "nope"],
    ["preprocess", "timit", ".", "--out", "o"],
], ids=["unknown-option", "unknown-vad", "unknown-corpus"])
def test_usage_errors_exit_2(args):
    result = spk(*args)
    assert result.exit_code == 2, result.output


def test_unwritable_output_fails_before_the_work(tmp_path, bad_audio):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for args in (["embed", bad_audio["clipped"], "--out", blocker / "o"],
                 ["evaluate", "diarisation", "-r", blocker, "-H", blocker, "--out", blocker / "o"]):
        result = spk(*args)
        assert result.exit_code == 8, result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_write_permission_error_at_the_end_is_one_line(monkeypatch, tmp_path):
    """A write that fails with EACCES deep inside a library is still one line and exit 8."""
    import typer

    from speakembed.console import user_errors

    def failing():
        with user_errors():
            raise PermissionError(13, "Permission denied", str(tmp_path / "store.zarr"))

    with pytest.raises(typer.Exit) as stopped:
        failing()
    assert stopped.value.exit_code == 8
