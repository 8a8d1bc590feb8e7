"""Whisper speaker encoder: Whisper log-mel frames -> Whisper encoder -> softmax-weighted sum of
its layers' hidden states -> mean over the valid frames -> MLP head -> L2.

Input: Whisper log-mel (batch, frames, 80), frames-first like the other encoders
(`models.frontend.WhisperFrontend`), at most 3000 frames (30 s); optional `lengths` (batch,) counts
each row's valid frames. Output: unit-length embeddings (batch, embedding_size), or (batch,
d_model) without a head.

Only the frames given are encoded: the positional table is sliced to the input's length instead
of padding every input to 30 s as Whisper does, which is several times faster for short clips.
Padding never changes an embedding: padded frames are zeroed before each convolution (a lone
clip's convolution sees the same zeros), masked out of attention (as keys) and out of the pooling,
so a clip padded to 30 s gives the embedding of the clip alone. (Unmasked 30 s padding, as
Whisper was trained, changes the hidden states a little: `mask_padding=False` reproduces it.)

Checkpoints: `trained_state_dict` leaves out the frozen encoder (a frozen Whisper-base is 20 M
parameters, the head 0.4 M); `pretrained_speaker_encoder` rebuilds the network on the pretrained
weights that `base_weights` names (checked by sha256), and `load_trained_state_dict` adds the rest.

Layer states: index 0 is the input embedding (convolutions + positions), index i the output of
block i; the last one passes Whisper's final LayerNorm, as `WhisperEncoder` returns it. Blocks
above the highest state with a non-zero fixed weight are not run at all.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from speakembed.models.conv_transformer import checked_lengths, frame_mask
from speakembed.models.normalize import EPSILON, l2_normalize
from speakembed.models.whisper_import import CONFIG_FIELDS, build_whisper_encoder, encoder_folder
from speakembed.pipelines.base.errors import ManifestError


class WhisperSpeakerEncoder(nn.Module):
    """Whisper encoder + layer weighting + masked mean pooling + MLP head + L2.

    whisper: the encoder's sizes (`whisper_import.CONFIG_FIELDS`); its weights come from the state
        dict (`whisper_import.load_whisper_encoder` or a checkpoint).
    layer_weights: initial weight of each layer state (encoder_layers + 1 values, normalised);
        None: uniform. With `learn_layer_weights` they are softmax logits trained with the rest;
        otherwise fixed, and their zeros skip the blocks above the last used state.
    head_hidden: hidden units of the MLP head d_model -> head_hidden -> ReLU -> embedding_size;
        None: no head, the pooled d_model-dimensional state is the embedding.
    trainable_layers: how many top encoder blocks are fine-tuned (0: the encoder is frozen; the
        final LayerNorm is trained with the top block). Convolutions and positions stay frozen.
    mask_padding: keep padded frames out of attention (see the module docstring).
    All arguments are JSON values, so `config()` round-trips through a checkpoint's config.json.
    `base_weights` ({"source", "sha256"}) names the pretrained encoder weights when the network was
    built by `pretrained_speaker_encoder`; None otherwise.
    """

    base_weights: dict | None = None

    def __init__(self, whisper: dict, layer_weights: list[float] | None = None, learn_layer_weights: bool = True,
                 head_hidden: int | None = 512, embedding_size: int = 256, trainable_layers: int = 0,
                 mask_padding: bool = True):
        super().__init__()
        self._config = {"whisper": dict(whisper), "layer_weights": layer_weights,
                        "learn_layer_weights": learn_layer_weights, "head_hidden": head_hidden,
                        "embedding_size": embedding_size, "trainable_layers": trainable_layers,
                        "mask_padding": mask_padding}
        self.encoder = build_whisper_encoder(whisper)
        num_states = len(self.encoder.layers) + 1
        self._init_layer_weights(layer_weights, num_states, learn_layer_weights)
        d_model = self.encoder.config.d_model
        self.head = (nn.Sequential(nn.Linear(d_model, head_hidden), nn.ReLU(), nn.Linear(head_hidden, embedding_size))
                     if head_hidden else None)
        self.set_trainable_layers(trainable_layers)
        self._layer_head_mask = "layer_head_mask" in inspect.signature(self.encoder.layers[0].forward).parameters

    def _init_layer_weights(self, weights: list[float] | None, count: int, learn: bool) -> None:
        weights = torch.ones(count) if weights is None else torch.tensor(weights, dtype=torch.float32)
        if weights.shape != (count,) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError(f"layer_weights needs {count} non-negative values (embedding + each block), "
                             f"not all zero; got {weights.tolist()}")
        weights = weights / weights.sum()
        if learn:
            self.layer_logits = nn.Parameter(weights.clamp_min(1e-4).log())
        else:
            self.register_buffer("fixed_layer_weights", weights, persistent=False)

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable."""
        return {**self._config, "whisper": dict(self._config["whisper"])}

    @property
    def embedding_size(self) -> int:
        """Size D of the embeddings (the head's output, or d_model without a head)."""
        return embedding_size_of(self._config)

    @property
    def max_frames(self) -> int:
        """The longest input in 10 ms frames (3000 for Whisper: 30 s)."""
        return 2 * self.encoder.config.max_source_positions

    def layer_weights(self) -> torch.Tensor:
        """The current weight of each layer state (encoder_layers + 1,), summing to 1."""
        if hasattr(self, "layer_logits"):
            return torch.softmax(self.layer_logits, dim=0)
        return self.fixed_layer_weights

    def set_trainable_layers(self, count: int) -> None:
        """Freeze the encoder except its top `count` blocks (and then its final LayerNorm)."""
        blocks = len(self.encoder.layers)
        if not 0 <= count <= blocks:
            raise ValueError(f"trainable_layers must lie in [0, {blocks}], got {count}")
        self._config["trainable_layers"] = count
        self.encoder.requires_grad_(False)
        for block in self.encoder.layers[blocks - count:]:
            block.requires_grad_(True)
        self.encoder.layer_norm.requires_grad_(count > 0)

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict without the frozen encoder's tensors: the layer weights, the head and the
        fine-tuned top blocks (with the final LayerNorm), which is what a checkpoint stores."""
        return {name: value for name, value in self.state_dict().items() if not self._is_frozen(name)}

    def load_trained_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load `trained_state_dict` output (or a whole state dict); the frozen encoder keeps its
        weights. Raises ValueError naming unknown tensors or trained ones that are missing."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [name for name in missing if not self._is_frozen(name)]
        if missing or unexpected:
            raise ValueError(f"weights do not fit this Whisper speaker encoder: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")

    def _is_frozen(self, name: str) -> bool:
        """Whether state-dict entry `name` belongs to the frozen part of the Whisper encoder."""
        if not name.startswith("encoder."):
            return False
        blocks, count = len(self.encoder.layers), self._config["trainable_layers"]
        trained = tuple(f"encoder.layers.{index}." for index in range(blocks - count, blocks))
        return not name.startswith(trained + (("encoder.layer_norm.",) if count else ()))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None,
                pooled_states: bool = False) -> torch.Tensor:
        """inputs (batch, frames, n_mels) Whisper log-mel; lengths (batch,) valid frames, all
        valid when None. With `pooled_states`, inputs are instead `pooled_layer_states` output
        (batch, states, d_model) and lengths is ignored. Returns (batch, embedding_size) unit rows."""
        if not pooled_states:
            lengths = checked_lengths(inputs, lengths, self.encoder.config.num_mel_bins, self.max_frames)
            inputs = self.pooled_layer_states(inputs, lengths)
        return self.embed_pooled(inputs)

    def pooled_layer_states(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each needed layer state mean-pooled over the valid positions: (batch, states, d_model).

        Pooling is linear, so pooling each state and then mixing them (`embed_pooled`) equals
        mixing, then pooling; a frozen encoder's pooled states can therefore be cached."""
        states, valid = self.layer_states(features, lengths)
        return torch.stack([masked_mean(state, valid) for state in states], dim=1)

    def embed_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """(batch, states, d_model) pooled layer states -> layer weighting -> head -> L2:
        (batch, embedding_size) unit rows."""
        weights = self.layer_weights()[: pooled.shape[1]].to(pooled.dtype)
        mixed = (weights[None, :, None] * pooled).sum(dim=1)
        return l2_normalize(self.head(mixed) if self.head is not None else mixed)

    def layer_states(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Hidden states (batch, positions, d_model) of the layers needed, and the (batch,
        positions) mask of valid positions (20 ms each: the second convolution has stride 2)."""
        encoder, blocks = self.encoder, len(self.encoder.layers)
        frozen_below = blocks - self._config["trainable_layers"]  # states up to here need no gradient
        with torch.set_grad_enabled(torch.is_grad_enabled() and frozen_below == 0):
            hidden, valid = self._embed(features, lengths)
        attention_mask = self._attention_mask(valid)
        states = [hidden]
        for index, block in enumerate(encoder.layers[: self._needed_blocks()]):
            with torch.set_grad_enabled(torch.is_grad_enabled() and index >= frozen_below):
                hidden = self._run_block(block, hidden, attention_mask)
            states.append(hidden)
        if len(states) == blocks + 1:
            with torch.set_grad_enabled(torch.is_grad_enabled() and frozen_below < blocks):
                states[-1] = encoder.layer_norm(states[-1])
        return states, valid

    def _embed(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolutions + sliced positions: (batch, positions, d_model) and the valid mask."""
        encoder = self.encoder
        mask = frame_mask(lengths, features.shape[1]).unsqueeze(1)  # (batch, 1, frames)
        hidden = nn.functional.gelu(encoder.conv1(features.transpose(1, 2) * mask))
        hidden = nn.functional.gelu(encoder.conv2(hidden * mask)).transpose(1, 2)
        positions = hidden.shape[1]
        hidden = hidden + encoder.embed_positions.weight[:positions]
        return hidden, frame_mask((lengths + 1) // 2, positions)

    def _attention_mask(self, valid: torch.Tensor) -> torch.Tensor | None:
        """Additive (batch, 1, positions, positions) mask hiding padded keys; None without padding."""
        if not self._config["mask_padding"] or bool(valid.all()):
            return None
        batch, positions = valid.shape
        blocked = torch.zeros(valid.shape, dtype=self.encoder.conv1.weight.dtype, device=valid.device)
        blocked = blocked.masked_fill(~valid, torch.finfo(blocked.dtype).min)
        return blocked[:, None, None, :].expand(batch, 1, positions, positions)

    def _run_block(self, block: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """One WhisperEncoderLayer (transformers 4.x returns a tuple and wants a head mask; 5.x not)."""
        output = block(hidden, attention_mask, layer_head_mask=None) if self._layer_head_mask else block(hidden, attention_mask)
        return output[0] if isinstance(output, tuple) else output

    def _needed_blocks(self) -> int:
        """Blocks to run: all when the weights are learnt, else up to the last non-zero weight."""
        if hasattr(self, "layer_logits"):
            return len(self.encoder.layers)
        return int(torch.nonzero(self.fixed_layer_weights).max())


def embedding_size_of(arguments: dict) -> int:
    """The embedding size of `WhisperSpeakerEncoder(**arguments)` (full arguments, as `config()`
    gives them): `embedding_size` with a head, else the encoder's d_model."""
    return int(arguments["embedding_size"] if arguments["head_hidden"] else arguments["whisper"]["d_model"])


def pretrained_speaker_encoder(arguments: dict, source: str | None = None,
                               sha256: str | None = None) -> WhisperSpeakerEncoder:
    """`WhisperSpeakerEncoder(**arguments)` on the pretrained Whisper encoder of `source` (None: the
    packaged Whisper-base; else a local CTranslate2/Hugging Face folder, see
    `whisper_import.encoder_folder`). `arguments` may leave out `whisper` (the sizes of the weights).

    sha256: the weights a checkpoint was trained on; other weights raise ManifestError. The
    network's `base_weights` records {"source", "sha256"} for the checkpoint's config.json.
    """
    from safetensors.torch import load_file

    folder = encoder_folder(source)
    described = "the packaged Whisper-base" if source is None else str(source)
    if sha256 is not None and folder.sha256 != sha256:
        raise ManifestError(f"the checkpoint was trained on Whisper encoder weights {sha256[:12]}, but {described} "
                            f"gives {folder.sha256[:12]}; install the weights it was trained on")
    sizes = {name: arguments.get("whisper", folder.config)[name] for name in CONFIG_FIELDS}
    if sizes != {name: folder.config[name] for name in CONFIG_FIELDS}:
        raise ManifestError(f"{described}: a Whisper encoder of sizes {folder.config}, not {sizes}")
    network = WhisperSpeakerEncoder(**{**arguments, "whisper": folder.config})
    network.encoder.load_state_dict(load_file(str(folder.weights)))
    network.base_weights = {"source": _portable_source(source), "sha256": folder.sha256}
    return network


def _portable_source(source: str | None) -> str | None:
    """A local folder as an absolute path (the checkpoint may be used from elsewhere); else as given."""
    if source is None:
        return None
    path = Path(source).expanduser()
    return str(path.resolve()) if path.is_dir() else str(source)


def masked_mean(hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the valid time steps: hidden (batch, steps, D), valid (batch, steps) bool -> (batch, D)."""
    weights = valid.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(EPSILON)
