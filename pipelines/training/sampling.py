"""What one training step sees: the P x K utterances it draws, their random crops and the
augmented views the network is fed. Every draw is seeded by (seed, step, rank), so a resumed run
continues bit for bit and each rank of a distributed run draws its own batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from speakembed.models.augment import FeatureAugmentConfig, augment_features
from speakembed.pipelines.training.config import TrainConfig, feature_augmentation

if TYPE_CHECKING:
    from speakembed.pipelines.train import Corpus


def sample_batch(corpus: "Corpus", config: TrainConfig, step: int, rank: int) -> torch.Tensor:
    """N x M random crops, (N * M, crop_frames, n_mels) float32, speaker-major order."""
    return torch.from_numpy(np.stack([random_crop(corpus.features.get(segment), config.crop_frames, rng)
                                      for segment, rng in sample_utterances(corpus, config, step, rank)]))


def sample_utterances(corpus: "Corpus", config: TrainConfig, step: int, rank: int) -> Iterator[tuple[str, np.random.Generator]]:
    """The N x M segment ids of one step (speaker-major), each with the step's generator: the
    caller draws that utterance's crop from it before taking the next id (the step's stream)."""
    rng = np.random.default_rng([config.seed, step, rank])
    speakers = sorted(corpus.train)
    chosen = rng.choice(len(speakers), size=config.speakers_per_batch, replace=False)
    for index in chosen:
        utterances = corpus.train[speakers[index]]
        drawn = rng.choice(len(utterances), size=config.utterances_per_speaker, replace=len(utterances) < config.utterances_per_speaker)
        for pick in drawn:
            yield utterances[pick], rng


def random_crop(frames: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A `length`-frame crop; shorter utterances are repeated to fill it."""
    if len(frames) < length:
        frames = np.concatenate([frames] * int(np.ceil(length / len(frames))))
    start = int(rng.integers(0, len(frames) - length + 1))
    return frames[start : start + length]


def training_views(batch: torch.Tensor, config: TrainConfig, step: int, rank: int) -> torch.Tensor:
    """The network's inputs for one step: the crops `batch` (N * M, frames, n_mels), augmented when
    `config.spec_augment`, then for triplet-ntxent a second, independently augmented view of the
    same crops: (views * N * M, frames, n_mels), views 1 (ge2e) or 2."""
    augment = feature_augmentation(config)
    first = _augment(batch, augment, np.random.default_rng([config.seed, step, rank, 1])) if config.spec_augment else batch
    if config.loss == "ge2e":
        return first
    return torch.cat([first, _augment(batch, augment, np.random.default_rng([config.seed, step, rank, 2]))])


def _augment(batch: torch.Tensor, config: FeatureAugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Every crop of `batch` (crops, frames, n_mels) augmented by `config` (SpecAugment masks, ...)."""
    return torch.stack([augment_features(crop, rng, config) for crop in batch])
