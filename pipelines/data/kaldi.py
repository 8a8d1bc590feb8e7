"""Kaldi's plain file formats, read and written without Kaldi (or kaldiio / kaldi_io) installed.

- `wav.scp` (input): one recording per line, `<recording-id> <path>`. A `segments` file beside it
  (`<utterance-id> <recording-id> <start-s> <end-s>`, end -1 = to the end of the recording), as
  in a Kaldi data folder, makes each utterance an item instead. Relative paths are taken from the
  current folder, as Kaldi recipes run (else from the folder of wav.scp). Entries that Kaldi
  would run or seek (`sox ... |`, `archive.ark:1234`) are refused: convert them to files first.
- `xvector.ark` + `xvector.scp` (output): float32 vectors in Kaldi's binary archive format, as
  `nnet3-xvector-compute` and WeSpeaker's extraction write and `copy-vector`, kaldiio and
  kaldi_io read. Each record is `<key> ` then `\\0B` (binary), the token `FV ` (float vector), the
  size as a 1-byte length (4) and a little-endian int32, and the values as little-endian float32;
  the scp line `<key> <absolute ark path>:<offset>` points at the record's `\\0B`. Keys cannot hold
  whitespace: item ids get the whitespace-free form of `data.rttm.rttm_names` (runs of
  whitespace -> `_`, a short hash where two ids would collide); records are sorted by key (C
  locale), as Kaldi's sorted-input readers require.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import write_atomically, write_text_atomically
from speakembed.pipelines.data.rttm import rttm_names

ARCHIVE_OFFSET = re.compile(r":\d+$")  # `archive.ark:1234`: a record inside an archive
FLOAT_VECTOR = b"FV "
INT32_SIZE = b"\x04"


def is_wav_scp(path: Path) -> bool:
    """Whether an input path names a Kaldi script file (`wav.scp`, any `*.scp`)."""
    return path.suffix == ".scp"


def wav_scp_regions(path: str | Path) -> list[tuple[str, Path, float, float | None]]:
    """The (id, audio path, start s, duration s or None) regions of a Kaldi wav.scp: one per
    recording, or per utterance of a `segments` file beside it (see the module docstring); data/items.py
    makes them Items. ManifestError for a malformed or unsupported line."""
    path = Path(path)
    recordings = _recordings(path)
    segments = path.with_name("segments")
    if not segments.is_file():
        return [(recording_id, audio, 0.0, None) for recording_id, audio in recordings.items()]
    items = []
    for number, fields in _lines(segments):
        if len(fields) != 4:
            raise ManifestError(f"{segments}:{number}: expected '<utterance-id> <recording-id> <start> <end>'")
        utterance, recording, start, end = fields
        if recording not in recordings:
            raise ManifestError(f"{segments}:{number}: recording '{recording}' is not in {path.name}")
        try:
            start_s, end_s = float(start), float(end)
        except ValueError:
            raise ManifestError(f"{segments}:{number}: start and end must be seconds, found '{start}' '{end}'") from None
        if start_s < 0 or (end_s != -1 and end_s <= start_s):
            raise ManifestError(f"{segments}:{number}: the segment [{start}, {end}] is empty or negative")
        items.append((utterance, recordings[recording], start_s, None if end_s == -1 else end_s - start_s))
    return items


def _recordings(path: Path) -> dict[str, Path]:
    """recording id -> audio path of a wav.scp."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such wav.scp")
    recordings: dict[str, Path] = {}
    for number, fields in _lines(path, split=1):
        if len(fields) != 2:
            raise ManifestError(f"{path}:{number}: expected '<recording-id> <path>'")
        recording, location = fields[0], fields[1].strip()
        if location.endswith("|"):
            raise ManifestError(f"{path}:{number}: '{location}' is a command; spk reads files only: write the "
                                "audio to files (e.g. with sox) and list those")
        audio = Path(location)
        if not audio.is_absolute() and not audio.exists() and (path.parent / audio).exists():
            audio = path.parent / audio
        if not audio.exists() and ARCHIVE_OFFSET.search(location):
            raise ManifestError(f"{path}:{number}: '{location}' points into an archive; spk reads audio files only")
        if recording in recordings:
            raise ManifestError(f"{path}:{number}: recording id '{recording}' is listed twice")
        recordings[recording] = audio
    if not recordings:
        raise ManifestError(f"{path}: lists no recordings")
    return recordings


def _lines(path: Path, split: int = -1) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of the non-empty lines of a text file."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    return [(number, line.split(None, split)) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def kaldi_keys(item_ids: list[str]) -> dict[str, str]:
    """item id -> its Kaldi key: whitespace-free and unique (see the module docstring)."""
    return rttm_names(item_ids)


def write_vectors(ark_path: str | Path, scp_path: str | Path, vectors: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """Write `vectors` (key -> (D,) vector; keys without whitespace) as a binary float32 ark and
    its scp, sorted by key, each atomically; returns both paths."""
    ark_path, scp_path = Path(ark_path), Path(scp_path)
    keys = sorted(vectors, key=lambda key: key.encode("utf-8", "surrogateescape"))
    offsets: dict[str, int] = {}

    def write(out) -> None:
        for key in keys:
            out.write(key.encode("utf-8", "surrogateescape") + b" ")
            offsets[key] = out.tell()
            out.write(float_vector_record(vectors[key]))

    write_atomically(ark_path, write)
    location = ark_path.absolute()
    write_text_atomically(scp_path, "".join(f"{key} {location}:{offsets[key]}\n" for key in keys))
    return ark_path, scp_path


def float_vector_record(vector: np.ndarray) -> bytes:
    """One binary Kaldi float vector: `\\0B`, `FV `, size (length byte 4 + int32 LE), float32 LE values."""
    values = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    return b"\0B" + FLOAT_VECTOR + INT32_SIZE + struct.pack("<i", len(values)) + values.tobytes()
