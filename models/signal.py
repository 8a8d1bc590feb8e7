"""Signal helpers without torch: they serve the audio pipelines as well as the models, so that
importing a job does not load torch."""

from __future__ import annotations

import numpy as np


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality) of a mono float32 waveform (samples,) from
    `source_rate` to `target_rate` Hz; returns float32."""
    if source_rate == target_rate or len(waveform) == 0:
        return waveform.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(waveform, source_rate, target_rate, quality="HQ").astype(np.float32, copy=False)
