"""recipes/debian-voices/local/domain_calibration.py: the synthetic voices are cut by voice into fit
(cohort) and calibration voices, alternately within each engine family, and never take a real
(klettres) voice; cross-validation halves keep only the trials whose two sides are in one half."""

import sys
from pathlib import Path

import numpy as np
import pytest

from speakembed.pipelines.data.stores import EmbeddingStore, write_store

sys.path.insert(0, str(Path(__file__).parents[2] / "recipes" / "debian-voices" / "local"))
domain_calibration = pytest.importorskip("domain_calibration")

VOICES = ["kokoro_af_a", "kokoro_af_b", "kokoro_bm_c", "kokoro_zf_d", "espeak000", "espeak001", "espeak002",
          "klettres_de"]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    items = [f"{voice}/{voice}_{index}.flac" for voice in VOICES for index in range(3)]
    vectors = np.random.default_rng(0).normal(size=(len(items), 8)).astype(np.float32)
    path = tmp_path / "voices" / "embeddings.zarr"
    write_store(path, EmbeddingStore(items, vectors, np.ones(len(items), bool), {"encoder": "lstm@x"}))
    return path.parent


def test_synthetic_voices_alternate_between_fit_and_calibration(store: Path):
    fit, clips = domain_calibration.synthetic_split(store)
    assert sorted(clips) == ["espeak001", "kokoro_af_b", "kokoro_zf_d"]
    assert clips["espeak001"][0] == ("espeak001/espeak001_0.flac", "espeak")
    assert fit.shape == (4 * 3, 8)  # kokoro_af_a, kokoro_bm_c, espeak000, espeak002; never klettres_de


def test_halves_keep_trials_within_one_half(store: Path):
    trials = [("kokoro_af_a/kokoro_af_a_0.flac", "kokoro_af_a/kokoro_af_a_1.flac", 1),
              ("kokoro_af_a/kokoro_af_a_0.flac", "espeak000/espeak000_0.flac", 0),
              ("espeak000/espeak000_1.flac", "kokoro_af_b/kokoro_af_b_0.flac", 0),
              ("missing/clip.flac", "espeak000/espeak000_0.flac", 0)]
    labelled = domain_calibration.Set(store, trials)
    assert len(labelled.labels) == 3  # the trial of an id not in the store is left out
    first, second = labelled.halves()
    assert first | second == {"kokoro_af_a", "espeak000", "kokoro_af_b"} and not first & second
    kept = [labelled.part(half) for half in (first, second)]
    assert sum(len(part.labels) for part in kept) == 2  # the cross-half trial belongs to neither
