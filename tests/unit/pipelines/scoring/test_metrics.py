import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speakembed.pipelines.scoring.metrics import equal_error_rate, error_rates

scores_and_labels = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-100, 100).map(lambda k: k / 100), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda labels: 0 < sum(labels) < len(labels)),
    )
)


@given(scores_and_labels)
@settings(max_examples=200, deadline=None)
def test_eer_is_a_rate_and_invariant_to_monotonic_transforms(data):
    scores, labels = np.array(data[0]), np.array(data[1])
    eer = equal_error_rate(scores, labels).eer
    assert 0.0 <= eer <= 1.0
    assert equal_error_rate(3 * scores + 1, labels).eer == pytest.approx(eer)


@given(scores_and_labels)
@settings(max_examples=100, deadline=None)
def test_error_rates_are_monotonic(data):
    _, frr, far = error_rates(np.array(data[0]), np.array(data[1]))
    assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0)
    assert frr[0] == 0 and far[-1] == 0


def test_perfect_separation_gives_zero_and_a_separating_threshold():
    result = equal_error_rate(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0]))
    assert result.eer == 0.0
    assert 0.2 < result.threshold <= 0.8


def test_gaussian_scores_give_the_analytic_eer():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)])
    labels = np.r_[np.ones(20000), np.zeros(20000)]
    result = equal_error_rate(scores, labels)
    assert result.eer == pytest.approx(0.1587, abs=0.006)  # Phi(-1)
    assert result.threshold == pytest.approx(0.0, abs=0.05)


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="both target and non-target"):
        equal_error_rate(np.array([0.1, 0.2]), np.array([1, 1]))
