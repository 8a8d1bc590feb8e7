"""Waveform augmentation for training: the label-preserving chain of `models.augment`, with the
noise recordings of `noise_dir` read from disk (the model layer does no file I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from speakembed.models.augment import AugmentConfig, Augmenter, mean_power, synthetic_noise
from speakembed.pipelines.audio.decode import load_audio
from speakembed.pipelines.data.items import audio_files_under
from speakembed.pipelines.base.errors import InputNotFoundError


def make_augmenter(config: Mapping | AugmentConfig | None = None, synthetic_bank: int = 0) -> Augmenter:
    """An Augmenter for `config`, with the recordings under its `noise_dir` (when set) as noise;
    without one, `synthetic_bank` > 0 draws that many synthetic noises once (`synthetic_noise_bank`)
    instead of synthesising a fresh one per call (babble costs ~30 ms per 1.6 s crop)."""
    config = config if isinstance(config, AugmentConfig) else AugmentConfig.from_dict(config or {})
    if config.noise_dir is not None:
        return Augmenter(config, noises=load_noise_folder(config.noise_dir, config.sample_rate))
    return Augmenter(config, noises=synthetic_noise_bank(config, synthetic_bank) if synthetic_bank else None)


def synthetic_noise_bank(config: AugmentConfig, count: int, seconds: float = 8.0, seed: int = 0) -> list[np.ndarray]:
    """`count` seeded synthetic noises (float32, `seconds` long each) of `config.noise_kinds` in
    turn; the Augmenter cuts a random stretch of one for every noisy crop."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * config.sample_rate)
    return [synthetic_noise(config.noise_kinds[index % len(config.noise_kinds)], samples, rng, config.sample_rate)
            for index in range(count)]


def load_noise_folder(folder: str | Path, sample_rate: int = 16000) -> list[np.ndarray]:
    """Every audio file under `folder` (recursively), mono float32 at `sample_rate`; silent
    files are skipped. Raises InputNotFoundError when the folder is missing or holds no usable noise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder}: no such noise folder")
    noises = [noise for noise in (load_audio(path, sample_rate) for path in audio_files_under(folder)) if mean_power(noise) > 0.0]
    if not noises:
        raise InputNotFoundError(f"{folder}: holds no non-silent audio file to use as noise")
    return noises
