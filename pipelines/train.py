"""`spk train`: train a speaker encoder (conv-transformer, LSTM or Whisper + head) on preprocessed features.

Data: the output folder of `spk preprocess` (segments.parquet with speaker and split, and
features.zarr with log-mel frames of the speech, made by the frontend the encoder needs:
`--frontend whisper` for the whisper encoder). Each step draws N speakers x M utterances (P x K)
from the train split, a random `crop_frames` crop of each, and minimises `config.loss`:
- `ge2e`: the GE2E softmax loss over the N x M crops (optionally plus cosine distillation towards
  a pretrained teacher);
- `triplet-ntxent`: batch-hard triplet over the crops + nt_xent_weight * NT-Xent between each crop
  and a second, independently augmented view of it (both views in one forward pass).
Every random draw is seeded by (seed, step, rank), so a run resumed from a checkpoint continues
bit for bit.

Scaling: launched under `torchrun --nproc_per_node K spk train ...`, each process trains on its
own N x M batch and gradients are averaged by DistributedDataParallel (gloo on CPU, NCCL on GPU).

A frozen Whisper encoder is not run at every step: the pooled layer states of a fixed set of
crops and augmented views are computed once (pipelines/training/pooled_cache.py) and the head trains on them.

Outputs in OUT: the final checkpoint (config.json, model.safetensors, meta.json),
train_config.json, checkpoints/step-XXXXXXX/ (with trainer_state.pt for --resume), log.jsonl.
A whisper checkpoint holds only the trained tensors; config.json names the pretrained Whisper
weights (`base_weights`, sha256) the rest is rebuilt from.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from speakembed.models.checkpoints import build_network, load_saved_state_dict, save_checkpoint
from speakembed.models.frontend import MelConfig
from speakembed.models.normalize import l2_normalize
from speakembed.models.registry import pick_device, trainable_spec
from speakembed.pipelines.training import pooled_cache
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, OutputError, UsageError
from speakembed.pipelines.data.manifests import read_table
from speakembed.pipelines.scoring.metrics import equal_error_rate
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.training.config import TrainConfig, feature_augmentation
from speakembed.pipelines.training.sampling import WaveformCrops, sample_batch, sample_utterances, training_views

TRAINER_STATE = "trainer_state.pt"
NOISE_BANK = 48  # synthetic noises drawn once for waveform augmentation (without a noise_dir)


@dataclass
class TrainReport:
    """What `spk train` did: steps, final loss, the dev EER, throughput (utterances/s) and the logged history."""
    out_dir: Path
    steps: int
    final_loss: float
    dev_eer: float | None
    utterances_per_second: float
    history: list[dict] = field(default_factory=list)


@dataclass
class Corpus:
    """Train/dev utterances: speaker -> segment ids, and segment id -> log-mel (frames, n_mels)."""

    train: dict[str, list[str]]
    dev: dict[str, list[str]]
    features: object  # speakembed.pipelines.data.features.FeatureStore
    mel: MelConfig
    fingerprint: str
    waveforms: WaveformCrops | None = None  # with augment_waveform: crops cut from speech.zarr
    groups: dict[str, str] | None = None  # with speaker_groups: speaker -> group (e.g. language)


def run(data_dir: str | Path, out_dir: str | Path, *, config: TrainConfig, resume: bool = False,
        progress: Progress | None = None) -> TrainReport:
    """Train per `config` on `data_dir` into `out_dir`; `resume` continues the latest checkpoint."""
    out_dir = _prepare_output(Path(out_dir), resume)
    rank, world_size = _init_distributed(config)
    device = _device(config, rank)
    corpus = load_corpus(Path(data_dir), config)
    torch.manual_seed(config.seed)  # the same initial weights in every process and every run
    pretrained_base = trainable_spec(config.encoder).training.pretrained_base
    base_weights = {"source": config.whisper_model} if pretrained_base else None
    network = _initial_network(config, base_weights).to(device)
    loss_function = make_loss(config).to(device)
    teacher = _load_teacher(config, device)
    optimizer = torch.optim.AdamW(_parameter_groups(network, loss_function, config),
                                  lr=config.learning_rate, weight_decay=config.weight_decay)
    start = _restore(out_dir, network, loss_function, optimizer) if resume else 0
    cache = _pooled_cache(out_dir, network, corpus, config, device, progress)
    trained = _wrap_distributed(network, world_size, device)
    if rank == 0:
        (out_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    history, started, losses = [], time.perf_counter(), []
    for step in range(start, config.steps):
        loss = _train_step(step, rank, trained, loss_function, teacher, optimizer, corpus, config, device, cache)
        losses.append(loss)
        report_progress(progress, f"training (loss {loss:.3f})", step + 1, config.steps)
        done = step + 1
        if rank == 0 and (done % config.eval_every == 0 or done == config.steps):
            history.append(_log(out_dir, done, losses, dev_operating_point(network, corpus, config, device)))
            losses = []
        if rank == 0 and (done % config.checkpoint_every == 0 or done == config.steps):
            _save(out_dir / "checkpoints" / f"step-{done:07d}", network, loss_function, optimizer, corpus, config, done, history)
            _prune_checkpoints(out_dir / "checkpoints", config.keep_checkpoints)
    replicas = _replica_digests(network, world_size)  # every rank takes part, so before the rank-0 save
    if rank == 0:
        _save(out_dir, network, loss_function, optimizer, corpus, config, config.steps, history, with_state=False,
              replicas=replicas)
        pooled_cache.remove(out_dir)
    elapsed = time.perf_counter() - started
    steps_run = max(0, config.steps - start)
    per_second = steps_run * config.speakers_per_batch * config.utterances_per_speaker * world_size / max(elapsed, 1e-9)
    final = history[-1] if history else {}
    return TrainReport(out_dir, config.steps, final.get("loss", float("nan")), final.get("dev_eer"), per_second, history)


def _initial_network(config: TrainConfig, base_weights: dict | None) -> torch.nn.Module:
    """A fresh network of `config.model`, or with `init_from` the trained network of that checkpoint
    folder (its own architecture; `config.model` does not apply), which the run then fine-tunes."""
    if config.init_from is None:
        return build_network(config.encoder, config.model, base_weights)
    from speakembed.models.registry import load_encoder

    trained = load_encoder(checkpoint=config.init_from, device="cpu")  # the one checkpoint reader
    if trained.spec.name != config.encoder:
        raise UsageError(f"init_from {config.init_from}: a {trained.spec.name} checkpoint; this run trains {config.encoder}")
    return trained.network


def _pooled_cache(out_dir: Path, network, corpus: Corpus, config: TrainConfig, device, progress):
    """The frozen-Whisper cache (pipelines/training/pooled_cache.py) when it applies, else None."""
    if not pooled_cache.applies(config):
        return None
    return pooled_cache.prepare(out_dir, network, corpus.train, corpus.features, config, corpus.fingerprint, device, progress)


def load_corpus(data_dir: Path, config: TrainConfig) -> Corpus:
    """Speakers of the train and dev splits with enough utterances, and their features."""
    from speakembed.pipelines.data.features import read_features

    if not data_dir.is_dir():
        raise InputNotFoundError(f"{data_dir}: no such folder; give the --out folder of `spk preprocess`")
    segments = read_table(data_dir / "segments.parquet", "segments")
    features = read_features(data_dir / "features.zarr").load_into_memory()  # random access at every step
    available = set(features.segment_ids)
    segments = segments[segments["segment_id"].isin(available)]
    train = _utterances_by_speaker(segments[segments["split"] == "train"], minimum=2)
    if len(train) < config.speakers_per_batch:
        raise ManifestError(
            f"{data_dir}: the train split has {len(train)} speakers with 2+ utterances; a batch needs "
            f"{config.speakers_per_batch} (lower it with --set speakers_per_batch=N)"
        )
    dev = _utterances_by_speaker(segments[segments["split"] == "dev"], minimum=1)
    digest = hashlib.sha256(pd.util.hash_pandas_object(segments[["segment_id", "speaker", "split"]], index=False).values.tobytes())
    _check_features(data_dir, features.attrs.get("frontend_name", "lstm"), features.n_mels, config)
    mel = MelConfig(**features.attrs["frontend"])
    return Corpus(train, dev, features, mel, digest.hexdigest(), _waveform_crops(data_dir, mel, config),
                  _speaker_groups(config))


def _speaker_groups(config: TrainConfig) -> dict[str, str] | None:
    """speaker -> group from the `speaker_groups` TSV (a `speaker` column and a `group` or
    `language` column, e.g. recipes/debian-voices' labels.tsv), or None."""
    if config.speaker_groups is None:
        return None
    path = Path(config.speaker_groups)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such speaker groups table (speaker_groups)")
    table = pd.read_csv(path, sep="\t", dtype=str)
    column = next((name for name in ("group", "language") if name in table.columns), None)
    if "speaker" not in table.columns or column is None:
        raise ManifestError(f"{path}: a speaker groups table needs a speaker column and a group or language column")
    table = table.dropna(subset=[column])  # a speaker without a group is drawn with the ungrouped ones
    return dict(zip(table["speaker"], table[column]))


def _waveform_crops(data_dir: Path, mel: MelConfig, config: TrainConfig) -> WaveformCrops | None:
    """The speech store with the waveform chain and the encoder's frontend, when `augment_waveform`."""
    if not config.augment_waveform:
        return None
    from speakembed.pipelines.data.speech_store import read_speech
    from speakembed.pipelines.training.augmentation import make_augmenter

    speech = read_speech(data_dir).load_into_memory()
    if speech.n_mels != mel.hop_length:
        raise ManifestError(f"{data_dir}: speech.zarr holds blocks of {speech.n_mels} samples, the features a "
                            f"{mel.hop_length}-sample hop; run spk preprocess --keep-speech again")
    frontend = trainable_spec(config.encoder).make_frontend(mel)
    return WaveformCrops(speech, frontend, make_augmenter({"sample_rate": mel.sample_rate, **config.waveform_augment},
                                                          synthetic_bank=NOISE_BANK))


def _check_features(data_dir: Path, frontend: str, n_mels: int, config: TrainConfig) -> None:
    """Raise ManifestError when the features do not suit the encoder or the augmentation masks."""
    needed = trainable_spec(config.encoder).frontend
    if frontend != needed:
        raise ManifestError(f"{data_dir}: features of the '{frontend}' frontend; --encoder {config.encoder} needs "
                            f"'{needed}' features (run spk preprocess ... --frontend {needed})")
    feature_augmentation(config, n_mels)


def _utterances_by_speaker(segments: pd.DataFrame, minimum: int) -> dict[str, list[str]]:
    grouped = segments.groupby("speaker")["segment_id"].apply(lambda ids: sorted(map(str, ids)))
    return {str(speaker): ids for speaker, ids in sorted(grouped.items()) if len(ids) >= minimum}


def _train_step(step, rank, network, loss_function, teacher, optimizer, corpus, config, device, cache=None) -> float:
    torch.manual_seed(hash((config.seed, step, rank)) % 2**63)  # dropout and augmentation masks
    _set_learning_rate(optimizer, config, step)
    network.train()
    if cache is not None:  # a frozen Whisper: its pooled states were computed once
        views = cache.training_views(sample_utterances(corpus, config, step, rank), config)
        embeddings = network(views.to(device), pooled_states=True)
    else:
        batch, heard = _crops(corpus, config, step, rank)
        batch = batch.to(device)
        embeddings = network(training_views(heard.to(device), config, step, rank))
    loss = batch_loss(loss_function, embeddings, config)
    if teacher is not None:
        from speakembed.models.losses import cosine_distillation_loss

        with torch.no_grad():
            targets = teacher(torch.exp(batch))  # teacher sees linear-power mel, as it was trained
        loss = loss + config.distill_weight * cosine_distillation_loss(embeddings[: len(batch)], targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
    optimizer.step()
    return float(loss.detach())


def _crops(corpus: Corpus, config: TrainConfig, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean crops, the crops the network hears): waveform-augmented ones with `augment_waveform`,
    else the stored features themselves (SpecAugment comes later, in `training_views`)."""
    if corpus.waveforms is not None:
        return corpus.waveforms.sample(corpus, config, step, rank)
    batch = sample_batch(corpus, config, step, rank)
    return batch, batch


def make_loss(config: TrainConfig) -> torch.nn.Module:
    """The loss module of `config.loss` (GE2E has a learnable scale and bias; the other none)."""
    from speakembed.models.losses import GE2ELoss, TripletNTXentLoss

    if config.loss == "ge2e":
        return GE2ELoss()
    return TripletNTXentLoss(config.triplet_margin, config.nt_xent_temperature, config.nt_xent_weight)


def batch_loss(loss_function: torch.nn.Module, embeddings: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The scalar loss of one step's embeddings (views * N * M, D), in `training_views` order."""
    speakers, utterances = config.speakers_per_batch, config.utterances_per_speaker
    if config.loss == "ge2e":
        loss = loss_function(embeddings.view(speakers, utterances, -1))
        return loss[0] if isinstance(loss, tuple) else loss
    crops, augmented = embeddings.chunk(2)
    labels = torch.arange(speakers, device=embeddings.device).repeat_interleave(utterances)
    return loss_function(crops, augmented, labels)


def _parameter_groups(network: torch.nn.Module, loss_function: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """AdamW parameter groups: the new parameters (network and loss) at `learning_rate`, and the
    fine-tuned pretrained ones (top Whisper blocks) at `pretrained_lr_scale` times it. Frozen
    parameters are left out. Raises ManifestError when nothing is trainable."""
    pretrained = {id(p) for p in network.encoder.parameters()} if getattr(network, "base_weights", None) else set()
    trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
    new = [parameter for parameter in trainable if id(parameter) not in pretrained] + list(loss_function.parameters())
    tuned = [parameter for parameter in trainable if id(parameter) in pretrained]
    if not new and not tuned:
        raise ManifestError(f"{config.encoder}: nothing to train (no head, fixed layer weights, frozen encoder)")
    return [{"params": new}] + ([{"params": tuned, "lr_scale": config.pretrained_lr_scale}] if tuned else [])


def _set_learning_rate(optimizer, config: TrainConfig, step: int) -> None:
    """Linear warm-up, then cosine decay to 5 % of the peak (times each group's `lr_scale`)."""
    if step < config.warmup_steps:
        scale = (step + 1) / config.warmup_steps
    else:
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        scale = 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))
    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate * group.get("lr_scale", 1.0) * scale


@torch.inference_mode()
def dev_operating_point(network: torch.nn.Module, corpus: Corpus, config: TrainConfig, device):
    """EER (and its threshold) over all pairs of up to `dev_utterances` dev utterances, each
    embedded as at inference (`embed_utterances`). None without a usable dev split."""
    if len(corpus.dev) < 2:
        return None
    rng = np.random.default_rng(config.seed)
    pool = [(speaker, segment) for speaker, ids in sorted(corpus.dev.items()) for segment in ids]
    picks = sorted(rng.choice(len(pool), size=min(config.dev_utterances, len(pool)), replace=False))
    speakers = np.array([pool[index][0] for index in picks])
    network.eval()
    embeddings = embed_utterances(network, [corpus.features.get(pool[index][1]) for index in picks], config, device)
    scores = (embeddings @ embeddings.T).cpu().numpy()
    upper = np.triu_indices(len(picks), k=1)
    labels = speakers[upper[0]] == speakers[upper[1]]
    if labels.all() or not labels.any():
        return None
    return equal_error_rate(scores[upper], labels)


def embed_utterances(network, utterances: list[np.ndarray], config: TrainConfig, device) -> torch.Tensor:
    """Unit embeddings (utterances, D) of utterances' features (frames_i, n_mels), as at inference:
    an encoder of whole utterances (whisper) encodes each whole (in equal pieces of at most
    `network.max_frames`, averaged by length) and batches them; the others average `crop_frames`
    windows at 50 % overlap."""
    if not trainable_spec(config.encoder).whole_utterances:
        return torch.stack([_embed_windows(network, frames, config, device) for frames in utterances])
    from speakembed.models.embedder import duration_weighted_mean, encode_pieces

    pieces, owners = [], []
    for owner, frames in enumerate(utterances):
        for piece in np.array_split(frames, -(-len(frames) // network.max_frames)):
            pieces.append(torch.from_numpy(piece).to(device))
            owners.append(owner)
    return duration_weighted_mean(encode_pieces(network, pieces, max_pieces_per_batch=16), pieces, owners, len(utterances))


def _embed_windows(network, frames: np.ndarray, config: TrainConfig, device) -> torch.Tensor:
    """(D,): the windows of one utterance (frames, n_mels), embedded, summed and renormalised."""
    from speakembed.models.windows import plan_partial_windows

    length = config.crop_frames
    plan = plan_partial_windows(len(frames) * 160, 160, length, length // 2)
    padded = np.full((max(len(frames), plan.starts[-1] + length), frames.shape[1]), frames.min(), dtype=np.float32)
    padded[: len(frames)] = frames  # padding is the quietest log-mel value (silence), not log(0)
    windows = torch.from_numpy(np.stack([padded[start : start + length] for start in plan.starts])).to(device)
    return l2_normalize(network(windows).sum(dim=0))


def _log(out_dir: Path, step: int, losses: list[float], operating_point) -> dict:
    entry = {"step": step, "loss": float(np.mean(losses)) if losses else float("nan"),
             "dev_eer": operating_point.eer if operating_point else None,
             "dev_threshold": operating_point.threshold if operating_point else None, "time": time.time()}
    with open(out_dir / "log.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    return entry


def _save(folder: Path, network, loss_function, optimizer, corpus: Corpus, config: TrainConfig, step: int,
          history: list[dict], with_state: bool = True, replicas: list[str] | None = None) -> None:
    model = network.module if hasattr(network, "module") else network
    last = history[-1] if history else {}
    meta = {"training_data_sha256": corpus.fingerprint, "steps": step, "train_speakers": len(corpus.train),
            "dev_speakers": len(corpus.dev), "dev_eer": last.get("dev_eer"), "loss": last.get("loss"),
            "verification_threshold": last.get("dev_threshold"),  # EER point on the dev split
            "config": config.to_dict(), "history": history}
    if replicas is not None and len(replicas) > 1:  # a data-parallel run: did every rank end with the same weights?
        meta["distributed"] = {"world_size": len(replicas), "weights_sha256_per_rank": replicas,
                               "ranks_agree": len(set(replicas)) == 1}
    extra = {TRAINER_STATE: {"step": step, "optimizer": optimizer.state_dict(), "loss": loss_function.state_dict()}} if with_state else None
    if with_state:
        save_checkpoint(folder, encoder=config.encoder, arguments=_arguments(model, config), mel=corpus.mel,
                        network=model, meta=meta, extra=extra)
        return
    # The final model lives directly in OUT beside checkpoints/: write its files one by one.
    staging = folder / ".final"
    save_checkpoint(staging, encoder=config.encoder, arguments=_arguments(model, config), mel=corpus.mel, network=model, meta=meta)
    for name in ("config.json", "model.safetensors", "meta.json"):
        os.replace(staging / name, folder / name)
    staging.rmdir()


def _prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the `keep` newest step-N checkpoints."""
    import shutil

    for old in sorted(folder.glob("step-*"))[: -max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)


def _arguments(model, config: TrainConfig) -> dict:
    return model.config() if hasattr(model, "config") else dict(config.model)


def _restore(out_dir: Path, network, loss_function, optimizer) -> int:
    """Load the latest checkpoint in OUT/checkpoints; returns the step to continue from."""
    from safetensors.torch import load_file

    checkpoints = sorted((out_dir / "checkpoints").glob("step-*"))
    checkpoints = [folder for folder in checkpoints if (folder / TRAINER_STATE).is_file()]
    if not checkpoints:
        raise InputNotFoundError(f"{out_dir}: no checkpoint to resume from (looked in {out_dir / 'checkpoints'})")
    latest = checkpoints[-1]
    load_saved_state_dict(network, load_file(str(latest / "model.safetensors")))
    state = torch.load(latest / TRAINER_STATE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    loss_function.load_state_dict(state["loss"])
    return int(state["step"])


def _load_teacher(config: TrainConfig, device):
    if config.teacher is None:
        return None
    from speakembed.models.registry import load_encoder

    teacher = load_encoder(config.teacher, str(device)).network
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher.eval()


def _init_distributed(config: TrainConfig) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    import torch.distributed as distributed

    if not distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo"
        distributed.init_process_group(backend)
    return distributed.get_rank(), world_size


def weights_sha256(network: torch.nn.Module) -> str:
    """sha256 hex digest of every parameter and buffer of `network`, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _replica_digests(network: torch.nn.Module, world_size: int) -> list[str]:
    """The weights digest of every rank (gathered from all processes; one entry without torchrun)."""
    if world_size == 1:
        return [weights_sha256(network)]
    import torch.distributed as distributed

    digests: list[str | None] = [None] * world_size
    distributed.all_gather_object(digests, weights_sha256(network))
    return [str(digest) for digest in digests]


def _wrap_distributed(network, world_size: int, device):
    if world_size == 1:
        return network
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)


def _device(config: TrainConfig, rank: int) -> torch.device:
    """`config.device` (checked: UsageError when absent or not a device), else this process's
    CUDA device (LOCAL_RANK) when there is CUDA, else the CPU."""
    if config.device:
        return pick_device(config.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    return torch.device("cpu")


def _prepare_output(out_dir: Path, resume: bool) -> Path:
    """The output folder (the one output policy: created with its parents, checked writable); a
    folder that already holds files is refused unless the run resumes."""
    out_dir = prepare_output_folder(out_dir)
    if any(out_dir.iterdir()) and not resume:
        raise OutputError(f"{out_dir}: already holds a training run; pass --resume to continue it or choose a new --out")
    return out_dir
