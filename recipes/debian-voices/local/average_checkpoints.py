#!/usr/bin/env python3
"""Average the weights of checkpoints of one run (or of runs fine-tuned from one checkpoint):
stochastic weight averaging over the flat end of training, which gives a better-generalising
model than any single point of it.

    average_checkpoints.py OUT CHECKPOINT [CHECKPOINT ...]

Every CHECKPOINT is a `spk train` folder (config.json, model.safetensors, meta.json) of the same
architecture; OUT gets the first one's config.json, the mean of all weights and a meta.json that
names the folders averaged.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def average(folders: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the checkpoints' tensors; ValueError if their tensors differ."""
    states = [load_file(str(folder / "model.safetensors")) for folder in folders]
    names = set(states[0])
    for folder, state in zip(folders, states):
        if set(state) != names or any(state[name].shape != states[0][name].shape for name in names):
            raise ValueError(f"{folder}: not the architecture of {folders[0]}")
    return {name: torch.stack([state[name].float() for state in states]).mean(0).to(states[0][name].dtype)
            for name in sorted(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(average(args.checkpoints), str(args.out / "model.safetensors"))
    shutil.copy(args.checkpoints[0] / "config.json", args.out / "config.json")
    meta = json.loads((args.checkpoints[0] / "meta.json").read_text())
    meta.update({"averaged_checkpoints": [str(folder) for folder in args.checkpoints], "history": []})
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{args.out}: the mean of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
