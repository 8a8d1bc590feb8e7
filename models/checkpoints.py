"""Checkpoint folders: `config.json` (encoder name, constructor arguments, frontend), weights in
`model.safetensors`, and `meta.json` (training data hash, steps, metrics). Written under a
temporary name and renamed, so a killed run never leaves a half-written checkpoint.

A Whisper checkpoint stores only what training changed (`trained_state_dict`: head, layer weights,
fine-tuned blocks); config.json's `base_weights` ({"source", "sha256"}) names the pretrained
Whisper encoder the rest is rebuilt from."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from speakembed.models.frontend import MelConfig
from speakembed.models.registry import EncoderSpec, family_specs, trainable_names
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import replace_folder_atomically

CHECKPOINT_FILES = ("config.json", "model.safetensors", "meta.json")


def checkpoint_family(encoder: str) -> EncoderSpec:
    """The registered trainable family that a checkpoint's config.json names (`encoder`);
    ManifestError for any other name."""
    spec = family_specs().get(encoder)
    if spec is None or spec.training is None:
        raise ManifestError(f"unknown encoder '{encoder}' in checkpoint config; known: {', '.join(trainable_names())}")
    return spec


def build_network(encoder: str, arguments: dict, base_weights: dict | None = None) -> torch.nn.Module:
    """A fresh (untrained) network of trainable family `encoder` (see `registry.Training`). A family
    with a pretrained base (whisper) starts from pretrained weights: `base_weights` {"source": a
    Whisper folder, None or absent for the packaged Whisper-base; "sha256": the weights required,
    optional}."""
    return checkpoint_family(encoder).training.build_network(arguments, base_weights)


def save_checkpoint(folder: Path, *, encoder: str, arguments: dict, mel: MelConfig, network: torch.nn.Module,
                    meta: dict, extra: dict[str, object] | None = None) -> Path:
    """Write a checkpoint folder atomically; `extra` maps file names to objects saved with torch.save
    (the trainer's optimizer and step state)."""

    def write(temporary: Path) -> None:
        config = {"encoder": encoder, "arguments": arguments, "frontend": mel.to_dict()}
        if getattr(network, "base_weights", None) is not None:
            config["base_weights"] = network.base_weights
        write_model_files(temporary, config, network, meta)
        for name, value in (extra or {}).items():
            torch.save(value, temporary / name)

    return replace_folder_atomically(Path(folder), write)


def write_model_files(folder: Path, config: dict, network: torch.nn.Module, meta: dict) -> None:
    """config.json, model.safetensors (the network's weights, see `saved_state_dict`) and meta.json
    into `folder`."""
    from safetensors.torch import save_file

    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {key: value.detach().cpu().contiguous() for key, value in saved_state_dict(network).items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def saved_state_dict(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint stores of `network`: its `trained_state_dict()` when it has frozen
    pretrained parts (the Whisper encoder), else its whole state dict."""
    trained = getattr(network, "trained_state_dict", None)
    return trained() if trained is not None else network.state_dict()


def load_saved_state_dict(network: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load what `saved_state_dict` wrote (strictly: every tensor the checkpoint must hold)."""
    load = getattr(network, "load_trained_state_dict", None) or network.load_state_dict
    load(state)


def load_checkpoint_config(folder: str | Path) -> tuple[dict, dict]:
    """config.json and meta.json of a checkpoint folder, after checking it is complete."""
    folder = Path(folder)
    missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
    if missing:
        raise InputNotFoundError(
            f"{folder}: not a checkpoint folder (missing {', '.join(missing)}); give the --out folder of `spk train`"
        )
    try:
        return json.loads((folder / "config.json").read_text()), json.loads((folder / "meta.json").read_text())
    except json.JSONDecodeError as error:
        raise ManifestError(f"{folder}: damaged checkpoint ({error})") from None


def checkpoint_arguments(config: dict) -> dict:
    """The network arguments of a checkpoint's config.json, with the defaults of its time filled in
    (the family's `legacy_arguments`)."""
    return {**checkpoint_family(config["encoder"]).training.legacy_arguments, **config.get("arguments", {})}
