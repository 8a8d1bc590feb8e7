"""The one output policy (pipelines/base/outputs.py): folders created with parents, files refused
where a folder must be and the other way round, atomic writes that leave no temporary behind."""

from __future__ import annotations

import os

import pytest

from speakembed.pipelines.base.errors import OutputError
from speakembed.pipelines.base.outputs import (prepare_output_file, prepare_output_folder, replace_folder_atomically,
                                               write_atomically, write_text_atomically)


def test_output_folder_is_created_with_its_parents(tmp_path):
    folder = prepare_output_folder(tmp_path / "a" / "b" / "c")
    assert folder.is_dir()
    assert list(folder.iterdir()) == []  # the write probe leaves nothing behind


def test_output_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        prepare_output_folder(tmp_path / "taken")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        prepare_output_folder(tmp_path / "taken" / "below")


@pytest.mark.skipif(os.geteuid() != 0 and os.name == "posix", reason="needs root to see permission bits ignored")
def test_read_only_folder_is_refused_even_for_root(tmp_path):
    """Root ignores permission bits, so the probe write is what tells; an immutable folder needs chattr."""
    import shutil
    import subprocess

    folder = tmp_path / "frozen"
    folder.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available on this file system")
    try:
        with pytest.raises(OutputError, match="cannot write into the output folder"):
            prepare_output_folder(folder)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_single_file_output_gets_its_folder(tmp_path):
    path = prepare_output_file(tmp_path / "x" / "y" / "clip.wav")
    assert path.parent.is_dir() and not path.exists()
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        prepare_output_file(tmp_path / "dir.wav")


def test_atomic_write_replaces_whole_file_and_cleans_up_on_failure(tmp_path):
    target = write_text_atomically(tmp_path / "report.json", "old\n")

    def fail_half_way(out):
        out.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomically(target, fail_half_way)
    assert target.read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.json"]


def test_atomic_write_into_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_text_atomically(tmp_path / "absent" / "f.txt", "x")


def test_folder_replaced_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "model"
    replace_folder_atomically(folder, lambda temporary: (temporary / "a.txt").write_text("1"))

    def fail(temporary):
        (temporary / "a.txt").write_text("2")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="No space left"):
        replace_folder_atomically(folder, fail)
    assert (folder / "a.txt").read_text() == "1"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
