"""What one training step sees: the P x K utterances it draws, their random crops and the
augmented views the network is fed. With `augment_waveform` the crops are cut from the stored
speech (speech.zarr), each put through the waveform chain of models/augment.py (room, noise,
gain, telephone band, lossy codec, small speed changes) and only then turned into log-mels, so
the network hears channels it would otherwise never meet; a teacher still hears the clean crop.
Every draw is seeded by (seed, step, rank), so a resumed run continues bit for bit and each rank
of a distributed run draws its own batch."""

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


class WaveformCrops:
    """Random crops of the stored speech (blocks of `hop` samples, pipelines/data/speech_store.py),
    clean and waveform-augmented, as log-mel features of the training frontend."""

    def __init__(self, speech, frontend: torch.nn.Module, augmenter):
        self.speech, self.frontend, self.augmenter = speech, frontend.eval(), augmenter

    @torch.no_grad()
    def sample(self, corpus: "Corpus", config: TrainConfig, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean, augmented) features, each (N * M, crop_frames, n_mels) float32, speaker-major:
        the same crops as `sample_batch` would draw, cut from the waveforms."""
        clean = [random_crop(self._blocks(segment, corpus.features.num_frames(segment)), config.crop_frames, rng).reshape(-1)
                 for segment, rng in sample_utterances(corpus, config, step, rank)]
        augment_rng = np.random.default_rng([config.seed, step, rank, 3])
        heard = [self.augmenter(waveform, augment_rng) for waveform in clean]
        return self._log_mel(clean, config), self._log_mel(heard, config)

    def _blocks(self, segment: str, num_frames: int) -> np.ndarray:
        """The sample blocks of `segment`, one per stored frame (centred frames can count one more
        than the blocks), so a crop draws the same start as from the features."""
        blocks = self.speech.get(segment)
        return np.pad(blocks, ((0, max(0, num_frames - len(blocks))), (0, 0)))

    def _log_mel(self, waveforms: list[np.ndarray], config: TrainConfig) -> torch.Tensor:
        frames = self.frontend(torch.from_numpy(np.stack(waveforms)))
        return frames[:, : config.crop_frames].contiguous()


def sample_utterances(corpus: "Corpus", config: TrainConfig, step: int, rank: int) -> Iterator[tuple[str, np.random.Generator]]:
    """The N x M segment ids of one step (speaker-major), each with the step's generator: the
    caller draws that utterance's crop from it before taking the next id (the step's stream)."""
    rng = np.random.default_rng([config.seed, step, rank])
    for speaker in batch_speakers(sorted(corpus.train), corpus.groups, config, rng):
        utterances = corpus.train[speaker]
        drawn = rng.choice(len(utterances), size=config.utterances_per_speaker, replace=len(utterances) < config.utterances_per_speaker)
        for pick in drawn:
            yield utterances[pick], rng


def batch_speakers(speakers: list[str], groups: dict[str, str] | None, config: TrainConfig,
                   rng: np.random.Generator) -> list[str]:
    """The `speakers_per_batch` distinct speakers of one step. With `groups` (speaker -> group, e.g.
    language) the batch is filled with blocks of up to `group_block` speakers of one group, so a
    speaker's negatives share its group and a model cannot pass by telling groups (languages,
    packages) apart; groups are drawn in proportion to their number of speakers, the rest of the
    batch uniformly. Without groups: a uniform draw."""
    size = config.speakers_per_batch
    if not groups:
        return [speakers[index] for index in rng.choice(len(speakers), size=size, replace=False)]
    members: dict[str, list[str]] = {}
    for speaker in speakers:
        members.setdefault(groups.get(speaker, f"\0{speaker}"), []).append(speaker)
    shared = sorted(group for group, names in members.items() if len(names) > 1)
    chosen: list[str] = []
    while shared and len(chosen) < size:
        weights = np.array([len(members[group]) for group in shared], dtype=float)
        group = shared.pop(int(rng.choice(len(shared), p=weights / weights.sum())))
        block = min(config.group_block, len(members[group]), size - len(chosen))
        chosen += [members[group][index] for index in rng.choice(len(members[group]), size=block, replace=False)]
    taken = set(chosen)
    rest = [speaker for speaker in speakers if speaker not in taken]
    chosen += [rest[index] for index in rng.choice(len(rest), size=size - len(chosen), replace=False)]
    return chosen


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
