"""Speaker embedding -> Kokoro voice: the adapter that conditions the TTS of `spk clone`.

Kokoro's style space is only known where voice tables exist, so the adapter does not regress a
raw 256-d style vector (which could leave that region and break the decoder). It predicts mixture
weights over the stock style tables (softmax, so the style stays a convex mixture) and a
resampling factor: playing the synthesised speech faster or slower moves pitch and formants
together, reaching voices outside the span of the stock ones (a deeper or brighter vocal tract).
With `split_halves` it predicts a second mixture for the prosody half of the style (Kokoro feeds
style[:128] to the decoder, style[128:] to the duration/F0 predictor), so timbre and speaking
style can come from different voices.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError

ADAPTER_FILES = ("config.json", "model.safetensors", "meta.json")
MAX_LOG_FACTOR = 0.2  # resampling factors are kept within exp(+-0.2) = 0.82 .. 1.22


class StyleAdapter(nn.Module):
    """(batch, embedding_size) unit embeddings -> mixture logits (batch, voices), log factor (batch,)
    and, with `split_halves`, prosody mixture logits (batch, voices)."""

    def __init__(self, embedding_size: int = 256, voices: list[str] | tuple[str, ...] = (), hidden: int = 128,
                 encoder: str = "lstm", split_halves: bool = False):
        super().__init__()
        if not voices:
            raise ManifestError("a clone adapter needs the names of the voice tables it mixes")
        self.voices, self.encoder, self.hidden, self.embedding_size = list(voices), encoder, hidden, embedding_size
        self.split_halves = split_halves
        self.body = nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mixture = nn.Linear(hidden, len(self.voices))
        self.prosody_mixture = nn.Linear(hidden, len(self.voices)) if split_halves else None
        self.log_factor = nn.Linear(hidden, 1)

    def forward(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Speaker embeddings (N, D) -> (mixture logits over the stock voices (N, voices), log resampling factors (N,) bounded by MAX_LOG_FACTOR)."""
        logits, log_factor, _ = self.heads(embeddings)
        return logits, log_factor

    def heads(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`forward`'s two outputs and the prosody half's mixture logits (N, voices), from one pass
        through the body; None for the last when the adapter mixes both halves alike."""
        hidden = self.body(embeddings)
        prosody = self.prosody_mixture(hidden) if self.prosody_mixture is not None else None
        return self.mixture(hidden), MAX_LOG_FACTOR * torch.tanh(self.log_factor(hidden).squeeze(-1)), prosody

    def config(self) -> dict:
        """The constructor arguments (config.json of the adapter folder)."""
        return {"embedding_size": self.embedding_size, "voices": self.voices, "hidden": self.hidden,
                "encoder": self.encoder, "split_halves": self.split_halves}


def save_adapter(folder: Path, adapter: StyleAdapter, meta: dict) -> Path:
    """Write config.json, model.safetensors and meta.json (the model card) atomically."""
    from speakembed.models.checkpoints import write_model_files
    from speakembed.pipelines.base.outputs import replace_folder_atomically

    return replace_folder_atomically(Path(folder), lambda temporary: write_model_files(temporary, adapter.config(), adapter, meta))


def adapter_voices(folder: Path) -> list[str]:
    """The names of the voice tables the adapter of `folder` mixes (from its config.json, no weights read)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise InputNotFoundError(f"{folder}: not a clone adapter folder (missing config.json)")
    return list(json.loads(path.read_text())["voices"])


def load_adapter(folder: Path) -> tuple[StyleAdapter, dict]:
    """The adapter of a folder written by `save_adapter`, in eval mode, and its model card."""
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        raise InputNotFoundError(f"{folder}: not a clone adapter folder (missing {', '.join(missing)})")
    adapter = StyleAdapter(**json.loads((folder / "config.json").read_text()))
    adapter.load_state_dict(load_file(str(folder / "model.safetensors")))
    return adapter.eval(), json.loads((folder / "meta.json").read_text())
