"""Checkpoint folders: `config.json` (encoder name, constructor arguments, frontend), weights in
`model.safetensors`, and `meta.json` (training data hash, steps, metrics). Written under a
temporary name and renamed, so a killed run never leaves a half-written checkpoint. Reading one
(`load_checkpoint_config`, `checkpoint_arguments`, `build_network`, `load_saved_state_dict`) needs
the encoder families, so those live in models/registry.py and are re-exported here.

A Whisper checkpoint stores only what training changed (`trained_state_dict`: head, layer weights,
fine-tuned blocks); config.json's `base_weights` ({"source", "sha256"}) names the pretrained
Whisper encoder the rest is rebuilt from."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from speakembed.models.frontend import MelConfig
from speakembed.models.registry import (  # noqa: F401  (the reading side, which needs the families, lives there)
    CHECKPOINT_FILES, build_network, checkpoint_arguments, checkpoint_family, load_checkpoint_config,
    load_saved_state_dict)
from speakembed.pipelines.base.outputs import replace_folder_atomically


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
