"""`spk train backend`, `spk calibrate`, and the scoring options of `spk verify --trials` and `spk
evaluate verification` (--backend, --cohort, --calibration, --prior, --far), on synthetic stores whose
embeddings share a large common component, as the GE2E LSTM's do."""

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speakembed.pipelines.data.manifests import read_table, write_table
from speakembed.pipelines.data.stores import EmbeddingStore, write_store
from speakembed.pipelines.scoring.backend import DEFAULT_TOP_K
from helpers import spk

SIZE = 32
SHARED = 2.5 * np.abs(np.random.default_rng(42).normal(size=SIZE))  # what every voice of the "encoder" shares


def make_store(folder: Path, speakers: range, clips: int = 6, encoder: str = "synthetic@0", size: int = SIZE) -> list[str]:
    """FOLDER/embeddings.zarr of `clips` embeddings per speaker (ids `spkNN/cM.wav`); returns the ids."""
    ids, vectors = [], []
    for speaker in speakers:
        rng = np.random.default_rng(speaker)
        centre = SHARED[:size] + rng.normal(size=size)
        for clip in range(clips):
            ids.append(f"spk{speaker:02d}/c{clip}.wav")
            vectors.append(centre + 0.9 * rng.normal(size=size))
    vectors = np.array(vectors) / np.linalg.norm(vectors, axis=1, keepdims=True)
    folder.mkdir(parents=True)
    write_store(folder / "embeddings.zarr", EmbeddingStore(ids, vectors.astype(np.float32), np.ones(len(ids), bool),
                                                           {"encoder": encoder}))
    return ids


def write_trials(path: Path, ids: list[str], labelled: bool = True) -> Path:
    lines = []
    for first, second in itertools.combinations(ids, 2):
        label = "target" if first.split("/")[0] == second.split("/")[0] else "nontarget"
        lines.append(f"{first} {second}" + (f" {label}" if labelled else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_json(*args) -> dict:
    result = spk(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def stores(tmp_path):
    """Disjoint voices: `fit` (30 speakers, for the back-end and the s-norm cohort), `calibration`
    (12) and `eval` (10), with labelled trials over all pairs of the last two."""
    make_store(tmp_path / "fit", range(0, 30))
    calibration = make_store(tmp_path / "calibration", range(30, 42))
    evaluation = make_store(tmp_path / "eval", range(50, 60))
    write_trials(tmp_path / "calibration.txt", calibration)
    write_trials(tmp_path / "eval.txt", evaluation)
    assert spk("train", "backend", "--embeddings", tmp_path / "fit", "--out", tmp_path / "be").exit_code == 0
    return tmp_path


def verify_trials(folder: Path, part: str, name: str, *options) -> dict:
    return run_json("verify", "--trials", folder / f"{part}.txt", "--embeddings", folder / part,
                    "--out", folder / f"{name}.parquet", *options)


def test_train_backend_fits_a_file_that_lowers_the_eer_and_is_recorded(stores):
    result = spk("train", "backend", "--embeddings", stores / "fit", "--out", stores / "be2")
    assert result.exit_code == 0, result.output
    assert "on 180 embeddings of 30 speakers" in " ".join(result.stdout.split())
    assert (stores / "be2" / "backend.npz").is_file()
    raw = verify_trials(stores, "eval", "raw", "--backend", "none")
    centred = verify_trials(stores, "eval", "centred", "--backend", stores / "be")
    assert raw["scoring"]["key"] == "none" and centred["scoring"]["key"].startswith("backend@")
    assert centred["scoring"]["backend_source"] == str(stores / "be")
    assert centred["eer"] < raw["eer"]
    table = read_table(stores / "centred.parquet", "scores")
    assert set(table["scoring"]) == {centred["scoring"]["key"]}
    assert not np.allclose(table["score"], table["cosine"])  # cosine: the raw one, score: after the back-end
    assert "llr" not in table.columns and centred["calibrated"] is False  # nothing calibrates this back-end yet


def test_the_default_backend_of_an_encoder_without_one_is_raw_cosine_with_a_note(stores):
    summary = verify_trials(stores, "eval", "default")
    assert summary["scoring"]["key"] == "none" and "no back-end ships for synthetic@0" in summary["notes"][0]


def test_calibrated_verify_writes_probabilities_and_evaluate_reports_cllr(stores):
    verify_trials(stores, "calibration", "calibration", "--backend", stores / "be")
    fitted = run_json("calibrate", "--scores", stores / "calibration.parquet", "--out", stores / "cal.json")
    assert fitted["encoder"] == "synthetic@0" and fitted["scoring"].startswith("backend@") and fitted["cllr"] < 1
    options = ("--backend", stores / "be", "--calibration", stores / "cal.json")
    summary = verify_trials(stores, "eval", "calibrated", *options)
    assert summary["calibrated"] is True
    table = read_table(stores / "calibrated.parquet", "scores")
    assert ((table["probability"] >= 0.5) == table["same_speaker"]).all()
    assert table.loc[table["label"] == 1, "llr"].mean() > 0 > table.loc[table["label"] == 0, "llr"].mean()
    rare = verify_trials(stores, "eval", "rare", *options, "--prior", "0.1")
    assert rare["threshold"] > summary["threshold"]  # a rarer target needs a higher score
    assert (read_table(stores / "rare.parquet", "scores")["probability"] < table["probability"]).all()

    report = run_json("evaluate", "verification", "--embeddings", stores / "eval", "--trials", stores / "eval.txt",
                      *options, "--far", "0.05")
    assert 0 < report["cllr"] < 1 and report["sources"]["scoring"] == fitted["scoring"]
    for cost in report["min_dcf"].values():
        assert cost["actual_dcf"] >= cost["min_dcf"] - 1e-9
    thresholds = report["thresholds"]
    nontargets = table.loc[table["label"] == 0, "score"]
    assert thresholds["far"] == 0.05 and np.mean(nontargets >= thresholds["at_far"]) <= 0.05
    assert np.mean(nontargets >= thresholds["eer_point"]) == pytest.approx(report["eer"], abs=0.02)
    from_scores = run_json("evaluate", "verification", "--scores", stores / "calibrated.parquet")
    assert from_scores["cllr"] == pytest.approx(report["cllr"], rel=1e-4)
    table_text = spk("evaluate", "verification", "--scores", stores / "calibrated.parquet").stdout
    assert "Cllr" in table_text and "actual DCF (p_target=0.01)" in table_text and "threshold at FAR 1 %" in table_text


def test_one_calibration_file_keeps_a_map_per_scoring(stores):
    verify_trials(stores, "calibration", "centred", "--backend", stores / "be")
    verify_trials(stores, "calibration", "raw", "--backend", "none")
    run_json("calibrate", "--scores", stores / "centred.parquet", "--out", stores / "cal.json")
    second = run_json("calibrate", "--scores", stores / "raw.parquet", "--out", stores / "cal.json")
    assert second["scoring"] == "none" and len(second["kept"]) == 1
    maps = json.loads((stores / "cal.json").read_text())["maps"]
    assert set(maps) == {"none", second["kept"][0]}
    raw = verify_trials(stores, "eval", "raw-eval", "--backend", "none", "--calibration", stores / "cal.json")
    assert raw["calibrated"] is True


def test_a_cohort_turns_on_adaptive_s_norm(stores):
    summary = verify_trials(stores, "eval", "snorm", "--backend", stores / "be", "--cohort", stores / "fit",
                            "--top-k", "50")
    assert summary["scoring"]["key"].endswith("+s-norm")
    assert summary["scoring"]["s_norm"] == {"cohort": str(stores / "fit"), "cohort_size": 180, "top_k": 50}
    assert summary["eer"] < verify_trials(stores, "eval", "raw", "--backend", "none")["eer"]


def test_the_top_k_option_defaults_to_the_scorer_default():
    help_text = " ".join(spk("verify", "--help").stdout.split())
    assert f"[default: {DEFAULT_TOP_K}]" in help_text.split("--top-k", 1)[1][:200]


@pytest.mark.parametrize("make_args, code, message", [
    (lambda d: ["calibrate", "--scores", d / "unlabelled.parquet", "--out", d / "c.json"], 6, "needs labelled trials"),
    (lambda d: ["calibrate", "--scores", d / "targets.parquet", "--out", d / "c.json"], 6, "all 150 trials are target"),
    (lambda d: ["calibrate", "--scores", d / "labelled.parquet", "--out", d / "eval.txt"], 8, "not a calibration file"),
    (lambda d: ["calibrate", "--scores", d / "labelled.parquet", "--out", d / "c.json", "--prior", "1"], 2, "strictly between"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--backend", d / "other-be"], 6, "back-end fitted for other@1"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--backend", d / "absent"], 3, "no such back-end file"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--backend", "none", "--calibration", d / "other-cal.json"], 6, "calibration for other@1"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--backend", "none", "--calibration", d / "cal.json"], 6, "not 'none'"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--cohort", d / "other-cohort"], 6, "cohort embedded by other@1"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--backend", "none", "--cohort", d / "small-cohort"], 6, "16-d embeddings"),
    (lambda d: ["verify", "--trials", d / "eval.txt", "--embeddings", d / "eval", "--out", d / "s.parquet",
                "--prior", "0"], 2, "strictly between"),
    (lambda d: ["evaluate", "verification", "--scores", d / "labelled.parquet", "--far", "2"], 2, "false-accept rate"),
    (lambda d: ["train", "backend", "--out", d / "b"], 2, "--embeddings"),
    (lambda d: ["train", "backend", "--embeddings", d / "eval", "--out", d / "b", "--lda-dim", "12"], 2, "at most 9"),
    (lambda d: ["train", "--out", d / "b"], 2, "give --data"),
], ids=["calibrate-unlabelled", "calibrate-one-label", "calibrate-over-another-file", "calibrate-bad-prior",
        "backend-of-another-encoder", "backend-missing", "calibration-of-another-encoder", "calibration-of-another-scoring",
        "cohort-of-another-encoder", "cohort-of-another-size", "verify-bad-prior", "evaluate-bad-far",
        "train-backend-without-store", "train-backend-lda-too-large", "train-without-data"])
def test_bad_input_gets_one_line_error_and_exit_code(tmp_path, make_args, code, message):
    ids = make_store(tmp_path / "eval", range(50, 60))
    write_trials(tmp_path / "eval.txt", ids)
    make_store(tmp_path / "other", range(0, 5), encoder="other@1")
    make_store(tmp_path / "other-cohort", range(0, 5), encoder="other@1")
    make_store(tmp_path / "small-cohort", range(0, 5), size=16)
    assert spk("train", "backend", "--embeddings", tmp_path / "other", "--out", tmp_path / "other-be").exit_code == 0
    assert spk("train", "backend", "--embeddings", tmp_path / "eval", "--out", tmp_path / "be").exit_code == 0
    scored = spk("verify", "--trials", tmp_path / "eval.txt", "--embeddings", tmp_path / "eval", "--backend",
                 tmp_path / "be", "--out", tmp_path / "labelled.parquet")
    assert scored.exit_code == 0, scored.output
    assert spk("calibrate", "--scores", tmp_path / "labelled.parquet", "--out", tmp_path / "cal.json").exit_code == 0
    other_scores = read_table(tmp_path / "labelled.parquet", "scores").assign(encoder="other@1")
    write_table(other_scores, tmp_path / "other.parquet", "scores")
    assert spk("calibrate", "--scores", tmp_path / "other.parquet", "--out", tmp_path / "other-cal.json").exit_code == 0
    write_table(other_scores.assign(label=pd.NA), tmp_path / "unlabelled.parquet", "scores")
    write_table(other_scores[other_scores["label"] == 1], tmp_path / "targets.parquet", "scores")
    result = spk(*make_args(tmp_path))
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
