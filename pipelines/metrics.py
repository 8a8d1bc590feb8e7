"""Verification metrics on scores and binary labels (1 = same speaker)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EqualErrorRate:
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
