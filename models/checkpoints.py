"""Checkpoint folders: `config.json` (encoder name, constructor arguments, frontend), weights in
`model.safetensors`, and `meta.json` (training data hash, steps, metrics). Written under a
temporary name and renamed, so a killed run never leaves a half-written checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from speakembed.models.frontend import MelConfig
from speakembed.pipelines.errors import InputNotFoundError, ManifestError

CHECKPOINT_FILES = ("config.json", "model.safetensors", "meta.json")


def build_network(encoder: str, arguments: dict) -> torch.nn.Module:
    """A fresh (untrained) network of a trainable encoder family."""
    if encoder == "conv-transformer":
        from speakembed.models.conv_transformer import ConvTransformerEncoder

        return ConvTransformerEncoder(**arguments)
    if encoder == "lstm":
        from speakembed.models.lstm import LSTMEncoder

        return LSTMEncoder(**arguments)
    raise ManifestError(f"unknown encoder '{encoder}' in checkpoint config")


def save_checkpoint(folder: Path, *, encoder: str, arguments: dict, mel: MelConfig, network: torch.nn.Module,
                    meta: dict, extra: dict[str, object] | None = None) -> Path:
    """Write a checkpoint folder atomically; `extra` maps file names to objects saved with torch.save
    (the trainer's optimizer and step state)."""

    def write(temporary: Path) -> None:
        config = {"encoder": encoder, "arguments": arguments, "frontend": mel.to_dict()}
        write_model_files(temporary, config, network, meta)
        for name, value in (extra or {}).items():
            torch.save(value, temporary / name)

    return write_folder_atomically(Path(folder), write)


def write_model_files(folder: Path, config: dict, network: torch.nn.Module, meta: dict) -> None:
    """config.json, model.safetensors (the network's weights) and meta.json into `folder`."""
    from safetensors.torch import save_file

    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {key: value.detach().cpu().contiguous() for key, value in network.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def write_folder_atomically(folder: Path, write) -> Path:
    """Fill a temporary sibling folder with `write(temporary)`, then swap it in for `folder`, so a
    killed process never leaves a half-written folder behind."""
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    write(temporary)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(temporary, folder)
    return folder


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


def load_network(folder: str | Path) -> torch.nn.Module:
    """The trained network of a checkpoint folder, in eval mode on the CPU."""
    from safetensors.torch import load_file

    config, _ = load_checkpoint_config(folder)
    network = build_network(config["encoder"], config.get("arguments", {}))
    network.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
    return network.eval()
