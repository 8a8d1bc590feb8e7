"""Trial lists: Kaldi (`enroll test target|nontarget`), VoxCeleb (`1 a.wav b.wav`), a TSV/CSV
with an `enroll test label` header, or a stamped `trials.parquet`. All become one table with
columns enroll, test and label (1 target, 0 non-target, <NA> when the list has no labels)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.data.manifests import read_table

LABELS = {"target": 1, "nontarget": 0, "1": 1, "0": 0}


def read_trials(path: str | Path) -> pd.DataFrame:
    """The trials of a Kaldi, VoxCeleb, `enroll test label` or trials.parquet list as a table
    enroll, test (string), label (Int8: 1 target, 0 non-target, <NA> unlabelled).

    Raises InputNotFoundError for a missing file, ManifestError for an empty or malformed list.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such trial list")
    if path.suffix == ".parquet":
        return read_table(path, "trials")[["enroll", "test", "label"]]
    lines = [line.split() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        raise ManifestError(f"{path}: the trial list is empty")
    if [field.lower() for field in lines[0][:3]] == ["enroll", "test", "label"]:
        lines = lines[1:]
    if lines and lines[0][0] in ("0", "1") and len(lines[0]) == 3:
        return _table(path, lines, _voxceleb)
    return _table(path, lines, _kaldi)


def _table(path: Path, lines: list[list[str]], parse) -> pd.DataFrame:
    rows = []
    for number, fields in enumerate(lines, start=1):
        try:
            rows.append(parse(fields))
        except (ValueError, KeyError):
            raise ManifestError(
                f"{path}: line {number} '{' '.join(fields)}' is not a trial; expected "
                "'enroll test target|nontarget', '1 enroll test' or 'enroll test label'"
            ) from None
    if not rows:
        raise ManifestError(f"{path}: the trial list holds no trials")
    table = pd.DataFrame(rows, columns=["enroll", "test", "label"])
    return table.astype({"enroll": "string", "test": "string", "label": "Int8"})


def _kaldi(fields: list[str]) -> tuple:
    if len(fields) == 2:
        return fields[0], fields[1], pd.NA
    if len(fields) != 3:
        raise ValueError
    return fields[0], fields[1], LABELS[fields[2].lower()]


def _voxceleb(fields: list[str]) -> tuple:
    if len(fields) != 3 or fields[0] not in ("0", "1"):
        raise ValueError
    return fields[1], fields[2], int(fields[0])

