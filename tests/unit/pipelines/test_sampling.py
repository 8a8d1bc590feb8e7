"""Batch composition: with speaker groups (e.g. languages) a batch holds blocks of same-group
speakers, so a speaker's negatives share its group (the language confound of real corpora)."""

import numpy as np
import pytest

from speakembed.pipelines.base.errors import UsageError
from speakembed.pipelines.training.config import load_config
from speakembed.pipelines.training.sampling import batch_speakers

SPEAKERS = [f"{language}_{index}" for language in ("ru", "fr", "en", "da") for index in range(4)] + ["solo_x", "solo_y"]
GROUPS = {speaker: speaker.split("_")[0] for speaker in SPEAKERS if not speaker.startswith("solo")}


def config(**settings):
    return load_config(None, None, **{"speakers_per_batch": 8, "group_block": 4, **settings})


def test_without_groups_the_draw_is_uniform_and_as_before():
    rng, again = np.random.default_rng(5), np.random.default_rng(5)
    chosen = batch_speakers(SPEAKERS, None, config(), rng)
    assert chosen == [SPEAKERS[index] for index in again.choice(len(SPEAKERS), size=8, replace=False)]


def test_with_groups_the_batch_is_made_of_same_group_blocks():
    for seed in range(20):
        chosen = batch_speakers(SPEAKERS, GROUPS, config(), np.random.default_rng(seed))
        assert len(chosen) == len(set(chosen)) == 8
        groups = [GROUPS[speaker] for speaker in chosen]
        assert groups[:4] == [groups[0]] * 4 and groups[4:] == [groups[4]] * 4 and groups[0] != groups[4]


def test_small_groups_and_ungrouped_speakers_still_fill_the_batch():
    chosen = batch_speakers(SPEAKERS, {"ru_0": "ru", "ru_1": "ru"}, config(), np.random.default_rng(0))
    assert len(set(chosen)) == 8 and {"ru_0", "ru_1"} <= set(chosen)


def test_a_bad_block_size_is_refused():
    with pytest.raises(UsageError, match="group_block"):
        config(group_block=0)
