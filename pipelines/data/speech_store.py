"""Speech store: the VAD-kept waveform of every segment, for waveform augmentation in training.

`spk preprocess --keep-speech` writes OUT/speech.zarr beside features.zarr. It is a features
store (pipelines/data/features.py, the same writer, reader and atomic swap) whose "frames" are
blocks of `hop` consecutive samples: block i holds samples [i * hop, (i + 1) * hop), so block i
lines up with log-mel frame i of the 10 ms frontends and a crop of F frames is F blocks. float16
keeps ~66 dB of dynamic range, plenty for training audio that is augmented anyway; 6 h of speech
take ~0.7 GB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError
from speakembed.pipelines.data.features import FeatureStore, FeatureWriter, read_features

SPEECH_STORE = "speech.zarr"


def speech_blocks(samples: np.ndarray, hop: int) -> np.ndarray:
    """(ceil(samples / hop), hop) float32 blocks of a mono waveform, the last one zero-padded."""
    blocks = -(-len(samples) // hop)
    padded = np.zeros(blocks * hop, dtype=np.float32)
    padded[: len(samples)] = samples
    return padded.reshape(blocks, hop)


class SpeechWriter(FeatureWriter):
    """A FeatureWriter of waveforms: `add(segment_id, samples)` takes (samples,) float32."""

    def __init__(self, path: str | Path, hop: int):
        super().__init__(path, n_mels=hop)

    def add(self, segment_id: str, samples: np.ndarray) -> None:
        """Append the mono waveform (samples,) of `segment_id`."""
        super().add(segment_id, speech_blocks(np.asarray(samples, dtype=np.float32), self.n_mels))


def read_speech(data_dir: str | Path) -> FeatureStore:
    """Open OUT/speech.zarr of a `spk preprocess --keep-speech` output folder; its `get(id)` gives
    (blocks, hop) sample blocks. InputNotFoundError (naming the option) when there is none."""
    path = Path(data_dir) / SPEECH_STORE
    if not path.is_dir():
        raise InputNotFoundError(f"{path}: no speech store; waveform augmentation needs "
                                 f"`spk preprocess ... --keep-speech` (it keeps the VAD-kept waveforms)")
    return read_features(path)
