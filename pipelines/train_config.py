"""Training configuration: defaults, a JSON config file, and `--set key=value` overrides.

The resolved configuration is saved beside every checkpoint (config.json carries the encoder
name and arguments; train_config.json everything else), so a run can be reproduced and resumed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from speakembed.pipelines.errors import InputNotFoundError, ManifestError

TRAINABLE_ENCODERS = ("conv-transformer", "lstm")


@dataclass(frozen=True)
class TrainConfig:
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
    spec_augment: bool = True
    teacher: str | None = None  # a registered pretrained encoder to distil from (e.g. "lstm")
    distill_weight: float = 1.0  # weight of the cosine distillation loss when a teacher is set
    seed: int = 0
    device: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, **settings) -> TrainConfig:
    """Defaults <- JSON file `path` <- keyword `settings` <- `overrides` ("key=value", where a
    dotted key like `model.d_model=256` reaches into the encoder arguments)."""
    config = TrainConfig()
    if path is not None:
        config = _apply(config, _read_json(Path(path)), source=str(path))
    config = _apply(config, {key: value for key, value in settings.items() if value is not None}, source="options")
    for override in overrides or []:
        key, separator, raw = override.partition("=")
        if not separator or not key:
            raise ManifestError(f"--set '{override}': expected KEY=VALUE (e.g. steps=500 or model.d_model=256)")
        config = _apply(config, _nested(key.strip(), _parse_value(raw.strip())), source=f"--set {override}")
    if config.encoder not in TRAINABLE_ENCODERS:
        raise ManifestError(f"cannot train encoder '{config.encoder}'; choose one of: {', '.join(TRAINABLE_ENCODERS)}")
    if config.speakers_per_batch < 2 or config.utterances_per_speaker < 2:
        raise ManifestError("GE2E needs at least 2 speakers per batch and 2 utterances per speaker")
    return config


def _apply(config: TrainConfig, values: dict, source: str) -> TrainConfig:
    known = {item.name for item in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ManifestError(f"{source}: unknown training settings {unknown}; known: {', '.join(sorted(known))}")
    if "model" in values:
        values = {**values, "model": {**config.model, **values["model"]}}
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
