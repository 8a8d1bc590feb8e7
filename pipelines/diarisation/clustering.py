"""Speaker clustering of window embeddings: spectral clustering on a pruned cosine affinity,
with the number of speakers from the largest eigengap of the normalised Laplacian
(Park et al., "Auto-tuning spectral clustering for speaker diarization", 2019), or given."""

from __future__ import annotations

import numpy as np

MAX_POINTS = 1500  # windows are pooled into at most this many points before the O(n^3) step
MIN_NEIGHBOURS = 8
DENSE_POINTS = 300  # up to this many points the Laplacian is decomposed densely
PRUNE_FRACTIONS = (0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3)  # candidates for NME-SC


def cluster_speakers(embeddings: np.ndarray, *, num_speakers: int | None = None, min_speakers: int = 1,
                     max_speakers: int = 10, prune_fraction: float | None = None, seed: int = 0) -> np.ndarray:
    """Cluster unit-length embeddings (n, D); returns labels (n,) in 0..k-1.

    With `num_speakers` the count is fixed; otherwise it is the eigengap estimate, clipped to
    [min_speakers, max_speakers]. The affinity keeps each row's strongest `prune_fraction` of
    entries; None picks the fraction by normalised maximum eigengap (NME-SC, Park et al. 2019),
    which adapts to the number of points per speaker (a fixed fraction merges speakers in long,
    many-speaker recordings). Long recordings are pooled first: consecutive windows are averaged
    in groups so that at most MAX_POINTS points enter the eigen-decomposition, and every window
    then takes the label of its group.
    """
    count = len(embeddings)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    group = int(np.ceil(count / MAX_POINTS))
    owners = np.arange(count) // group
    pooled = np.stack([embeddings[owners == index].mean(axis=0) for index in range(owners[-1] + 1)])
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-8)
    if len(pooled) <= 2 or num_speakers == 1 or max_speakers == 1:
        return np.zeros(count, dtype=np.int64)
    fractions = PRUNE_FRACTIONS if prune_fraction is None else (prune_fraction,)
    upper = min(max_speakers, len(pooled) - 1)
    lower = max(1, min_speakers)
    spectra = [_spectrum(pooled, fraction, upper + 1) for fraction in fractions]
    # NME: the fraction whose largest eigengap is biggest relative to how much it prunes away
    best = min(range(len(fractions)), key=lambda index: _kept(fractions[index], len(pooled)) / len(pooled)
               / max(_largest_gap(spectra[index][0], lower, upper)[1], 1e-9))
    eigenvalues, eigenvectors = spectra[best]
    if num_speakers is None:
        num_speakers = _largest_gap(eigenvalues, lower, upper)[0]
    return _kmeans_on_spectrum(eigenvectors, min(num_speakers, len(pooled)), seed)[owners]


def _spectrum(points: np.ndarray, prune_fraction: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The `count` smallest eigenvalues (ascending) and their eigenvectors of the normalised
    Laplacian L = I - D^-1/2 A D^-1/2 of the pruned affinity A: all that the eigengap and the
    embedding need. Beyond DENSE_POINTS they come from the largest eigenpairs of the sparse
    normalised affinity (Lanczos), far cheaper than the full O(n^3) decomposition."""
    from scipy.linalg import eigh

    affinity = _pruned_affinity(points, prune_fraction)
    scale = 1 / np.sqrt(affinity.sum(axis=1).clip(1e-8))
    normalised = scale[:, None] * affinity * scale[None, :]
    count = min(count, len(points))
    if len(points) <= DENSE_POINTS:
        return eigh(np.eye(len(points)) - normalised, subset_by_index=[0, count - 1])
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import eigsh

    values, vectors = eigsh(csr_matrix(normalised), k=count, which="LA", v0=np.ones(len(points)))
    order = np.argsort(-values)
    return 1 - values[order], vectors[:, order]


def _largest_gap(eigenvalues: np.ndarray, lower: int, upper: int) -> tuple[int, float]:
    """(k, gap): the count in [lower, upper] after which the eigenvalues jump the most."""
    gaps = np.diff(eigenvalues[: upper + 1])[lower - 1 : upper]
    return lower + int(np.argmax(gaps)), float(gaps.max())


def _kmeans_on_spectrum(eigenvectors: np.ndarray, num_speakers: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    if num_speakers <= 1:
        return np.zeros(len(eigenvectors), dtype=np.int64)
    spectral = eigenvectors[:, :num_speakers]
    spectral = spectral / np.linalg.norm(spectral, axis=1, keepdims=True).clip(1e-8)
    return KMeans(num_speakers, n_init=10, random_state=seed).fit_predict(spectral).astype(np.int64)


def _kept(prune_fraction: float, count: int) -> int:
    """Neighbours each point keeps; at least MIN_NEIGHBOURS so a speaker's points stay connected."""
    return min(count, max(MIN_NEIGHBOURS, int(round(prune_fraction * count))))


def _pruned_affinity(points: np.ndarray, prune_fraction: float) -> np.ndarray:
    """Cosine affinity keeping each row's strongest `prune_fraction` (see `_kept`), symmetrised."""
    affinity = np.clip(points @ points.T, 0, None)
    keep = _kept(prune_fraction, len(points))
    threshold = -np.sort(-affinity, axis=1)[:, keep - 1 : keep]
    pruned = np.where(affinity >= threshold, affinity, 0.0)
    return (pruned + pruned.T) / 2


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean embedding of each label 0..max(labels): (k, D)."""
    sums = np.stack([embeddings[labels == label].sum(axis=0) for label in range(labels.max() + 1)])
    return sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-8)
