"""The statistics of `spk evaluate clone`: identification of clones among speakers, paired t of margins."""

import math

import numpy as np

from speakembed.pipelines.evaluate_clone import SpeakerResult, identify_clones, paired_t


def _result(speaker: str) -> SpeakerResult:
    return SpeakerResult(speaker, "ref.wav", 0.5, 0.4, "af_heart", 0.9, "af_heart 1.00")


def test_each_clone_is_identified_as_the_speaker_whose_other_recordings_are_nearest():
    axes = np.eye(3, dtype=np.float32)
    results = [_result(name) for name in "abc"]
    clones = {"a": axes[0], "b": axes[2], "c": axes[2]}  # b's clone sounds like c
    rate = identify_clones(results, clones, {"a": axes[0], "b": axes[1], "c": axes[2]})
    assert [r.identified_as for r in results] == ["a", "c", "c"] and math.isclose(rate, 2 / 3)


def test_identification_needs_two_speakers_with_other_recordings():
    results = [_result("a"), _result("b")]
    assert identify_clones(results, {"a": np.ones(2), "b": np.ones(2)}, {"a": np.ones(2), "b": None}) is None
    assert results[0].identified_as is None


def test_paired_t_is_mean_over_standard_error():
    differences = [0.1, 0.2, 0.3, 0.2]
    expected = np.mean(differences) / (np.std(differences, ddof=1) / 2)
    assert math.isclose(paired_t(differences), expected)
    assert paired_t([0.3]) is None and paired_t([0.1, 0.1]) == math.inf and paired_t([0.0, 0.0]) == 0.0


def test_recordings_too_short_to_embed_are_left_out_and_named(make_wav):
    import pytest

    from speakembed.pipelines.base.errors import UnusableAudioError
    from speakembed.pipelines.evaluate_clone import CloneEvalConfig, _speaker_recordings, _usable_recordings

    good = make_wav("data/alice/1.wav", speaker="A", duration_s=2.0)
    make_wav("data/alice/2.wav", speaker="A", duration_s=0.3)
    config = CloneEvalConfig(vad="energy")
    usable, speech, skipped = _usable_recordings(_speaker_recordings(good.parents[1], None), config)
    assert usable == {"alice": [good]} and skipped == ["alice/2.wav"]
    assert len(speech["alice"]) == 1 and len(speech["alice"][0]) > 0
    with pytest.raises(UnusableAudioError, match="reference needs 2"):
        _usable_recordings(_speaker_recordings(good.parents[1], None), CloneEvalConfig(vad="energy", reference_clips=2))
