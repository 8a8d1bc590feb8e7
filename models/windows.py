"""GE2E-style partial windows: long inputs are cut into fixed windows whose embeddings are
averaged and renormalised (Wan et al. 2018; the same slicing as Resemblyzer's
`compute_partial_slices`, so that embeddings match it)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one waveform start (in feature frames) and how long the waveform
    must be zero-padded to (in samples) so that every window is complete."""

    starts: list[int]
    padded_samples: int


def plan_partial_windows(
    num_samples: int, hop_length: int, window_frames: int, hop_frames: int, min_coverage: float = 0.75
) -> WindowPlan:
    """Windows of `window_frames` frames every `hop_frames` frames over `num_samples` samples.

    The last window may run past the end of the audio; it is dropped when less than
    `min_coverage` of it holds real samples, unless it is the only one. There is always at least
    one window: a short clip is zero-padded to a whole window.
    """
    if not 0 < min_coverage <= 1:
        raise ValueError(f"min_coverage must lie in (0, 1], got {min_coverage}")
    num_frames = math.ceil((num_samples + 1) / hop_length)
    last_start = max(0, num_frames - window_frames + hop_frames)
    starts = list(range(0, last_start + 1, hop_frames))
    coverage = (num_samples - starts[-1] * hop_length) / (window_frames * hop_length)
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return WindowPlan(starts, max(num_samples, (starts[-1] + window_frames) * hop_length))
