"""The scoring back-end: how two speaker embeddings become one verification score.

Raw cosine scores drift with the recording domain, and some encoders share a large common
component (the GE2E LSTM's embeddings all lie in the positive orthant, so any two voices score
about 0.5). A `Backend`, fitted on training voices, removes that component (a cohort mean,
speaker-balanced) and optionally projects onto the directions that separate speakers (LDA, and
WCCN whitening of what is left of the within-speaker scatter). Scores are cosines of the
centred, projected and re-normalised embeddings. With a cohort store, adaptive s-norm (the
top-k variant of WeSpeaker) turns each score into the mean of its z-scores against the k
cohort embeddings nearest to either side.

`Scorer` is the one scoring entry point (verify, evaluate, identify, diarise):

    scorer = resolve_scorer(store.encoder)            # the encoder's shipped back-end, no s-norm
    scorer = resolve_scorer(store.encoder, backend="none", cohort="cohort/")  # raw cosine + s-norm
    scorer.pairs(enrol, test)    # (N, D), (N, D) -> (N,): row i against row i
    scorer.matrix(enrol, test)   # (N, D), (M, D) -> (N, M): every row against every row
    scorer.key                   # what scored ("none", "backend@<hash>", "+s-norm"): the calibration map
    scorer.describe()            # the same for a report or store attrs

A back-end file (`backend.npz`, see registry.scoring_folder for the shipped ones) holds the mean
(D,), the projection (D, K) (or none) and a JSON header: the schema, the encoder id of the
weights it was fitted for, and how it was fitted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError
from speakembed.pipelines.base.outputs import write_atomically
from speakembed.pipelines.scoring.metrics import unit_rows

BACKEND_SCHEMA = "backend"
BACKEND_VERSION = 1
BACKEND_FILE = "backend.npz"  # = models.registry.BACKEND_FILE (not imported: this module stays light)
DEFAULT_TOP_K = 100  # cohort scores per side averaged by adaptive s-norm
MAX_COHORT = 20000  # a larger cohort store is subsampled (seeded): s-norm costs O(trials x cohort)
BLOCK_ROWS = 2048  # rows scored against the cohort at a time (memory: BLOCK_ROWS x cohort)
NO_BACKEND = "none"  # `--backend none`: raw cosine
DEFAULT_BACKEND = "default"  # `--backend default`: the one shipped beside the encoder's weights


def encoder_name(encoder_id: str) -> str:
    """The encoder name of an encoder id (`lstm@39373b86598f` -> `lstm`)."""
    return encoder_id.split("@", 1)[0]


@dataclass(frozen=True)
class Backend:
    """A fitted back-end for the embeddings of one encoder's weights.

    mean: (D,) float32, subtracted from every (L2-normalised) embedding.
    projection: (D, K) float32 applied after centring (LDA, WCCN), or None.
    encoder_id: the weights whose embeddings it was fitted on (`name@hash`).
    info: how it was fitted (speakers, clips, options, source): JSON-able.
    """

    mean: np.ndarray
    projection: np.ndarray | None
    encoder_id: str
    info: dict = field(default_factory=dict)

    @property
    def embedding_size(self) -> int:
        """Size D of the embeddings it takes."""
        return int(self.mean.shape[0])

    @property
    def id(self) -> str:
        """`backend@<12 hex>`: a digest of its arrays, naming the scores it makes (calibration keys)."""
        digest = hashlib.sha256(np.asarray(self.mean, dtype=np.float32).tobytes())
        if self.projection is not None:
            digest.update(np.asarray(self.projection, dtype=np.float32).tobytes())
        return f"backend@{digest.hexdigest()[:12]}"

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, K) float32 unit rows: normalised, centred, projected, renormalised."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ManifestError(f"the back-end takes {self.embedding_size}-d embeddings ({self.encoder_id}), "
                                f"got shape {embeddings.shape}")
        centred = unit_rows(embeddings) - self.mean
        projected = centred if self.projection is None else centred @ self.projection
        return unit_rows(projected).astype(np.float32)

    def check_encoder(self, encoder_id: str, source: str | Path) -> None:
        """ManifestError unless the back-end was fitted for the weights `encoder_id`."""
        if encoder_id != self.encoder_id:
            raise ManifestError(f"{source}: back-end fitted for {self.encoder_id}, but the embeddings are from "
                                f"{encoder_id}; fit one for them with `spk train backend`, or give --backend none")

    def save(self, path: str | Path) -> Path:
        """Write the back-end to `path` (a .npz file, or a folder to hold BACKEND_FILE), atomically."""
        path = Path(path)
        path = path / BACKEND_FILE if path.is_dir() else path
        header = {"schema": BACKEND_SCHEMA, "schema_version": BACKEND_VERSION, "encoder": self.encoder_id,
                  "id": self.id, "info": self.info}
        arrays = {"mean": np.asarray(self.mean, dtype=np.float32), "header": np.array(json.dumps(header))}
        if self.projection is not None:
            arrays["projection"] = np.asarray(self.projection, dtype=np.float32)
        write_atomically(path, lambda out: np.savez(out, **arrays))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Backend":
        """Read a back-end file (or the BACKEND_FILE of a folder). InputNotFoundError when absent,
        ManifestError when it is not a back-end file of a version this code reads."""
        path = Path(path)
        path = path / BACKEND_FILE if path.is_dir() else path
        if not path.is_file():
            raise InputNotFoundError(f"{path}: no such back-end file; fit one with `spk train backend`")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                header = json.loads(str(arrays["header"]))
                mean = arrays["mean"]
                projection = arrays["projection"] if "projection" in arrays else None
        except (OSError, ValueError, KeyError) as error:
            raise ManifestError(f"{path}: not a back-end file ({error}); fit one with `spk train backend`") from None
        if header.get("schema") != BACKEND_SCHEMA or header.get("schema_version") != BACKEND_VERSION:
            raise ManifestError(f"{path}: not a version-{BACKEND_VERSION} back-end file; fit one with `spk train backend`")
        return cls(mean, projection, header["encoder"], header.get("info", {}))


# ----------------------------------------------------------------------------- fitting


def fit_backend(embeddings: np.ndarray, speakers=None, *, encoder_id: str, lda_dim: int | None = None,
                wccn: bool = False, info: dict | None = None) -> Backend:
    """Fit a back-end on training embeddings (N, D) of one encoder, with each row's speaker.

    The mean is the mean of the per-speaker means (every voice weighs the same, however many
    clips it has); without speakers, the mean of all rows. `lda_dim` K projects onto the K most
    speaker-discriminant directions (needs more than K speakers); `wccn` then whitens the
    within-speaker covariance (with or without LDA). Both need speakers.
    """
    vectors = unit_rows(embeddings)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ManifestError(f"a back-end needs at least 2 embeddings, got {len(vectors)}")
    codes = None
    if speakers is not None:
        speakers = np.asarray(speakers)
        if len(speakers) != len(vectors):
            raise ValueError("give one speaker per embedding")
        _, codes = np.unique(speakers, return_inverse=True)
    mean = vectors.mean(axis=0) if codes is None else _class_means(vectors, codes).mean(axis=0)
    projection = None
    if lda_dim is not None or wccn:
        if codes is None:
            raise UsageError("LDA and WCCN learn from speaker labels; give --speakers")
        centred = unit_rows(vectors - mean)
        projection = _lda(centred, codes, lda_dim) if lda_dim is not None else np.eye(vectors.shape[1])
        if wccn:
            projection = projection @ _wccn(centred @ projection, codes)
    fitted = {"embeddings": len(vectors), "speakers": None if codes is None else int(codes.max() + 1),
              "lda_dim": lda_dim, "wccn": wccn, **(info or {})}
    return Backend(mean.astype(np.float32), None if projection is None else projection.astype(np.float32),
                   encoder_id, fitted)


def _class_means(vectors: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(speakers, D): the mean row of each speaker code."""
    sums = np.zeros((codes.max() + 1, vectors.shape[1]))
    np.add.at(sums, codes, vectors)
    return sums / np.bincount(codes)[:, None]


def _within_scatter(vectors: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(D, D) within-speaker covariance: rows minus their speaker's mean, averaged over rows."""
    deviations = vectors - _class_means(vectors, codes)[codes]
    return deviations.T @ deviations / len(vectors)


def _ridge(scatter: np.ndarray) -> np.ndarray:
    """`scatter` plus a small multiple of the identity, so that few clips still give a full rank."""
    return scatter + 1e-3 * np.trace(scatter) / len(scatter) * np.eye(len(scatter))


def _lda(vectors: np.ndarray, codes: np.ndarray, dim: int) -> np.ndarray:
    """(D, dim) LDA projection: the top generalised eigenvectors of between- vs within-speaker scatter."""
    from scipy.linalg import eigh

    speakers = int(codes.max() + 1)
    if not 1 <= dim < min(speakers, vectors.shape[1] + 1):
        raise UsageError(f"--lda-dim {dim}: LDA of {speakers} speakers gives at most {min(speakers - 1, vectors.shape[1])} "
                         "dimensions")
    means = _class_means(vectors, codes)
    counts = np.bincount(codes)
    offsets = means - vectors.mean(axis=0)
    between = (offsets * counts[:, None]).T @ offsets / len(vectors)
    _, eigenvectors = eigh(between, _ridge(_within_scatter(vectors, codes)))
    return eigenvectors[:, ::-1][:, :dim]  # eigh sorts ascending


def _wccn(vectors: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(K, K) WCCN matrix B with B B^T = inverse within-speaker covariance of `vectors` (N, K)."""
    return np.linalg.cholesky(np.linalg.inv(_ridge(_within_scatter(vectors, codes))))


# ----------------------------------------------------------------------------- scoring


class Scorer:
    """Scores embeddings of one encoder: cosine after the back-end (None: raw cosine), then
    adaptive s-norm when a cohort is given.

    cohort: (C, D) embeddings of other voices, of the same encoder (any clips that are not the
        ones scored); subsampled to MAX_COHORT rows. top_k: cohort scores per side (at most C).
    sources: where the back-end and cohort came from, for `describe`; notes: caveats to report.
    """

    def __init__(self, backend: Backend | None = None, cohort: np.ndarray | None = None, *,
                 top_k: int = DEFAULT_TOP_K, sources: dict | None = None, notes: list[str] | None = None):
        if top_k < 1:
            raise UsageError(f"--top-k {top_k}: must be at least 1")
        self.backend = backend
        self.sources = dict(sources or {})
        self.notes = list(notes or [])
        self.cohort = None if cohort is None else self.transform(_subsample(np.asarray(cohort), MAX_COHORT))
        self.top_k = top_k if self.cohort is None else min(top_k, len(self.cohort))

    @property
    def key(self) -> str:
        """What made the scores: `none` (raw cosine) or the back-end id, `+s-norm` with a cohort.
        A calibration holds one score -> LLR map per key."""
        return (NO_BACKEND if self.backend is None else self.backend.id) + ("+s-norm" if self.cohort is not None else "")

    def describe(self) -> dict:
        """JSON-able record of the scoring (report, store attrs, scores.parquet metadata)."""
        s_norm = None if self.cohort is None else {"cohort": self.sources.get("cohort"), "cohort_size": len(self.cohort),
                                                   "top_k": self.top_k}
        return {"key": self.key, "backend": None if self.backend is None else self.backend.id,
                "backend_source": self.sources.get("backend"), "s_norm": s_norm}

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) -> the unit rows that are compared by cosine: through the back-end, if any."""
        if self.backend is None:
            return unit_rows(embeddings).astype(np.float32)
        return self.backend.transform(embeddings)

    def pairs(self, enrol: np.ndarray, test: np.ndarray) -> np.ndarray:
        """(N,) float32 scores of row i of `enrol` against row i of `test` (both (N, D))."""
        first, second = self.transform(enrol), self.transform(test)
        scores = np.einsum("ij,ij->i", first, second)
        if self.cohort is None:
            return scores.astype(np.float32)
        (first_mean, first_std), (second_mean, second_std) = self._cohort_stats(first), self._cohort_stats(second)
        return (0.5 * ((scores - first_mean) / first_std + (scores - second_mean) / second_std)).astype(np.float32)

    def matrix(self, enrol: np.ndarray, test: np.ndarray) -> np.ndarray:
        """(N, M) float32 scores of every row of `enrol` (N, D) against every row of `test` (M, D)."""
        first, second = self.transform(enrol), self.transform(test)
        scores = first @ second.T
        if self.cohort is None:
            return scores.astype(np.float32)
        (first_mean, first_std), (second_mean, second_std) = self._cohort_stats(first), self._cohort_stats(second)
        normalised = (scores - first_mean[:, None]) / first_std[:, None] + (scores - second_mean) / second_std
        return (0.5 * normalised).astype(np.float32)

    def _cohort_stats(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (N,) of each row's top_k cosines against the cohort."""
        if vectors.shape[1] != self.cohort.shape[1]:
            raise ManifestError(f"the cohort holds {self.cohort.shape[1]}-d embeddings, the scored ones are "
                                f"{vectors.shape[1]}-d; embed the cohort with the same encoder")
        means, stds = np.empty(len(vectors)), np.empty(len(vectors))
        for start in range(0, len(vectors), BLOCK_ROWS):
            block = vectors[start:start + BLOCK_ROWS] @ self.cohort.T
            top = -np.partition(-block, self.top_k - 1, axis=1)[:, :self.top_k]
            means[start:start + len(block)] = top.mean(axis=1)
            stds[start:start + len(block)] = np.maximum(top.std(axis=1), 1e-6)
        return means, stds


def _subsample(rows: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of `rows`, chosen with a fixed seed (the same cohort every run)."""
    if len(rows) <= limit:
        return rows
    return rows[np.sort(np.random.default_rng(0).choice(len(rows), limit, replace=False))]


# ----------------------------------------------------------------------------- resolving options


def resolve_scorer(encoder_id: str, *, backend: str | Path | None = DEFAULT_BACKEND, cohort: str | Path | None = None,
                   top_k: int = DEFAULT_TOP_K, checkpoint: str | Path | None = None) -> Scorer:
    """The Scorer of `--backend` / `--cohort` for embeddings of `encoder_id` (`name@hash`).

    backend: "default" (or None) for the one shipped beside the weights (registry.scoring_folder;
    a `spk train` checkpoint folder for `checkpoint`); when there is none, or it was fitted for
    other weights, raw cosine with a note saying so. "none": raw cosine. Else a back-end file or
    folder (`spk train backend --out`), which must be for these weights (else ManifestError).
    cohort: an embeddings store (or `spk embed` folder) of the same encoder: adaptive s-norm.
    """
    notes: list[str] = []
    chosen, source = _resolve_backend(encoder_id, backend, checkpoint, notes)
    cohort_rows = None
    if cohort is not None:
        cohort_rows = load_cohort(cohort, encoder_id)
    return Scorer(chosen, cohort_rows, top_k=top_k, notes=notes,
                  sources={"backend": source, "cohort": None if cohort is None else str(cohort)})


def _resolve_backend(encoder_id: str, backend: str | Path | None, checkpoint: str | Path | None,
                     notes: list[str]) -> tuple[Backend | None, str | None]:
    """The back-end `backend` names for `encoder_id` and where it came from (None, None: raw cosine)."""
    if str(backend) == NO_BACKEND:
        return None, None
    if backend is None or str(backend) == DEFAULT_BACKEND:
        from speakembed.models.registry import scoring_folder

        path = scoring_folder(encoder_name(encoder_id), checkpoint) / BACKEND_FILE
        if not path.is_file():
            notes.append(f"no back-end ships for {encoder_id}: raw cosine scores (fit one with `spk train backend`)")
            return None, None
        shipped = Backend.load(path)
        if shipped.encoder_id != encoder_id:
            notes.append(f"the shipped back-end {path} was fitted for {shipped.encoder_id}, not {encoder_id}: "
                         "raw cosine scores (refit it: recipes/debian-voices/backend.sh)")
            return None, None
        return shipped, str(path)
    chosen = Backend.load(backend)
    chosen.check_encoder(encoder_id, backend)
    return chosen, str(backend)


def load_cohort(path: str | Path, encoder_id: str) -> np.ndarray:
    """The valid embeddings (C, D) of the cohort store at `path`; ManifestError when they are of
    another encoder than `encoder_id` (or another size), or the store has none."""
    from speakembed.pipelines.data.stores import read_store

    store = read_store(path)
    if store.encoder != encoder_id:
        raise ManifestError(f"{path}: cohort embedded by {store.encoder}, but the scored embeddings are from "
                            f"{encoder_id}; embed the cohort with the same encoder (spk embed --encoder "
                            f"{encoder_name(encoder_id)})")
    rows = store.embeddings[store.valid]
    if len(rows) == 0:
        raise ManifestError(f"{path}: the cohort store holds no valid embedding")
    return rows
