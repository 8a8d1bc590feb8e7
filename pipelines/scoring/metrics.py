"""Verification metrics on scores and binary labels (1 = same speaker)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EqualErrorRate:
    """The EER (a fraction) and the score threshold at which false accepts equal misses."""
    eer: float  # fraction in [0, 1]
    threshold: float  # score at which false acceptance and false rejection rates cross


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-rejection and false-acceptance rates at every distinct threshold.

    Returns (thresholds, frr, far), thresholds ascending; a trial is accepted when score >= threshold.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError("scores and labels must be 1-D arrays of the same length")
    if labels.all() or not labels.any():
        raise ValueError("need both target and non-target trials to compute error rates")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Rejected below threshold index i: the first i trials in ascending order.
    targets_below = np.concatenate([[0], np.cumsum(sorted_labels)])
    nontargets_below = np.concatenate([[0], np.cumsum(~sorted_labels)])
    distinct = np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1], [True]])
    frr = targets_below[distinct] / labels.sum()
    far = 1 - nontargets_below[distinct] / (~labels).sum()
    thresholds = np.concatenate([sorted_scores, [np.inf]])[distinct]
    return thresholds, frr, far


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> EqualErrorRate:
    """EER by linear interpolation between the two operating points where FRR and FAR cross."""
    thresholds, frr, far = error_rates(scores, labels)
    crossing = int(np.argmax(frr >= far))  # frr rises, far falls with the threshold
    if crossing == 0:
        return EqualErrorRate(float((frr[0] + far[0]) / 2), float(thresholds[0]))
    before, after = crossing - 1, crossing
    gap_before = far[before] - frr[before]
    gap_after = frr[after] - far[after]
    weight = gap_before / (gap_before + gap_after) if gap_before + gap_after > 0 else 0.5
    eer = frr[before] + weight * (frr[after] - frr[before])
    high = thresholds[after] if np.isfinite(thresholds[after]) else thresholds[before]
    return EqualErrorRate(float(eer), float(thresholds[before] + weight * (high - thresholds[before])))


# ---------------------------------------------------------------------------------------------
# Detection cost (NIST SRE / Kaldi `compute_min_dcf.py`)


@dataclass(frozen=True)
class DetectionCost:
    """Normalised minimum detection cost at a target prior, and the threshold that reaches it."""
    min_dcf: float  # normalised minimum detection cost, in [0, 1] (1: no better than a fixed decision)
    threshold: float  # score at which the minimum is reached (accept when score >= threshold)
    p_target: float  # prior probability of a target trial the cost assumes


def min_detection_cost(scores: np.ndarray, labels: np.ndarray, p_target: float, *,
                       c_miss: float = 1.0, c_fa: float = 1.0) -> DetectionCost:
    """Minimum normalised detection cost function over every threshold, as in NIST SRE and Kaldi.

    C_det(t) = c_miss * FRR(t) * p_target + c_fa * FAR(t) * (1 - p_target), divided by
    C_default = min(c_miss * p_target, c_fa * (1 - p_target)), the cost of always accepting or
    always rejecting, whichever is cheaper; so the result lies in [0, 1].
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must lie strictly between 0 and 1, got {p_target}")
    thresholds, frr, far = error_rates(scores, labels)
    costs = (c_miss * p_target * frr + c_fa * (1 - p_target) * far) / min(c_miss * p_target, c_fa * (1 - p_target))
    best = int(np.argmin(costs))
    return DetectionCost(float(costs[best]), float(thresholds[best]), float(p_target))


# ---------------------------------------------------------------------------------------------
# Metrics of an embedding space labelled by speaker. Similarity is the cosine (rows are
# L2-normalised first), distance is 1 - cosine, in [0, 2].


@dataclass(frozen=True)
class RetrievalAccuracy:
    """Top-k accuracy of finding another embedding of the same speaker by cosine, per k (fractions)."""
    accuracy: dict[int, float]  # k -> fraction of queries with a same-speaker item among their k nearest (NaN: no query)
    queries: int  # embeddings whose speaker has at least one other embedding
    skipped: int  # embeddings whose speaker has no other embedding: nothing to retrieve


@dataclass(frozen=True)
class SpeakerDistances:
    """Mean cosine distance (1 - cosine) of same-speaker pairs (intra) and different-speaker pairs (inter)."""
    intra: float  # mean cosine distance over all same-speaker pairs (NaN when there is none)
    inter: float  # mean cosine distance over all different-speaker pairs (NaN when there is none)
    intra_pairs: int
    inter_pairs: int


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """The rows of `embeddings` (N, D) scaled to unit L2 norm, as float64; all-zero rows stay zero."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(norms > 0, norms, 1.0)


def retrieval_accuracy(embeddings: np.ndarray, speakers, ks: tuple[int, ...] = (1, 5), *,
                       block_rows: int = 1024) -> RetrievalAccuracy:
    """Top-k speaker retrieval: each embedding queries all the OTHER embeddings by cosine.

    A query is a hit at k when an embedding of its own speaker is among its k nearest (with
    fewer than k others, all of them). Queries whose speaker has no other embedding are skipped
    and counted. Works through `block_rows` queries at a time, so memory is block_rows x N.
    """
    vectors = unit_rows(embeddings)
    speakers = np.asarray(speakers)
    if vectors.ndim != 2 or len(vectors) != len(speakers):
        raise ValueError("embeddings must be (N, D) with one speaker per row")
    if not ks or min(ks) < 1:
        raise ValueError(f"every k must be >= 1, got {ks}")
    _, codes, counts = np.unique(speakers, return_inverse=True, return_counts=True)
    queries = np.flatnonzero(counts[codes] >= 2)
    depth = min(max(ks), len(vectors) - 1)
    hits = {k: 0 for k in ks}
    for start in range(0, len(queries), block_rows):
        rows = queries[start:start + block_rows]
        similarity = vectors[rows] @ vectors.T
        similarity[np.arange(len(rows)), rows] = -np.inf  # never retrieve the query itself
        nearest = np.argpartition(-similarity, depth - 1, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(similarity, nearest, axis=1), axis=1, kind="stable")
        same = codes[np.take_along_axis(nearest, order, axis=1)] == codes[rows, None]
        for k in ks:
            hits[k] += int(same[:, :k].any(axis=1).sum())
    accuracy = {k: hits[k] / len(queries) if len(queries) else float("nan") for k in ks}
    return RetrievalAccuracy(accuracy, int(len(queries)), int(len(vectors) - len(queries)))


def speaker_distances(embeddings: np.ndarray, speakers) -> SpeakerDistances:
    """Mean cosine distance (1 - cosine) within and between speakers, over all pairs of embeddings.

    Every pair weighs the same, so speakers with many embeddings weigh more. Computed from sums of
    vectors in O(N * D): the cosines of all distinct pairs within a set sum to
    (|sum of its vectors|^2 - sum of their squared norms) / 2.
    """
    vectors = unit_rows(embeddings)
    speakers = np.asarray(speakers)
    if vectors.ndim != 2 or len(vectors) != len(speakers):
        raise ValueError("embeddings must be (N, D) with one speaker per row")
    _, codes, counts = np.unique(speakers, return_inverse=True, return_counts=True)
    per_speaker = np.zeros((len(counts), vectors.shape[1]))
    np.add.at(per_speaker, codes, vectors)
    squared_norms = np.einsum("ij,ij->i", vectors, vectors)
    all_cosines = (float(np.sum(vectors.sum(axis=0) ** 2)) - squared_norms.sum()) / 2
    intra_cosines = (float(np.sum(per_speaker**2)) - squared_norms.sum()) / 2
    intra_pairs = int(np.sum(counts * (counts - 1) // 2))
    inter_pairs = len(vectors) * (len(vectors) - 1) // 2 - intra_pairs
    return SpeakerDistances(
        intra=1 - intra_cosines / intra_pairs if intra_pairs else float("nan"),
        inter=1 - (all_cosines - intra_cosines) / inter_pairs if inter_pairs else float("nan"),
        intra_pairs=intra_pairs, inter_pairs=int(inter_pairs))
