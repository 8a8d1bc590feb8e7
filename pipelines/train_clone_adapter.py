"""`spk train clone-adapter`: learn speaker embedding -> Kokoro voice from synthesised speech.

Training pairs come from a corpus whose voices we made ourselves: recipes/synthetic/local/
make_kokoro_bank.py (or make_corpus.py for the five packaged voices) writes Kokoro voices (sparse
mixtures of the stock style tables, some resampled) and their recipe in `kokoro_voices.tsv`
(speaker, one weight column per stock voice, factor, and optionally `prosody:<voice>` columns:
the weights of the prosody half of the style where it is mixed apart).
Every utterance of those speakers is embedded; the adapter learns to predict the recipe from the
mean embedding of 1-4 random utterances of a speaker (soft cross-entropy on the weights, squared
error on the log factor). A hash-chosen 15 % of the voices is held out to report generalisation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from speakembed.models.normalize import unit_length
from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.audio.decode import is_audio_file
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.progress import Progress, report_progress

VOICES_TABLE = "kokoro_voices.tsv"
PROSODY_PREFIX = "prosody:"  # kokoro_voices.tsv columns of the prosody half's weights
DRAWS = 8  # random utterance subsets per voice per step
FACTOR_LOSS_WEIGHT = 25.0  # log factors are ~0.1: weigh their squared error like the mixture's cross-entropy


@dataclass(frozen=True)
class AdapterConfig:
    """Settings of `spk train clone-adapter`: conditioning encoder or checkpoint, steps, learning rate, hidden size, held-out fraction, VAD, seed, device."""
    encoder: str = DEFAULT_ENCODER
    checkpoint: str | None = None
    steps: int = 1500
    learning_rate: float = 3e-3
    hidden: int = 128
    held_out_fraction: float = 0.15
    vad: str = "silero"
    seed: int = 0
    device: str | None = None


@dataclass
class AdapterReport:
    """What the adapter training did: output folder, voices and utterances seen, held-out voices and their weight / factor errors, encoder id."""
    out_dir: Path
    voices: int
    utterances: int
    held_out_voices: int
    held_out_weight_error: float  # mean total-variation distance of predicted vs true weights
    held_out_factor_error: float  # mean |predicted - true| resampling factor
    encoder_id: str


def run(corpus_dir: str | Path, out_dir: str | Path, *, config: AdapterConfig = AdapterConfig(),
        progress: Progress | None = None) -> AdapterReport:
    """Embed the corpus's Kokoro voices, fit the adapter, write it (with its model card) to `out_dir`."""
    import torch

    from speakembed.models.clone_adapter import StyleAdapter, save_adapter
    from speakembed.models.registry import load_encoder

    corpus_dir, out_dir = Path(corpus_dir), prepare_output_folder(out_dir)  # before minutes of embedding
    recipes = read_voice_recipes(corpus_dir)
    voice_names = [column for column in recipes.columns if column not in ("speaker", "factor") and not column.startswith(PROSODY_PREFIX)]
    prosody_columns = [PROSODY_PREFIX + name for name in voice_names]
    split_halves = all(column in recipes.columns for column in prosody_columns)
    embedder = load_encoder(config.encoder, config.device, config.checkpoint)
    embeddings = embed_speakers(corpus_dir, recipes["speaker"].tolist(), embedder, config.vad, progress)
    held_out = np.array([_hash_fraction(speaker) < config.held_out_fraction for speaker in recipes["speaker"]])
    weights = recipes[voice_names].to_numpy(np.float32)
    prosody = recipes[prosody_columns].to_numpy(np.float32) if split_halves else None
    log_factors = np.log(recipes["factor"].to_numpy(np.float32))
    torch.manual_seed(config.seed)
    adapter = StyleAdapter(embedder.embedding_size, voice_names, config.hidden, embedder.spec.name, split_halves)
    train_index = np.flatnonzero(~held_out)
    fit(adapter, [embeddings[i] for i in train_index], weights[train_index], log_factors[train_index], config, progress,
        prosody[train_index] if split_halves else None)
    weight_error, factor_error = held_out_errors(adapter, [embeddings[i] for i in np.flatnonzero(held_out)],
                                                 weights[held_out], log_factors[held_out])
    report = AdapterReport(out_dir, len(recipes), sum(len(e) for e in embeddings), int(held_out.sum()),
                           weight_error, factor_error, embedder.encoder_id)
    save_adapter(out_dir, adapter, _card(report, config, corpus_dir))
    return report


def read_voice_recipes(corpus_dir: Path) -> pd.DataFrame:
    """voices.tsv of a synthetic corpus: each voice's stock-voice weights (the adapter's targets); raises InputNotFoundError without it."""
    path = corpus_dir / VOICES_TABLE
    if not path.is_file():
        raise InputNotFoundError(f"{path}: missing; make the corpus with recipes/synthetic/local/make_corpus.py")
    recipes = pd.read_csv(path, sep="\t")
    if "speaker" not in recipes.columns or "factor" not in recipes.columns or len(recipes.columns) < 4:
        raise ManifestError(f"{path}: expected columns speaker, one weight per stock voice, factor")
    return recipes


def embed_speakers(corpus_dir: Path, speakers: list[str], embedder, vad: str, progress: Progress | None) -> list[np.ndarray]:
    """Per speaker, the unit embeddings of its utterances, (utterances, D)."""
    from speakembed.pipelines.audio.speech import prepare_speech

    embeddings = []
    for index, speaker in enumerate(speakers):
        report_progress(progress, "embedding the voices", index, len(speakers))
        files = sorted(path for path in (corpus_dir / speaker).glob("*") if is_audio_file(path))
        if not files:
            raise InputNotFoundError(f"{corpus_dir / speaker}: no audio for voice '{speaker}' of {VOICES_TABLE}")
        embeddings.append(embedder.embed([prepare_speech(path, embedder.spec, vad) for path in files]))
    report_progress(progress, "embedding the voices", len(speakers), len(speakers))
    return embeddings


def fit(adapter, embeddings: list[np.ndarray], weights: np.ndarray, log_factors: np.ndarray, config: AdapterConfig,
        progress: Progress | None, prosody_weights: np.ndarray | None = None) -> None:
    """Adam on (mean of 1-4 random utterance embeddings of a voice -> its recipe), DRAWS per voice
    per step; with `prosody_weights` (voices, N) the adapter's prosody head learns them too."""
    import torch

    rng = np.random.default_rng(config.seed)
    padded, counts = _pad(embeddings)
    optimizer = torch.optim.Adam(adapter.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    targets = torch.from_numpy(np.repeat(weights, DRAWS, axis=0))
    target_factors = torch.from_numpy(np.repeat(log_factors, DRAWS))
    prosody_targets = torch.from_numpy(np.repeat(prosody_weights, DRAWS, axis=0)) if prosody_weights is not None else None
    adapter.train()
    for step in range(config.steps):
        inputs = torch.from_numpy(_random_subset_means(padded, counts, rng))
        logits, log_factor, prosody_logits = adapter.heads(inputs)
        loss = _soft_cross_entropy(logits, targets) + FACTOR_LOSS_WEIGHT * ((log_factor - target_factors) ** 2).mean()
        if prosody_targets is not None:
            loss = loss + _soft_cross_entropy(prosody_logits, prosody_targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report_progress(progress, f"training the adapter (loss {loss.item():.3f})", step + 1, config.steps)
    adapter.eval()


def _soft_cross_entropy(logits, targets):
    """Cross-entropy of mixture logits (B, N) against target mixture weights (B, N), batch mean."""
    return -(targets * logits.log_softmax(dim=-1)).sum(dim=-1).mean()


def _pad(embeddings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged per-voice embeddings -> (voices, most utterances, D) zero-padded, and the counts (voices,)."""
    counts = np.array([len(voice) for voice in embeddings])
    padded = np.zeros((len(embeddings), counts.max(), embeddings[0].shape[1]), np.float32)
    for index, voice in enumerate(embeddings):
        padded[index, : len(voice)] = voice
    return padded, counts


def _random_subset_means(padded: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """DRAWS unit means per voice, each of 1-4 random distinct utterances: (voices * DRAWS, D)."""
    voices, most, _ = padded.shape
    counts = np.repeat(counts, DRAWS)
    sizes = rng.integers(1, np.minimum(counts, 4) + 1)
    keys = np.where(np.arange(most) < counts[:, None], rng.random((voices * DRAWS, most)), np.inf)
    ranks = keys.argsort(axis=1).argsort(axis=1)  # a random order of each voice's real utterances
    chosen = (ranks < sizes[:, None]).astype(np.float32)
    return unit_length(np.einsum("nu,nud->nd", chosen, np.repeat(padded, DRAWS, axis=0)))


def held_out_errors(adapter, embeddings: list[np.ndarray], weights: np.ndarray, log_factors: np.ndarray) -> tuple[float, float]:
    """Mean total-variation distance of the weights and mean absolute factor error, from each
    held-out voice's mean embedding; NaN without held-out voices."""
    import torch

    if not embeddings:
        return float("nan"), float("nan")
    inputs = torch.from_numpy(np.stack([unit_length(voice.mean(axis=0)) for voice in embeddings]))
    with torch.inference_mode():
        logits, log_factor = adapter(inputs)
    predicted = torch.softmax(logits, dim=-1).numpy()
    weight_error = 0.5 * np.abs(predicted - weights).sum(axis=1).mean()
    factor_error = np.abs(np.exp(log_factor.numpy()) - np.exp(log_factors)).mean()
    return float(weight_error), float(factor_error)


def _hash_fraction(name: str) -> float:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _card(report: AdapterReport, config: AdapterConfig, corpus_dir: Path) -> dict:
    return {
        "model": "clone adapter: speaker embedding -> Kokoro voice (softmax mixture of the stock style tables + resampling factor)",
        "encoder": report.encoder_id,
        "training_data": f"{report.voices - report.held_out_voices} synthetic Kokoro voices ({VOICES_TABLE} of {corpus_dir.name}), "
                         f"{report.utterances} utterances in all; reproduce with recipes/synthetic/run.sh",
        "held_out_voices": report.held_out_voices,
        "held_out_weight_error": round(report.held_out_weight_error, 4),
        "held_out_factor_error": round(report.held_out_factor_error, 4),
        "steps": config.steps,
        "config": {key: value for key, value in vars(config).items()},
    }
