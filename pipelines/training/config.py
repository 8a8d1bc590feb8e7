"""Training configuration: defaults, a JSON config file, and `--set key=value` overrides.

Defaults depend on the encoder (its `Training.defaults` in models/registry.py): the GE2E encoders
train with the GE2E loss on 1.6 s crops; `whisper` with batch-hard triplet + NT-Xent on 3 s crops,
its Whisper encoder frozen unless `model.trainable_layers` > 0. The resolved configuration is saved
beside every checkpoint (config.json carries the encoder name and arguments; train_config.json
everything else), so a run can be reproduced and resumed. Settings that cannot train raise
UsageError (exit 2).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from speakembed.models.registry import encoder_spec, family_specs, trainable_spec
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError

LOSSES = ("ge2e", "triplet-ntxent")
MERGED_SETTINGS = ("model", "augment", "waveform_augment")  # dict settings that later sources update key by key


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of `spk train` (encoder, model, batch P x K, crops, loss, optimiser, schedule, teacher, augmentation, checkpoints)."""
    encoder: str = "conv-transformer"
    model: dict = field(default_factory=dict)  # encoder constructor arguments (see models/)
    speakers_per_batch: int = 16  # N of GE2E's N x M batch (per process under DDP)
    utterances_per_speaker: int = 6  # M
    crop_frames: int = 160  # 1.6 s crops, the inference window length
    steps: int = 2000
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 3.0
    checkpoint_every: int = 200
    keep_checkpoints: int = 3  # older step-N folders are deleted (each is a full copy of the model)
    eval_every: int = 200
    dev_utterances: int = 200  # dev EER over all pairs of up to this many utterances
    spec_augment: bool = True  # augment the training crops (with `augment`)
    augment: dict = field(default_factory=dict)  # models.augment.FeatureAugmentConfig settings
    augment_waveform: bool = False  # crops from speech.zarr (spk preprocess --keep-speech) through the waveform chain
    waveform_augment: dict = field(default_factory=dict)  # models.augment.AugmentConfig settings of that chain
    loss: str = "ge2e"  # or "triplet-ntxent": nt_xent_weight * NT-Xent(crop, augmented crop) + batch-hard triplet
    triplet_margin: float = 1.0  # Euclidean, between unit embeddings
    nt_xent_temperature: float = 0.5
    nt_xent_weight: float = 1.0  # lambda
    whisper_model: str | None = None  # whisper: a local Whisper folder (CTranslate2 or HF); None: packaged Whisper-base
    cache_crops: int = 4  # frozen whisper: crops per train utterance encoded once (0: encode every step)
    cache_views: int = 2  # frozen whisper: augmented versions of each cached crop
    pretrained_lr_scale: float = 0.05  # learning rate of fine-tuned pretrained blocks, relative to learning_rate
    init_from: str | None = None  # a checkpoint folder (spk train's, or models/pretrained/NAME) to fine-tune
    teacher: str | None = None  # a registered pretrained encoder to distil from (e.g. "lstm")
    distill_weight: float = 1.0  # weight of the cosine distillation loss when a teacher is set
    speaker_groups: str | None = None  # TSV (speaker + group or language column): batches hold same-group speakers
    group_block: int = 4  # with speaker_groups: speakers drawn together from one group (hard negatives)
    seed: int = 0
    device: str | None = None

    def to_dict(self) -> dict:
        """The settings as JSON-ready values (train_config.json, meta.json)."""
        return asdict(self)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, **settings) -> TrainConfig:
    """Defaults <- JSON file `path` <- keyword `settings` <- `overrides` ("key=value", where a
    dotted key like `model.d_model=256` reaches into the encoder arguments)."""
    layers = [] if path is None else [(_read_json(Path(path)), str(path))]
    layers.append(({key: value for key, value in settings.items() if value is not None}, "options"))
    for override in overrides or []:
        key, separator, raw = override.partition("=")
        if not separator or not key:
            raise UsageError(f"--set '{override}': expected KEY=VALUE (e.g. steps=500 or model.d_model=256)")
        layers.append((_nested(key.strip(), _parse_value(raw.strip())), f"--set {override}"))
    encoder = next((values["encoder"] for values, _ in reversed(layers) if "encoder" in values), TrainConfig.encoder)
    # The encoder's own defaults come first, under the file and the options.
    config = _apply(TrainConfig(), trainable_spec(encoder).training.defaults, source=f"{encoder} defaults")
    for values, source in layers:
        config = _apply(config, values, source)
    _validate(config)
    return config


def _validate(config: TrainConfig) -> None:
    """Raise UsageError for settings that cannot train."""
    spec = trainable_spec(config.encoder)
    if config.loss not in LOSSES:
        raise UsageError(f"unknown loss '{config.loss}'; choose one of: {', '.join(LOSSES)}")
    if config.speakers_per_batch < 2 or config.utterances_per_speaker < 2:
        raise UsageError("a batch needs at least 2 speakers (speakers_per_batch) and 2 utterances per speaker "
                         "(utterances_per_speaker)")
    if config.cache_crops < 0 or config.cache_views < 1:
        raise UsageError("cache_crops must be >= 0 (0: no cache) and cache_views >= 1")
    if config.whisper_model is not None and not spec.training.pretrained_base:
        based = [name for name, family in family_specs().items() if family.training and family.training.pretrained_base]
        raise UsageError(f"whisper_model applies only to encoders that start from pretrained weights "
                         f"({', '.join(based)}), not to {config.encoder}")
    if config.teacher is not None:
        teacher = encoder_spec(config.teacher)
        if teacher.frontend != spec.frontend:
            raise UsageError(f"--teacher {config.teacher} reads '{teacher.frontend}' features; --encoder "
                             f"{config.encoder} trains on '{spec.frontend}' features, so it cannot distil from it")
    feature_augmentation(config)
    waveform_augmentation(config)
    if config.group_block < 1:
        raise UsageError(f"group_block must be at least 1, got {config.group_block}")


def waveform_augmentation(config: TrainConfig):
    """`config.waveform_augment` as a models.augment.AugmentConfig; raises UsageError."""
    from speakembed.models.augment import AugmentConfig

    try:
        return AugmentConfig.from_dict(config.waveform_augment)
    except (TypeError, ValueError) as error:
        raise UsageError(f"waveform_augment: {error}") from None


def feature_augmentation(config: TrainConfig, n_mels: int | None = None) -> FeatureAugmentConfig:  # noqa: F821
    """`config.augment` as a FeatureAugmentConfig whose masks fit the crops (and `n_mels` bands when
    given); raises UsageError."""
    from speakembed.models.augment import FeatureAugmentConfig

    try:
        augment = FeatureAugmentConfig.from_dict(config.augment)
        augment.check_fits(config.crop_frames, n_mels)
    except (TypeError, ValueError) as error:
        raise UsageError(f"augment: {error}") from None
    return augment


def _apply(config: TrainConfig, values: dict, source: str) -> TrainConfig:
    known = {item.name for item in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"{source}: unknown training settings {unknown}; known: {', '.join(sorted(known))}")
    for name in MERGED_SETTINGS:
        if name in values:
            values = {**values, name: {**getattr(config, name), **values[name]}}
    return replace(config, **values)


def _nested(key: str, value) -> dict:
    head, _, rest = key.partition(".")
    return {head: _nested(rest, value) if rest else value}


def _parse_value(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # a bare word such as conv-transformer


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such config file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}: not valid JSON ({error})") from None
