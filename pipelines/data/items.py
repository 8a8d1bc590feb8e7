"""What to embed: files, folders (recursive), a segments manifest or a Kaldi wav.scp, as items with stable ids.

An item id is the file's path relative to the folder given (POSIX separators), the path
relative to the current directory for a single file, the manifest's `segment_id`, or the
wav.scp's recording id (utterance id with a `segments` file beside it, see data/kaldi.py); a trial
list naming those ids scores directly against the store.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from speakembed.pipelines.audio.decode import is_audio_file
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.data.manifests import read_table


@dataclass(frozen=True)
class Item:
    """One thing to embed: a whole file, or the region [start_s, start_s + duration_s) of it."""

    item_id: str
    path: Path
    start_s: float = 0.0
    duration_s: float | None = None


def collect_items(inputs: list[str | Path]) -> list[Item]:
    """Expand files, folders, `segments.parquet` manifests and Kaldi `wav.scp` files into items, in a stable order."""
    if not inputs:
        raise InputNotFoundError("nothing to embed; give audio files, folders, a segments.parquet or a wav.scp")
    items: list[Item] = []
    for given in map(Path, inputs):
        if given.is_dir():
            items.extend(_folder_items(given))
        elif given.suffix == ".parquet":
            items.extend(_manifest_items(given))
        elif given.suffix == ".scp":
            from speakembed.pipelines.data.kaldi import wav_scp_regions

            items.extend(Item(*region) for region in wav_scp_regions(given))
        elif given.exists():
            items.append(Item(_id_for_single_file(given), given))
        else:
            raise InputNotFoundError(f"{given}: no such file or folder; check the path")
    _refuse_duplicate_ids(items)
    return items


def items_fingerprint(items: list[Item]) -> str:
    """Changes when an item is added, removed, moved, or its file is modified."""
    digest = hashlib.sha256()
    for item in items:
        stat = item.path.stat() if item.path.exists() else None
        signature = (item.item_id, str(item.path), item.start_s, item.duration_s,
                     stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1)
        digest.update(repr(signature).encode())
    return digest.hexdigest()


def audio_files_under(folder: Path) -> list[Path]:
    """Every audio file (by extension) anywhere below `folder`, sorted, as paths that start with
    `folder`. Symlinked folders and files are followed, as `find -L` does; a symlinked folder that
    leads back to one of its own ancestors (`A/up -> ..`) is not entered, so a loop ends.
    Folders that cannot be listed (no permission, a dangling link) are passed over."""
    files: list[Path] = []
    pending = [(folder, frozenset({_identity(folder)}))]  # (folder to list, identities of it and its ancestors)
    while pending:
        current, ancestors = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir():  # follows a symlink
                identity = _identity(path)
                if identity is not None and identity not in ancestors:
                    pending.append((path, ancestors | {identity}))
            elif entry.is_file() and is_audio_file(path):
                files.append(path)
    return sorted(files)


def _identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder a path leads to, or None when it cannot be read."""
    try:
        stat = folder.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _folder_items(folder: Path) -> list[Item]:
    files = audio_files_under(folder)
    if not files:
        raise InputNotFoundError(f"{folder}: no audio files found (looked for WAV, FLAC, OGG, MP3, M4A, ...)")
    return [Item(path.relative_to(folder).as_posix(), path) for path in files]


def _id_for_single_file(path: Path) -> str:
    relative = os.path.relpath(path.resolve(), Path.cwd().resolve())
    return Path(relative).as_posix() if not relative.startswith("..") else path.resolve().as_posix()


def _manifest_items(manifest: Path) -> list[Item]:
    segments = read_table(manifest, "segments")
    recordings_path = manifest.with_name("recordings.parquet")
    if not recordings_path.is_file():
        raise ManifestError(f"{manifest}: needs recordings.parquet beside it to find the audio of each segment")
    recordings = read_table(recordings_path, "recordings").set_index("recording_id")["path"]
    unknown = sorted(set(segments["recording_id"]) - set(recordings.index))
    if unknown:
        raise ManifestError(f"{manifest}: segments name recordings missing from recordings.parquet: {unknown[:3]}")
    return [
        Item(str(row.segment_id), manifest.parent / str(recordings[row.recording_id]), float(row.start_s), float(row.duration_s))
        for row in segments.itertuples(index=False)
    ]


def _refuse_duplicate_ids(items: list[Item]) -> None:
    seen: dict[str, Item] = {}
    for item in items:
        if item.item_id in seen:
            raise ManifestError(
                f"item id '{item.item_id}' names both {seen[item.item_id].path} and {item.path}; "
                "embed those inputs separately or give their common parent folder"
            )
        seen[item.item_id] = item
