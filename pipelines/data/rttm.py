"""Read and write RTTM, the NIST "Rich Transcription Time Marked" format used to exchange diarisation.

Only SPEAKER lines matter here; each is ten space-separated fields:

    SPEAKER <file-id> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>

with onset and duration in seconds. Other line types (SPKR-INFO, LEXEME, ...) are ignored on
reading, as are blank lines and `;;` comments. In memory a diarisation is a DataFrame with the
columns recording_id, start_s, duration_s, speaker (a subset of the `diarisation` manifest schema).

RTTM fields are separated by whitespace, so a recording or speaker name that holds whitespace
("Réunion 3 ü", "Ann Lee") cannot be written as it is. `rttm_names` maps names to RTTM fields,
and `write_rttm` applies it to both columns:
- every run of whitespace (spaces, tabs, newlines, Unicode spaces) becomes one `_`; every other
  character is kept (accents, brackets, quotes: RTTM is read as UTF-8 text);
- when two different names would get the same field ("a b" and "a_b"), each name that had to be
  changed gets `_` and the first 6 hex digits of the SHA-1 of its UTF-8 bytes appended
  ("a_b_3f9c2e"), so the mapping stays one-to-one; a name without whitespace is never changed.
The mapping depends only on the set of names mapped together (for `spk diarise`: all the
recordings of one run, and the speakers of one recording), so it is stable from run to run.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import write_text_atomically

if TYPE_CHECKING:
    from pyannote.core import Annotation

COLUMNS = {"recording_id": "string", "start_s": "float64", "duration_s": "float64", "speaker": "string"}
SPEAKER_LINE = "SPEAKER {recording_id} 1 {start_s:.3f} {duration_s:.3f} <NA> <NA> {speaker} <NA> <NA>\n"
# SPEAKER, file-id, channel, onset, duration, ortho, stype, name are needed; some tools omit the
# trailing confidence and lookahead fields, so 8 fields are enough to read a line.
MIN_FIELDS = 8
WHITESPACE = re.compile(r"\s+")
HASH_DIGITS = 6  # of SHA-1: 16.7 million values, far more than the names of one run


def read_rttm(path: str | Path) -> pd.DataFrame:
    """SPEAKER turns of an RTTM file, or of every `*.rttm` file of a folder (sorted by name).

    Returns a DataFrame with columns recording_id, start_s, duration_s (seconds), speaker, in file
    order. Raises InputNotFoundError when the path is missing or a folder holds no `.rttm` file, and
    ManifestError naming the file and line of a malformed SPEAKER line.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.rttm"))
        if not files:
            raise InputNotFoundError(f"{path}: folder holds no .rttm files")
    elif path.is_file():
        files = [path]
    else:
        raise InputNotFoundError(f"{path}: no such RTTM file or folder")
    rows = [row for file in files for row in _read_speaker_lines(file)]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)


def _read_speaker_lines(path: Path) -> list[tuple[str, float, float, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file; give an RTTM file") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        # Blank lines, `;;` comments and other line types (SPKR-INFO, LEXEME, ...) carry no turns.
        if not fields or fields[0] != "SPEAKER":
            continue
        rows.append(_parse_speaker_line(fields, f"{path}:{number}"))
    return rows


def _parse_speaker_line(fields: list[str], where: str) -> tuple[str, float, float, str]:
    """(recording_id, start_s, duration_s, speaker) of one SPEAKER line; `where` is 'file:line'."""
    if len(fields) < MIN_FIELDS:
        raise ManifestError(f"{where}: SPEAKER line has {len(fields)} fields, expected 10 "
                            "(SPEAKER file-id channel onset duration <NA> <NA> speaker <NA> <NA>)")
    try:
        start_s, duration_s = float(fields[3]), float(fields[4])
    except ValueError:
        raise ManifestError(f"{where}: onset '{fields[3]}' and duration '{fields[4]}' must be numbers of seconds") from None
    if not (math.isfinite(start_s) and math.isfinite(duration_s)):
        raise ManifestError(f"{where}: onset and duration must be finite, found {fields[3]} and {fields[4]}")
    if start_s < 0 or duration_s < 0:
        raise ManifestError(f"{where}: negative onset or duration ({fields[3]}, {fields[4]})")
    return fields[1], start_s, duration_s, fields[7]


def rttm_names(names: Iterable[str]) -> dict[str, str]:
    """The RTTM field of each distinct name: whitespace runs become `_`, and a changed name that
    would collide with another name's field gets a short hash suffix (see the module docstring).

    Raises ManifestError for an empty name (an RTTM field cannot be empty).
    """
    names = list(dict.fromkeys(str(name) for name in names))
    if any(not WHITESPACE.sub("", name) for name in names):
        raise ManifestError("an empty recording id or speaker name cannot be written to RTTM")
    fields = {name: WHITESPACE.sub("_", name) for name in names}
    counts = Counter(fields.values())
    taken = set(fields.values())
    for name, field in fields.items():
        if field != name and counts[field] > 1:
            fields[name] = _unique_field(name, field, taken)
            taken.add(fields[name])
    return fields


def _unique_field(name: str, field: str, taken: set[str]) -> str:
    """`field` plus the shortest prefix (from HASH_DIGITS on) of the SHA-1 of `name` not yet taken."""
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()
    for digits in range(HASH_DIGITS, len(digest) + 1):
        candidate = f"{field}_{digest[:digits]}"
        if candidate not in taken:
            return candidate
    raise AssertionError(f"no free RTTM field for {name!r}")  # 2**160 names would be needed


def write_rttm(segments: pd.DataFrame, path: str | Path) -> Path:
    """Write `segments` (recording_id, start_s, duration_s in seconds, speaker; other columns are
    ignored) as RTTM, sorted by recording then onset, with times rounded to milliseconds.

    Recording ids and speaker names go through `rttm_names` (whitespace -> `_`, collisions
    resolved by a hash suffix), each column over the names of this table. The file is written
    atomically. Raises ManifestError when a column is missing, an id or label is empty or a time
    is negative or not finite, and OutputError when the parent folder does not exist.
    """
    _check_writable(segments)
    ordered = segments.sort_values(["recording_id", "start_s"], kind="mergesort")
    recordings, speakers = (rttm_names(ordered[column].astype(str)) for column in ("recording_id", "speaker"))
    text = "".join(SPEAKER_LINE.format(recording_id=recordings[str(row.recording_id)], start_s=row.start_s,
                                       duration_s=row.duration_s, speaker=speakers[str(row.speaker)])
                   for row in ordered.itertuples(index=False))
    return write_text_atomically(Path(path), text)


def _check_writable(segments: pd.DataFrame) -> None:
    missing = [column for column in COLUMNS if column not in segments.columns]
    if missing:
        raise ManifestError(f"diarisation table lacks columns {missing}; cannot write RTTM")
    for column in ("recording_id", "speaker"):
        values = segments[column].astype("string").fillna("")
        if (values.str.strip() == "").any():
            raise ManifestError(f"a {column} is empty; RTTM needs a name in every field")
    times = segments[["start_s", "duration_s"]].to_numpy(dtype="float64")
    bad = ~(np.isfinite(times) & (times >= 0)).all(axis=1)
    if bad.any():
        row = segments[bad].iloc[0]
        raise ManifestError(f"segment of {row['recording_id']} at {row['start_s']} s has a negative or "
                            f"non-finite onset or duration ({row['duration_s']} s)")


def to_annotations(segments: pd.DataFrame) -> dict[str, "Annotation"]:
    """One pyannote Annotation per recording id (its `uri`), for pyannote.metrics.

    Zero-length turns are dropped: pyannote cannot hold an empty segment. Each turn gets its own
    track so that overlapping turns of one speaker are all kept.
    """
    from pyannote.core import Annotation, Segment

    annotations: dict[str, Annotation] = {}
    for track, row in enumerate(segments.itertuples(index=False)):
        annotation = annotations.setdefault(str(row.recording_id), Annotation(uri=str(row.recording_id)))
        if row.duration_s > 0:
            annotation[Segment(row.start_s, row.start_s + row.duration_s), track] = str(row.speaker)
    return annotations
