"""Frozen-encoder cache for `spk train --encoder whisper`: pooled layer states of fixed crops.

With the Whisper encoder frozen (`model.trainable_layers` 0), all that training changes — the
layer weights and the MLP head — acts after the masked mean pooling, and pooling is linear, so a
crop's pooled layer states (states, d_model) fix its embedding exactly
(`WhisperSpeakerEncoder.embed_pooled`). Encoding every crop at every step costs about 5 s per
step of 16 x 4 crops on a 2-core CPU; encoding a fixed set of crops once makes a step cost
milliseconds. Each train utterance gets `cache_crops` random crops, each kept as it is (view 0)
and in `cache_views` augmented versions (views 1..); a step draws its crops and views from that
set instead of afresh. The price is less variety, which the number of crops and views sets.

The cache lives in OUT/cache/ while training runs (so a resumed run reuses it: it is keyed by
the data, the crop and augmentation settings, the seed and the encoder weights) and is deleted
when training ends. Under torchrun every process builds the same cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speakembed.models.augment import augment_features
from speakembed.models.registry import trainable_spec
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.training.config import TrainConfig, feature_augmentation

CACHE_FOLDER = "cache"
CROPS_PER_BATCH = 32  # crops encoded at once while building


@dataclass(frozen=True)
class PooledStateCache:
    """states (utterances, crops, 1 + views, layer states, d_model) float16; `row` maps a train
    segment id to its first axis."""

    states: np.ndarray
    row: dict[str, int]

    def training_views(self, picks: Iterable[tuple[str, np.random.Generator]], config: TrainConfig) -> torch.Tensor:
        """The pooled states of two views of one random cached crop of each picked segment (drawn
        from the generator it comes with, `sampling.sample_utterances`), in `sampling.training_views`
        order: (2 * picks, states, d_model) float32. The first view is the crop as it is (an
        augmented one when `config.spec_augment`), the second an augmented one."""
        _, crops, views, *_ = self.states.shape
        first, second = [], []
        for segment, rng in picks:
            crop = int(rng.integers(crops))
            augmented = 1 + rng.permutation(views - 1)
            plain = int(augmented[1 % len(augmented)]) if config.spec_augment else 0
            first.append(self.states[self.row[segment], crop, plain])
            second.append(self.states[self.row[segment], crop, int(augmented[0])])
        return torch.from_numpy(np.stack(first + second).astype(np.float32))


def applies(config: TrainConfig) -> bool:
    """Whether the cache is turned on and `config` trains a network whose frozen part fixes its
    pooled states (the registry's `Training.caches_pooled_states`: a frozen Whisper encoder)."""
    caches = trainable_spec(config.encoder).training.caches_pooled_states
    return config.cache_crops > 0 and caches is not None and caches(config.model)


def prepare(out_dir: Path, network, train: dict[str, list[str]], features, config: TrainConfig, fingerprint: str,
            device: torch.device, progress: Progress | None = None) -> PooledStateCache:
    """The cache of `train` (speaker -> segment ids; frames from `features`), read from
    OUT/cache/ when it was built with the same settings, else built (and saved there)."""
    segments = [segment for speaker in sorted(train) for segment in train[speaker]]
    key = _cache_key(network, config, fingerprint)
    folder = out_dir / CACHE_FOLDER
    if (folder / "key.json").is_file() and json.loads((folder / "key.json").read_text()) == key:
        states = np.load(folder / "states.npy", mmap_mode="r")
    else:
        states = _build(network, segments, features, config, device, progress)
        _save(folder, states, key)
    return PooledStateCache(states, {segment: index for index, segment in enumerate(segments)})


def remove(out_dir: Path) -> None:
    """Delete OUT/cache/ (training finished)."""
    shutil.rmtree(out_dir / CACHE_FOLDER, ignore_errors=True)


@torch.inference_mode()
def _build(network, segments: list[str], features, config: TrainConfig, device: torch.device,
           progress: Progress | None) -> np.ndarray:
    from speakembed.pipelines.training.sampling import random_crop

    augment = feature_augmentation(config)
    views = []  # (frames, n_mels) crops, utterance-major, then crop, then view
    for index, segment in enumerate(segments):
        rng = np.random.default_rng([config.seed, index, 7])  # 7: apart from the steps' (seed, step, rank)
        frames = features.get(segment)
        for _ in range(config.cache_crops):
            crop = torch.from_numpy(random_crop(frames, config.crop_frames, rng))
            views.append(crop)
            views.extend(augment_features(crop, rng, augment) for _ in range(config.cache_views))
    network.eval()
    pooled = []
    for start in range(0, len(views), CROPS_PER_BATCH):
        batch = torch.stack(views[start : start + CROPS_PER_BATCH]).to(device)
        lengths = torch.full((len(batch),), batch.shape[1], dtype=torch.long, device=device)
        pooled.append(network.pooled_layer_states(batch, lengths).to(torch.float16).cpu().numpy())
        report_progress(progress, "caching the frozen Whisper states", min(start + CROPS_PER_BATCH, len(views)), len(views))
    states = np.concatenate(pooled)
    return states.reshape(len(segments), config.cache_crops, 1 + config.cache_views, *states.shape[1:])


def _cache_key(network, config: TrainConfig, fingerprint: str) -> dict:
    settings = {name: getattr(config, name) for name in ("seed", "crop_frames", "augment", "model", "cache_crops", "cache_views")}
    weights = hashlib.sha256()
    for name, value in sorted(network.encoder.state_dict().items()):
        weights.update(name.encode())
        weights.update(value.detach().cpu().numpy().tobytes())
    return {"data": fingerprint, "settings": settings, "encoder": weights.hexdigest(),
            "layer_states": len(network.encoder.layers) + 1}


def _save(folder: Path, states: np.ndarray, key: dict) -> None:
    """Write states.npy, then key.json last: a cache without its key is rebuilt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").unlink(missing_ok=True)
    partial = folder / "states.partial.npy"
    np.save(partial, states)
    os.replace(partial, folder / "states.npy")
    (folder / "key.json").write_text(json.dumps(key) + "\n")
