"""recipes/debian-voices stages 2-3 on a fake unpacked tree in the packages' layouts: speakers, the
dropped folders, person ids that join one human across packages, a speaker-disjoint split, and trials
over the dev split. (test_debian_voices_stages.py runs run.sh itself on fake .deb packages.)"""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

RECIPE = Path(__file__).parents[2] / "recipes" / "debian-voices" / "local"
RATE = 16000


def _clip(path: Path, seconds: float = 1.2, f0: float = 150.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    time_s = np.arange(int(seconds * RATE)) / RATE
    soundfile.write(str(path), (0.1 * np.sin(2 * np.pi * f0 * time_s)).astype(np.float32), RATE, format="OGG")


def _fake_packages(root: Path) -> None:
    stamps = root / "tuxpaint-stamps-default/usr/share/tuxpaint/stamps/animals"
    for index in range(3):
        for language in ("fr", "da"):
            _clip(stamps / f"cat{index}_desc_{language}.ogg", f0=120 + index)
    (stamps / "cat0_copy_desc_fr.ogg").write_bytes((stamps / "cat0_desc_fr.ogg").read_bytes())  # a repeat: deduplicated
    for language, parts in (("fr", ("alpha",)), ("de", ("alpha", "syllab")), ("da", ("alpha",))):
        for part in parts:
            for letter in "abc":
                _clip(root / f"klettres-data/usr/share/klettres/{language}/{part}/{letter}.ogg", f0=200 + ord(letter))
    for language in ("fr", "de", "nn", "ca", "sr@latin"):
        for word in ("ball", "bow"):
            _clip(root / f"ktuberling-data/usr/share/ktuberling/sounds/{language}/{word}.ogg", f0=180)


def test_corpus_labels_split_and_trials(tmp_path):
    _fake_packages(tmp_path / "unpacked")
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(RECIPE / "build_corpus.py"), str(tmp_path / "unpacked"), str(corpus),
                    "--dev-languages", "fr de"], check=True, capture_output=True, text=True)
    with open(corpus / "labels.tsv") as table:
        rows = {row["speaker"]: row for row in csv.DictReader(table, delimiter="\t")}
    assert "ktuberling_nn" not in rows and "ktuberling_ca" not in rows and "ktuberling_sr@latin" not in rows
    assert rows["tuxpaint_fr"]["clips"] == "3"  # the duplicate recording is dropped
    assert {rows["klettres_de_alpha"]["person"], rows["klettres_de_syllab"]["person"]} == {"kde_de", "klettres_de_syllab"}
    assert rows["ktuberling_de"]["person"] == rows["klettres_de_alpha"]["person"]  # one human, two packages
    assert {name for name, row in rows.items() if row["split"] == "dev"} == {
        "tuxpaint_fr", "klettres_fr", "ktuberling_fr", "klettres_de_alpha", "klettres_de_syllab", "ktuberling_de"}
    persons_by_split = {split: {row["person"] for row in rows.values() if row["split"] == split} for split in ("train", "dev")}
    assert not persons_by_split["train"] & persons_by_split["dev"]
    assert (corpus / "dev" / "tuxpaint_fr").is_dir() and (corpus / "train" / "klettres_da").is_dir()

    subprocess.run([sys.executable, str(RECIPE / "make_trials.py"), str(corpus), str(tmp_path / "eval"),
                    "--nontargets", "20", "--min-duration", "1.0"], check=True, capture_output=True, text=True)
    person_of = {name: row["person"] for name, row in rows.items()}
    trials = [line.split() for line in (tmp_path / "eval" / "trials.txt").read_text().splitlines()]
    assert {label for *_, label in trials} == {"target", "nontarget"}
    for enroll, test, label in trials:
        assert (tmp_path / "eval" / "audio" / enroll).is_file() and (tmp_path / "eval" / "audio" / test).is_file()
        same_person = person_of[enroll.split("/")[0]] == person_of[test.split("/")[0]]
        assert same_person == (label == "target"), (enroll, test, label)
