"""minDCF, top-k retrieval and intra/inter-speaker distances (pipelines/scoring/metrics.py)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speakembed.pipelines.scoring.metrics import min_detection_cost, retrieval_accuracy, speaker_distances

scores_and_labels = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-100, 100).map(lambda k: k / 100), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda labels: 0 < sum(labels) < len(labels)),
    )
)
p_targets = st.sampled_from([0.01, 0.05, 0.5, 0.9])


def brute_force_min_dcf(scores, labels, p_target):
    """Normalised minDCF by trying every score (and +inf) as the acceptance threshold."""
    targets, nontargets = scores[labels == 1], scores[labels == 0]
    costs = [p_target * np.mean(targets < t) + (1 - p_target) * np.mean(nontargets >= t)
             for t in [*np.unique(scores), np.inf]]
    return min(costs) / min(p_target, 1 - p_target)


@given(scores_and_labels, p_targets)
@settings(max_examples=100, deadline=None)
def test_min_dcf_is_a_normalised_cost_matching_brute_force(data, p_target):
    scores, labels = np.array(data[0]), np.array(data[1], dtype=int)
    result = min_detection_cost(scores, labels, p_target)
    assert 0.0 <= result.min_dcf <= 1.0 + 1e-12
    assert result.min_dcf == pytest.approx(brute_force_min_dcf(scores, labels, p_target), abs=1e-12)
    accepted = scores >= result.threshold  # the reported threshold reaches the reported cost
    cost = p_target * np.mean(~accepted[labels == 1]) + (1 - p_target) * np.mean(accepted[labels == 0])
    assert cost / min(p_target, 1 - p_target) == pytest.approx(result.min_dcf, abs=1e-12)


@given(scores_and_labels, p_targets)
@settings(max_examples=50, deadline=None)
def test_min_dcf_is_invariant_to_monotonic_transforms(data, p_target):
    scores, labels = np.array(data[0]), np.array(data[1])
    expected = min_detection_cost(scores, labels, p_target).min_dcf
    assert min_detection_cost(np.exp(3 * scores) - 7, labels, p_target).min_dcf == pytest.approx(expected)


def test_min_dcf_extremes():
    labels = np.array([1, 1, 0, 0])
    assert min_detection_cost(np.array([0.9, 0.8, 0.1, 0.2]), labels, 0.01).min_dcf == 0.0
    assert min_detection_cost(np.array([0.1, 0.2, 0.9, 0.8]), labels, 0.01).min_dcf == 1.0  # reversed: reject all
    with pytest.raises(ValueError, match="p_target"):
        min_detection_cost(np.array([0.1, 0.2]), np.array([1, 0]), 1.0)


def clusters(speakers: int, per_speaker: int, spread: float, seed: int = 0, dims: int = 16):
    """Unit vectors around `speakers` random centres; labels 's0', 's1', ..."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(speakers, dims))
    vectors = np.repeat(centres, per_speaker, axis=0) + spread * rng.normal(size=(speakers * per_speaker, dims))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.repeat([f"s{i}" for i in range(speakers)], per_speaker)


@given(st.integers(2, 6), st.integers(2, 7), st.integers(0, 2**16))
@settings(max_examples=50, deadline=None)
def test_perfectly_separated_clusters_are_always_retrieved(speakers, per_speaker, seed):
    rng = np.random.default_rng(seed)
    # One-hot centres: within-speaker cosine 1, between-speaker cosine 0.
    vectors = np.repeat(np.eye(speakers, 8), per_speaker, axis=0) * rng.uniform(0.5, 2, (speakers * per_speaker, 1))
    labels = np.repeat(np.arange(speakers), per_speaker)
    order = rng.permutation(len(labels))
    result = retrieval_accuracy(vectors[order], labels[order], ks=(1, 5), block_rows=3)
    assert result.accuracy == {1: 1.0, 5: 1.0}
    assert result.queries == len(labels) and result.skipped == 0


def test_retrieval_skips_singletons_and_counts_misses():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    speakers = ["a", "b", "a", "b", "lonely"]  # each nearest neighbour is the other speaker
    result = retrieval_accuracy(vectors, speakers, ks=(1, 2, 10))
    assert result.queries == 4 and result.skipped == 1
    assert result.accuracy[1] == 0.0
    assert result.accuracy[10] == 1.0  # k beyond N - 1: every other item is retrieved
    no_query = retrieval_accuracy(vectors[:2], ["a", "b"])
    assert no_query.queries == 0 and np.isnan(no_query.accuracy[1])


def test_noisy_clusters_retrieve_better_at_top5_than_top1():
    vectors, speakers = clusters(8, 6, spread=1.2)
    result = retrieval_accuracy(vectors, speakers)
    assert 0 < result.accuracy[1] <= result.accuracy[5] <= 1


def test_speaker_distances_match_the_mean_over_all_pairs():
    vectors, speakers = clusters(4, 5, spread=0.6, seed=3)
    vectors[0] *= 3.0  # distances use cosines, whatever the norms
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    intra, inter = [], []
    for i, j in itertools.combinations(range(len(unit)), 2):
        (intra if speakers[i] == speakers[j] else inter).append(1 - unit[i] @ unit[j])
    result = speaker_distances(vectors, speakers)
    assert result.intra == pytest.approx(np.mean(intra)) and result.inter == pytest.approx(np.mean(inter))
    assert (result.intra_pairs, result.inter_pairs) == (len(intra), len(inter)) == (40, 150)
    assert result.intra < result.inter


def test_speaker_distances_without_pairs_are_nan():
    result = speaker_distances(np.eye(3), ["a", "b", "c"])
    assert np.isnan(result.intra) and result.intra_pairs == 0 and result.inter == pytest.approx(1.0)
