"""Read and write RTTM, the NIST "Rich Transcription Time Marked" format used to exchange diarisation.

Only SPEAKER lines matter here; each is ten space-separated fields:

    SPEAKER <file-id> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>

with onset and duration in seconds. Other line types (SPKR-INFO, LEXEME, ...) are ignored on
reading, as are blank lines and `;;` comments. In memory a diarisation is a DataFrame with the
columns recording_id, start_s, duration_s, speaker (a subset of the `diarisation` manifest schema).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

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


def write_rttm(segments: pd.DataFrame, path: str | Path) -> Path:
    """Write `segments` (recording_id, start_s, duration_s in seconds, speaker; other columns are
    ignored) as RTTM, sorted by recording then onset, with times rounded to milliseconds.

    The file is written atomically. Raises ManifestError when a column is missing, an id or label
    holds whitespace (RTTM fields are space-separated) or a time is negative or not finite, and
    OutputError when the parent folder does not exist.
    """
    _check_writable(segments)
    ordered = segments.sort_values(["recording_id", "start_s"], kind="mergesort")
    text = "".join(SPEAKER_LINE.format(recording_id=row.recording_id, start_s=row.start_s,
                                       duration_s=row.duration_s, speaker=row.speaker)
                   for row in ordered.itertuples(index=False))
    return write_text_atomically(Path(path), text)


def _check_writable(segments: pd.DataFrame) -> None:
    missing = [column for column in COLUMNS if column not in segments.columns]
    if missing:
        raise ManifestError(f"diarisation table lacks columns {missing}; cannot write RTTM")
    for column in ("recording_id", "speaker"):
        values = segments[column].astype("string").fillna("")
        bad = values[(values == "") | values.str.contains(r"\s", regex=True)]
        if len(bad):
            raise ManifestError(f"{column} {bad.iloc[0]!r} is empty or holds whitespace; RTTM fields cannot")
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
