"""Helpers shared by the batch pipelines (`spk embed`, `spk preprocess`, `spk diarise`): per-item
speech extraction that records failures instead of raising, one failure row per bad item, and
failures.parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, SpeakEmbedError, UnusableAudioError
from speakembed.pipelines.data.items import Item
from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.audio.speech import prepare_speech

FAILURE_COLUMNS = ["item_id", "stage", "reason", "detail"]


def speech_or_failure(item: Item, spec, vad: str, failures: list[dict], *,
                      max_duration_s: float | None = None) -> np.ndarray | None:
    """The item's speech (see `prepare_speech`), or None after appending why it is unusable to `failures`."""
    try:
        return prepare_speech(item.path, spec, vad, start_s=item.start_s, duration_s=item.duration_s,
                              max_duration_s=max_duration_s)
    except UnusableAudioError as error:
        failures.append(failure_row(item.item_id, "audio", error))
    except SpeakEmbedError as error:
        failures.append(failure_row(item.item_id, "decode", error))
    return None


def failure_row(item_id: str, stage: str, error: SpeakEmbedError) -> dict:
    """A failures.parquet row for `item_id`: the unusable-audio reason of `error` (empty, silent,
    too_short, ...), `missing` for a file that is not there, else `unreadable`."""
    if isinstance(error, UnusableAudioError):
        reason = error.reason
    else:
        reason = "missing" if isinstance(error, InputNotFoundError) else "unreadable"
    return {"item_id": item_id, "stage": stage, "reason": reason, "detail": str(error)}


def write_failures(failures: list[dict], path: Path) -> dict[str, int]:
    """Write `failures` as a 'failures' manifest at `path`; return the count per reason."""
    write_table(pd.DataFrame(failures, columns=FAILURE_COLUMNS), path, "failures")
    counts = pd.Series([failure["reason"] for failure in failures], dtype="string").value_counts()
    return {str(reason): int(count) for reason, count in counts.items()}

