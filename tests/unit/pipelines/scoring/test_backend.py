"""The scoring back-end: centring, LDA/WCCN, adaptive s-norm, files and option resolution."""

import numpy as np
import pytest

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError
from speakembed.pipelines.data.stores import EmbeddingStore, write_store
from speakembed.pipelines.scoring import backend as backend_module
from speakembed.pipelines.scoring.backend import Backend, Scorer, fit_backend, resolve_scorer
from speakembed.pipelines.scoring.metrics import equal_error_rate


def voices(speakers: int = 30, clips: int = 8, size: int = 24, common: float = 3.0, seed: int = 0):
    """Embeddings (rows, size) sharing a large common component (as the GE2E LSTM's positive
    orthant), each speaker a small offset from it, and each row's speaker."""
    rng = np.random.default_rng(seed)
    shared = common * np.abs(rng.normal(size=size))
    centres = shared + rng.normal(size=(speakers, size))
    labels = np.repeat(np.arange(speakers), clips)
    return centres[labels] + 0.6 * rng.normal(size=(len(labels), size)), labels


def all_pairs(labels: np.ndarray):
    first, second = np.triu_indices(len(labels), 1)
    return first, second, (labels[first] == labels[second]).astype(int)


def test_centring_removes_the_common_component_and_lowers_the_eer():
    rows, speakers = voices(speakers=42)
    train, train_speakers = rows[:240], speakers[:240]  # 30 speakers fit; 12 unseen ones are scored
    test, test_speakers = rows[240:], speakers[240:]
    first, second, labels = all_pairs(test_speakers)
    raw = Scorer().pairs(test[first], test[second])
    centred = Scorer(fit_backend(train, train_speakers, encoder_id="x@1")).pairs(test[first], test[second])
    assert raw[labels == 0].mean() > 0.8  # any two voices look alike
    assert abs(centred[labels == 0].mean()) < 0.2
    assert equal_error_rate(centred, labels).eer < equal_error_rate(raw, labels).eer


def test_the_mean_weighs_every_speaker_the_same():
    rows = np.array([[1.0, 0.0]] * 9 + [[0.0, 1.0]])
    fitted = fit_backend(rows, np.array([0] * 9 + [1]), encoder_id="x@1")
    np.testing.assert_allclose(fitted.mean, [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(fit_backend(rows, encoder_id="x@1").mean, [0.9, 0.1], atol=1e-6)


def test_transform_gives_unit_rows_and_checks_the_size():
    rows, speakers = voices()
    fitted = fit_backend(rows, speakers, encoder_id="x@1", lda_dim=10)
    transformed = fitted.transform(rows)
    assert transformed.shape == (len(rows), 10) and transformed.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(transformed, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ManifestError, match="24-d embeddings"):
        fitted.transform(rows[:, :8])


def test_wccn_whitens_the_within_speaker_covariance():
    rows, speakers = voices(speakers=40, clips=20)
    fitted = fit_backend(rows, speakers, encoder_id="x@1", lda_dim=12, wccn=True)
    unit = backend_module.unit_rows
    projected = unit(unit(rows) - fitted.mean) @ fitted.projection  # as fitted: before the final renormalisation
    np.testing.assert_allclose(backend_module._within_scatter(projected, speakers), np.eye(12), atol=0.02)


def test_lda_needs_speakers_and_fewer_dimensions_than_speakers():
    rows, speakers = voices(speakers=5)
    with pytest.raises(UsageError, match="at most 4 dimensions"):
        fit_backend(rows, speakers, encoder_id="x@1", lda_dim=5)
    with pytest.raises(UsageError, match="give --speakers"):
        fit_backend(rows, encoder_id="x@1", wccn=True)


def test_a_saved_backend_loads_with_the_same_id_and_scores(tmp_path):
    rows, speakers = voices()
    fitted = fit_backend(rows, speakers, encoder_id="lstm@abc", lda_dim=8, wccn=True, info={"source": "test"})
    path = fitted.save(tmp_path / "backend.npz")
    loaded = Backend.load(tmp_path)  # a folder finds its backend.npz
    assert loaded.id == fitted.id and loaded.encoder_id == "lstm@abc" and loaded.info["source"] == "test"
    np.testing.assert_array_equal(loaded.transform(rows), fitted.transform(rows))
    assert fit_backend(rows, speakers, encoder_id="lstm@abc").id != fitted.id
    (tmp_path / "other.npz").write_bytes(b"not numpy")
    with pytest.raises(ManifestError, match="not a back-end file"):
        Backend.load(tmp_path / "other.npz")
    with pytest.raises(InputNotFoundError, match="no such back-end file"):
        Backend.load(tmp_path / "absent.npz")
    assert path == tmp_path / "backend.npz"


def test_pairs_match_the_matrix_with_and_without_s_norm():
    rows, speakers = voices()
    fitted = fit_backend(rows[:120], speakers[:120], encoder_id="x@1")
    enrol, test = rows[120:180], rows[180:]
    for scorer in (Scorer(), Scorer(fitted), Scorer(fitted, rows[:120], top_k=20)):
        matrix = scorer.matrix(enrol, test)
        assert matrix.shape == (60, 60)
        np.testing.assert_allclose(scorer.pairs(enrol, test), np.diag(matrix), atol=1e-5)


def test_adaptive_s_norm_averages_the_z_scores_of_both_sides_top_k():
    cohort = np.eye(4)[[0, 1, 2, 3, 0]] + 0.1  # rows made unit by the scorer
    enrol, test = np.array([[1.0, 0.2, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.3, 0.0]])
    scorer = Scorer(None, cohort, top_k=3)
    unit = backend_module.unit_rows
    raw = float((unit(enrol) @ unit(test).T)[0, 0])

    def stats(vector):
        top = np.sort(unit(cohort) @ unit(vector)[0])[-3:]
        return top.mean(), top.std()

    (enrol_mean, enrol_std), (test_mean, test_std) = stats(enrol), stats(test)
    expected = 0.5 * ((raw - enrol_mean) / enrol_std + (raw - test_mean) / test_std)
    assert scorer.pairs(enrol, test)[0] == pytest.approx(expected, rel=1e-5)
    assert Scorer(None, cohort, top_k=500).top_k == 5  # at most the cohort


def test_scorer_keys_name_what_scored():
    rows, speakers = voices()
    fitted = fit_backend(rows, speakers, encoder_id="x@1")
    assert Scorer().key == "none"
    assert Scorer(fitted).key == fitted.id and Scorer(fitted, rows).key == fitted.id + "+s-norm"
    described = Scorer(fitted, rows, top_k=7, sources={"cohort": "c/"}).describe()
    assert described["s_norm"] == {"cohort": "c/", "cohort_size": len(rows), "top_k": 7}


def write_cohort(path, encoder: str, size: int = 24, rows: int = 30):
    embeddings = np.random.default_rng(1).normal(size=(rows, size)).astype(np.float32)
    write_store(path, EmbeddingStore([f"c{i}" for i in range(rows)], embeddings, np.ones(rows, bool), {"encoder": encoder}))
    return path


def test_resolve_scorer_finds_the_shipped_backend_and_refuses_other_encoders(tmp_path, monkeypatch):
    from speakembed.models import registry

    monkeypatch.setattr(registry, "PRETRAINED", tmp_path / "pretrained")
    rows, speakers = voices()
    assert resolve_scorer("lstm@abc").key == "none" and "no back-end ships" in resolve_scorer("lstm@abc").notes[0]
    (tmp_path / "pretrained" / "lstm").mkdir(parents=True)
    shipped = fit_backend(rows, speakers, encoder_id="lstm@abc")
    shipped.save(tmp_path / "pretrained" / "lstm" / "backend.npz")
    assert resolve_scorer("lstm@abc").backend.id == shipped.id
    stale = resolve_scorer("lstm@def")  # the weights changed since the back-end was fitted
    assert stale.backend is None and "fitted for lstm@abc" in stale.notes[0]
    assert resolve_scorer("lstm@abc", backend="none").backend is None
    with pytest.raises(ManifestError, match="back-end fitted for lstm@abc"):
        resolve_scorer("conv-transformer@123", backend=tmp_path / "pretrained" / "lstm")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    fit_backend(rows, speakers, encoder_id="lstm@fff").save(checkpoint / "backend.npz")
    assert resolve_scorer("lstm@fff", checkpoint=checkpoint).backend.encoder_id == "lstm@fff"


def test_a_cohort_of_another_encoder_or_size_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="cohort embedded by whisper@1"):
        resolve_scorer("lstm@abc", backend="none", cohort=write_cohort(tmp_path / "a.zarr", "whisper@1"))
    scorer = resolve_scorer("x@1", backend="none", cohort=write_cohort(tmp_path / "b.zarr", "x@1", size=16))
    with pytest.raises(ManifestError, match="16-d embeddings"):
        scorer.pairs(np.ones((2, 24)), np.ones((2, 24)))
