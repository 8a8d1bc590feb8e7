import numpy as np
import pytest

from speakembed.pipelines.diarisation.clustering import centroids, cluster_speakers
from speakembed.pipelines.diarise import parse_refs
from speakembed.pipelines.base.errors import ManifestError
from speakembed.pipelines.diarisation.turns import Turn, add_overlaps_at_handovers, grid_scores, turns_in_speech, viterbi


def test_viterbi_without_penalty_follows_the_best_state():
    emissions = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    assert viterbi(emissions, 0.0).tolist() == [0, 1, 0, 1]


def test_viterbi_penalty_removes_short_flips_but_keeps_real_changes():
    emissions = np.array([[1, 0]] * 5 + [[0, 0.5]] + [[1, 0]] * 5 + [[0, 1]] * 6, dtype=float)
    path = viterbi(emissions, switch_penalty=1.0)
    assert path.tolist() == [0] * 11 + [1] * 6


def test_grid_scores_weight_window_centres_and_fill_gaps():
    centres = np.array([1.0, 3.0])
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    grid = grid_scores(centres, scores, window_s=1.6, duration_s=5.0, step_s=0.1)
    assert grid.shape == (50, 2)
    assert grid[10].tolist() == [1.0, 0.0] and grid[30].tolist() == [0.0, 1.0]
    assert grid[49].tolist() == [0.0, 1.0]  # beyond every window: the nearest one


def test_turns_keep_region_edges_and_cut_at_speaker_changes():
    path = np.array([0] * 10 + [1] * 10)
    turns = turns_in_speech(path, np.ones(20), [(0.23, 0.77), (0.81, 1.95)], 0.1, np.array([0, 1]))
    assert [(round(t.start_s, 2), round(t.end_s, 2), t.speaker) for t in turns] == [
        (0.23, 0.77, 0), (0.81, 1.0, 0), (1.0, 1.95, 1)]


def test_handover_without_pause_is_marked_as_overlap():
    turns = [Turn(0.0, 3.0, 0, 0.9), Turn(3.0, 6.0, 1, 0.9), Turn(7.0, 9.0, 0, 0.9)]
    marked = add_overlaps_at_handovers(turns, 0.5, speech_s=[(0.0, 6.0), (7.0, 9.0)])
    overlaps = [(t.start_s, t.end_s, t.speaker) for t in marked if t.overlap]
    assert overlaps == [(2.5, 3.0, 0), (2.5, 3.0, 1)]
    # the same handover across a detected pause is not an overlap
    assert not any(t.overlap for t in add_overlaps_at_handovers(turns, 0.5, speech_s=[(0.0, 2.9), (2.95, 6.0)]))


def clusters(count: int, per_cluster: int = 30, dim: int = 32, spread: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, dim))
    points = np.concatenate([c + spread * np.linalg.norm(c) / np.sqrt(dim) * rng.normal(size=(per_cluster, dim)) for c in centres])
    return points / np.linalg.norm(points, axis=1, keepdims=True), np.repeat(np.arange(count), per_cluster)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_eigengap_finds_the_number_of_speakers(count):
    points, truth = clusters(count)
    labels = cluster_speakers(points)
    assert len(set(labels)) == count
    # same partition as the truth, whatever the label names
    assert all(len(set(labels[truth == k])) == 1 for k in range(count))


def test_given_count_and_bounds_are_respected():
    points, _ = clusters(4)
    assert len(set(cluster_speakers(points, num_speakers=2))) == 2
    assert len(set(cluster_speakers(points, max_speakers=3))) <= 3
    assert len(set(cluster_speakers(clusters(1)[0], min_speakers=2))) >= 2


def test_long_inputs_are_pooled_and_still_labelled_per_window():
    points, truth = clusters(3, per_cluster=1200)
    order = np.argsort(truth, kind="stable")
    labels = cluster_speakers(points[order])
    assert labels.shape == (3600,) and len(set(labels)) == 3
    assert np.allclose(np.linalg.norm(centroids(points, truth), axis=1), 1.0)


def test_reference_names_from_stems_or_explicit_names():
    refs = parse_refs(["a/alice.wav", "bob=x/b1.wav", "bob=x/b2.wav"])
    assert {name: [p.name for p in paths] for name, paths in refs.items()} == {"alice": ["alice.wav"], "bob": ["b1.wav", "b2.wav"]}
    with pytest.raises(ManifestError, match="both labelled 'alice'"):
        parse_refs(["a/alice.wav", "b/alice.wav"])
    with pytest.raises(ManifestError, match="cannot be a speaker name"):
        parse_refs(["unknown=a.wav"])


def test_a_fragment_shorter_than_the_lead_is_not_a_handover():
    turns = [Turn(0.0, 3.0, 0, 0.9), Turn(3.0, 3.3, 1, 0.9), Turn(3.3, 6.0, 0, 0.9)]
    assert not any(t.overlap for t in add_overlaps_at_handovers(turns, 0.5, speech_s=[(0.0, 6.0)]))


def test_many_speakers_with_many_windows_each_are_all_found():
    points, truth = clusters(10, per_cluster=150, spread=0.35, seed=3)
    labels = cluster_speakers(points)
    assert len(set(labels)) == 10


def test_sparse_spectrum_of_many_points_matches_the_dense_decomposition():
    from speakembed.pipelines.diarisation import clustering

    rng = np.random.default_rng(0)
    voices = rng.normal(size=(4, 32))
    points = voices[rng.integers(0, 4, 400)] + 0.6 * rng.normal(size=(400, 32))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    sparse_values, _ = clustering._spectrum(points, 0.1, 6)
    affinity = clustering._pruned_affinity(points, 0.1)
    scale = 1 / np.sqrt(affinity.sum(axis=1))
    dense_values = np.linalg.eigvalsh(np.eye(400) - scale[:, None] * affinity * scale[None, :])[:6]
    assert len(points) > clustering.DENSE_POINTS
    np.testing.assert_allclose(sparse_values, dense_values, atol=1e-6)
    assert clustering._largest_gap(sparse_values, 1, 5)[0] == 4


def test_recording_normalisation_removes_the_shared_component_from_windows_and_references():
    from speakembed.pipelines.diarise import SpeakerModel, recording_normalised
    from speakembed.pipelines.diarisation.windows import WindowAnalysis

    shared = np.zeros(8)
    shared[0] = 3.0  # every voice of the recording shares this direction (channel, encoder bias)
    alice, bob = np.eye(8)[1], np.eye(8)[2]
    windows = np.stack([shared + alice] * 5 + [shared + bob] * 5).astype(np.float32)
    analysis = WindowAnalysis(16000, 16000 * 10, [(0, 160000)], np.arange(10) * 6400, 25600, windows)
    reference = SpeakerModel(["alice", "bob"], np.stack([shared + alice, shared + bob]) / np.sqrt(10))
    raw_cosine = float(windows[0] @ windows[5]) / float(np.linalg.norm(windows[0]) ** 2)
    normalised, voices = recording_normalised(analysis, reference, 1.0)
    assert raw_cosine > 0.8  # two different voices look alike before
    assert normalised.embeddings[0] @ normalised.embeddings[5] < 0  # and apart after
    assert (normalised.embeddings[:5] @ voices.embeddings.T).argmax(axis=1).tolist() == [0] * 5
    assert recording_normalised(analysis, reference, 0.0) == (analysis, reference)
