"""`spk evaluate verification` through Typer's CliRunner, on a tiny synthetic store: 4 speakers x
5 clustered unit vectors, ids like `spkA/a1.wav`."""

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speakembed.pipelines.data.manifests import write_table
from speakembed.pipelines.data.stores import EmbeddingStore, write_store
from helpers import spk

SPEAKERS = ("spkA", "spkB", "spkC", "spkD")
PLOTS = ("det.png", "scores.png", "embeddings_2d.png")


def make_store(folder: Path, spread: float, per_speaker: int = 5, seed: int = 0, speakers=SPEAKERS) -> list[str]:
    """Write FOLDER/embeddings.zarr (as `spk embed --out FOLDER` does); returns the item ids."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(speakers), 32))
    ids, vectors = [], []
    for speaker, centre in zip(speakers, centres):
        for index in range(1, per_speaker + 1):
            ids.append(f"{speaker}/{speaker[-1].lower()}{index}.wav")
            vectors.append(centre + spread * rng.normal(size=32))
    vectors = np.array(vectors) / np.linalg.norm(vectors, axis=1, keepdims=True)
    folder.mkdir()
    write_store(folder / "embeddings.zarr", EmbeddingStore(ids, vectors.astype(np.float32), np.ones(len(ids), bool),
                                                           {"encoder": "synthetic@0"}))
    return ids


def write_trials(path: Path, ids: list[str], strip_extension: bool = True) -> Path:
    """Kaldi trials over every pair of items, ids without their extension (IdResolver finds them)."""
    lines = []
    for first, second in itertools.combinations(ids, 2):
        label = "target" if first.split("/")[0] == second.split("/")[0] else "nontarget"
        names = [Path(item).with_suffix("").as_posix() if strip_extension else item for item in (first, second)]
        lines.append(f"{names[0]} {names[1]} {label}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def separated(tmp_path):
    """A store of well-separated speakers and the Kaldi trials over all its pairs."""
    ids = make_store(tmp_path / "emb", spread=0.2)
    return tmp_path, write_trials(tmp_path / "trials.txt", ids)


@pytest.fixture
def noisy(tmp_path):
    """A store of overlapping speakers (EER well above 0) and the trials over all its pairs."""
    ids = make_store(tmp_path / "emb", spread=1.6, seed=1)
    return tmp_path, write_trials(tmp_path / "trials.txt", ids, strip_extension=False)


def evaluate_json(*args):
    result = spk("evaluate", "verification", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_verification_is_listed_and_its_help_explains_speaker_folders():
    assert "verification" in spk("evaluate", "--help").stdout
    help_text = " ".join(spk("evaluate", "verification", "--help").stdout.split())
    assert "--speakers" in help_text and "first folder of the item id" in help_text


def test_separated_speakers_give_perfect_scores(separated):
    folder, trials = separated
    report = evaluate_json("--embeddings", folder / "emb", "--trials", trials)
    assert report["eer"] == 0 and report["min_dcf"]["0.01"]["min_dcf"] == 0 and report["min_dcf"]["0.05"]["min_dcf"] == 0
    assert report["retrieval"] == {"top1": 1.0, "top5": 1.0, "queries": 20, "skipped": 0}
    assert report["counts"] == {"trials": 190, "targets": 40, "nontargets": 150, "skipped_trials": 0, "embeddings": 20,
                                "speakers": 4, "without_speaker": 0}
    distances = report["distances"]
    assert distances["intra"] < distances["inter"] and (distances["intra_pairs"], distances["inter_pairs"]) == (40, 150)
    assert report["sources"]["speakers"] == "first path component of each item id"


def test_eer_matches_spk_verify_and_scores_parquet(noisy):
    folder, trials = noisy
    verified = spk("verify", "--trials", trials, "--embeddings", folder / "emb", "--out", folder / "scores.parquet",
                   "--json")
    assert verified.exit_code == 0, verified.output
    expected = json.loads(verified.stdout)["eer"]
    assert 0.02 < expected < 0.5
    from_store = evaluate_json("--embeddings", folder / "emb" / "embeddings.zarr", "--trials", trials)
    from_scores = evaluate_json("--scores", folder / "scores.parquet")
    assert from_store["eer"] == pytest.approx(expected) and from_scores["eer"] == pytest.approx(expected)
    assert from_scores["min_dcf"] == from_store["min_dcf"]
    assert from_scores["retrieval"] is None and from_scores["counts"]["embeddings"] is None
    assert 0 < from_store["retrieval"]["top1"] <= from_store["retrieval"]["top5"] <= 1


def test_out_writes_report_and_pictures_and_prints_a_table(separated):
    folder, trials = separated
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", trials, "--out", folder / "eval")
    assert result.exit_code == 0, result.output
    assert "EER" in result.stdout and "top-5 retrieval" in result.stdout and "100.00 %" in result.stdout
    out = folder / "eval"
    assert json.loads((out / "report.json").read_text())["plots"] == list(PLOTS)
    assert "| EER | 0.00 % |" in (out / "report.md").read_text()
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_speaker_table_overrides_the_folders(separated):
    folder, trials = separated
    rows = [(f"{s[-1].lower()}{i}", "AB" if s in ("spkA", "spkB") else s, "x") for s in SPEAKERS for i in range(1, 6)]
    pd.DataFrame(rows, columns=["utt_id", "who", "path"]).to_csv(folder / "spk.csv", index=False)
    report = evaluate_json("--embeddings", folder / "emb", "--trials", trials, "--speakers", folder / "spk.csv",
                           "--speaker-column", "who")
    assert report["counts"]["speakers"] == 3 and report["distances"]["intra_pairs"] == 45 + 10 + 10
    missing_column = spk("evaluate", "verification", "--embeddings", folder / "emb", "--speakers", folder / "spk.csv")
    assert missing_column.exit_code == 6 and "--speaker-column" in missing_column.output


def test_tiny_store_skips_the_projection_with_a_note(tmp_path):
    ids = make_store(tmp_path / "emb", spread=0.2, per_speaker=2, speakers=("spkA", "spkB"))
    trials = write_trials(tmp_path / "trials.txt", ids)
    result = spk("evaluate", "verification", "-e", tmp_path / "emb", "-t", trials, "-o", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert "t-SNE needs at least 5" in result.stdout
    assert not (tmp_path / "eval" / "embeddings_2d.png").exists() and (tmp_path / "eval" / "det.png").exists()


def test_missing_store_or_trials_exit_3(separated):
    folder, trials = separated
    assert spk("evaluate", "verification", "--embeddings", folder / "nope", "--trials", trials).exit_code == 3
    assert spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", folder / "nope.txt").exit_code == 3
    assert spk("evaluate", "verification", "--scores", folder / "nope.parquet").exit_code == 3


def test_trials_naming_failed_items_are_skipped_and_counted_as_spk_verify_does(separated):
    """A store where an item failed to embed: the trials naming it are skipped (not refused), the
    report says how many, and the metrics are those of `spk verify --trials` on the same list."""
    folder, trials = separated
    lines = trials.read_text().splitlines()
    with_ghosts = folder / "ghosts.txt"
    with_ghosts.write_text("\n".join(lines + ["spkA/a1 ghost/g1 nontarget", "ghost/g2 spkB/b1 nontarget"]) + "\n")
    verified = spk("verify", "--trials", with_ghosts, "--embeddings", folder / "emb", "--out", folder / "s.parquet",
                   "--json")
    assert verified.exit_code == 0, verified.output
    report = evaluate_json("--embeddings", folder / "emb", "--trials", with_ghosts)
    assert report["counts"]["trials"] == json.loads(verified.stdout)["scored"] == len(lines)
    assert report["counts"]["skipped_trials"] == 2 and report["eer"] == 0
    assert any("2 of 192 trials name ids that are not in" in note and "ghost/g1" in note for note in report["notes"])
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", with_ghosts, "--out",
                 folder / "eval")
    assert result.exit_code == 0, result.output
    assert "trials skipped (id not in the store)" in result.stdout and "2 of 192 trials" in result.stdout
    assert json.loads((folder / "eval" / "report.json").read_text())["counts"]["skipped_trials"] == 2
    assert "| trials skipped (id not in the store) | 2 |" in (folder / "eval" / "report.md").read_text()


def test_strict_refuses_unknown_trial_ids_with_one_line(separated):
    folder, _ = separated
    (folder / "bad.txt").write_text("spkA/a1 spkA/a2 target\nspkA/a1 ghost/g1 nontarget\n")
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", folder / "bad.txt", "--strict")
    assert result.exit_code == 6
    assert "1 of 2 trials name ids that are not in" in result.output and "ghost/g1" in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_scorable_trial_exits_6(separated):
    folder, _ = separated
    (folder / "ghosts.txt").write_text("ghost/g1 ghost/g2 target\nghost/g1 ghost/g3 nontarget\n")
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", folder / "ghosts.txt")
    assert result.exit_code == 6 and "none of the trials' ids are in" in result.output
    assert "Traceback" not in result.output


def test_out_under_a_file_fails_before_any_work(separated, monkeypatch):
    from speakembed.pipelines import evaluate_verification as pipeline

    folder, trials = separated
    (folder / "a_file").write_text("not a folder")
    monkeypatch.setattr(pipeline, "read_store", lambda *_: pytest.fail("read the store before checking --out"))
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", trials, "--out",
                 folder / "a_file" / "eval")
    assert result.exit_code == 8 and "cannot create the output folder" in result.output


def test_unlabelled_or_single_class_trials_exit_6(separated, tmp_path):
    folder, _ = separated
    write_table(pd.DataFrame({"enroll": ["spkA/a1"], "test": ["spkA/a2"], "score": [0.5], "encoder": ["x"]}),
                tmp_path / "unlabelled.parquet", "scores")
    result = spk("evaluate", "verification", "--scores", tmp_path / "unlabelled.parquet")
    assert result.exit_code == 6 and "needs labelled trials" in result.output
    (tmp_path / "pairs.txt").write_text("spkA/a1 spkA/a2\n")
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", tmp_path / "pairs.txt")
    assert result.exit_code == 6 and "needs labelled trials" in result.output
    (tmp_path / "targets.txt").write_text("spkA/a1 spkA/a2 target\nspkB/b1 spkB/b2 target\n")
    result = spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", tmp_path / "targets.txt")
    assert result.exit_code == 6 and "all 2 trials are target trials" in result.output


def test_usage_errors_exit_2(separated):
    folder, trials = separated
    assert spk("evaluate", "verification").exit_code == 2
    assert spk("evaluate", "verification", "--trials", trials).exit_code == 2
    assert spk("evaluate", "verification", "--embeddings", folder / "emb", "--trials", trials,
               "--scores", folder / "s.parquet").exit_code == 2
