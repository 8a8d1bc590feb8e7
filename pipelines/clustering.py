"""Speaker clustering of window embeddings: spectral clustering on a pruned cosine affinity,
with the number of speakers from the largest eigengap of the normalised Laplacian
(Park et al., "Auto-tuning spectral clustering for speaker diarization", 2019), or given."""

from __future__ import annotations

import numpy as np

MAX_POINTS = 1500  # windows are pooled into at most this many points before the O(n^3) step


def cluster_speakers(embeddings: np.ndarray, *, num_speakers: int | None = None, min_speakers: int = 1,
                     max_speakers: int = 10, prune_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Cluster unit-length embeddings (n, D); returns labels (n,) in 0..k-1.

    With `num_speakers` the count is fixed; otherwise it is the eigengap estimate, clipped to
    [min_speakers, max_speakers]. Long recordings are pooled first: consecutive windows are
    averaged in groups so that at most MAX_POINTS points enter the eigen-decomposition, and every
    window then takes the label of its group.
    """
    count = len(embeddings)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    group = int(np.ceil(count / MAX_POINTS))
    owners = np.arange(count) // group
    pooled = np.stack([embeddings[owners == index].mean(axis=0) for index in range(owners[-1] + 1)])
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-8)
    return _spectral(pooled, num_speakers, min_speakers, max_speakers, prune_fraction, seed)[owners]


def _spectral(points: np.ndarray, num_speakers, min_speakers, max_speakers, prune_fraction, seed) -> np.ndarray:
    from scipy.linalg import eigh
    from sklearn.cluster import KMeans

    count = len(points)
    if count <= 2 or num_speakers == 1 or max_speakers == 1:
        return np.zeros(count, dtype=np.int64)
    affinity = _pruned_affinity(points, prune_fraction)
    degree = affinity.sum(axis=1)
    scale = 1 / np.sqrt(degree.clip(1e-8))
    laplacian = np.eye(count) - scale[:, None] * affinity * scale[None, :]
    eigenvalues, eigenvectors = eigh(laplacian)
    upper = min(max_speakers, count - 1)
    if num_speakers is None:
        gaps = np.diff(eigenvalues[: upper + 1])
        lower = max(1, min_speakers)
        num_speakers = lower + int(np.argmax(gaps[lower - 1 : upper]))
    num_speakers = int(min(max(num_speakers, 1), count))
    if num_speakers == 1:
        return np.zeros(count, dtype=np.int64)
    spectral = eigenvectors[:, :num_speakers]
    spectral /= np.linalg.norm(spectral, axis=1, keepdims=True).clip(1e-8)
    return KMeans(num_speakers, n_init=10, random_state=seed).fit_predict(spectral).astype(np.int64)


def _pruned_affinity(points: np.ndarray, prune_fraction: float) -> np.ndarray:
    """Cosine affinity keeping each row's strongest `prune_fraction` (at least 2), symmetrised."""
    affinity = np.clip(points @ points.T, 0, None)
    keep = max(2, int(round(prune_fraction * len(points))))
    threshold = -np.sort(-affinity, axis=1)[:, keep - 1 : keep]
    pruned = np.where(affinity >= threshold, affinity, 0.0)
    return (pruned + pruned.T) / 2


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean embedding of each label 0..max(labels): (k, D)."""
    sums = np.stack([embeddings[labels == label].sum(axis=0) for label in range(labels.max() + 1)])
    return sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-8)
