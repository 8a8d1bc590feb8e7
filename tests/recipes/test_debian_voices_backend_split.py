"""recipes/debian-voices/local/backend_split.py on a tiny fake corpus: the persons of the calibration
languages are held out whole (every label of a person), nothing of the dev split is used, short and
dangling clips are left out, and the calibration trials are labelled by person."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

SCRIPT = Path(__file__).parents[2] / "recipes" / "debian-voices" / "local" / "backend_split.py"
COLUMNS = ["speaker", "package", "voice", "language", "reliable", "labelled", "person", "split", "clips"]
SPEAKERS = [  # speaker, language, labelled, person, split
    ("tux_ru", "ru", "True", "tux_ru", "train"),
    ("klet_ru", "ru", "True", "kde_ru", "train"),
    ("ktub_ru", "ru", "True", "kde_ru", "train"),  # the same person as klet_ru
    ("klet_en", "en", "True", "kde_en", "train"),
    ("ktub_en", "de", "True", "kde_en", "train"),  # a person of a calibration language, labelled in another one
    ("tux_ro", "ro", "True", "tux_ro", "train"),
    ("game_a", "en", "False", "game_a", "train"),  # unlabelled: never a calibration person
    ("tux_fr", "fr", "True", "tux_fr", "dev"),
]


def write_corpus(root: Path) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    with open(root / "labels.tsv", "w", newline="") as table:
        writer = csv.writer(table, delimiter="\t")
        writer.writerow(COLUMNS)
        for speaker, language, labelled, person, split in SPEAKERS:
            folder = root / split / speaker
            folder.mkdir(parents=True)
            for index in range(4):
                seconds = 0.5 if index == 0 else 1.2  # the first clip is too short for the trials
                soundfile.write(str(folder / f"{speaker}_{index}.wav"), 0.1 * rng.normal(size=int(seconds * 16000)), 16000)
            writer.writerow([speaker, "pkg", "main", language, labelled, labelled, person, split, 4])
    (root / "train" / "tux_ro" / "dangling.wav").symlink_to(root / "absent.wav")
    return root


def test_calibration_persons_are_held_out_whole_and_trials_are_by_person(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    out = tmp_path / "split"
    subprocess.run([sys.executable, str(SCRIPT), str(corpus), str(out), "--calibration-languages", "ru en",
                    "--nontargets", "20", "--clips-per-speaker", "2"], check=True, capture_output=True)
    fit = list(csv.DictReader(open(out / "fit_speakers.tsv"), delimiter="\t"))
    assert {row["speaker"] for row in fit} == {"tux_ro", "game_a"}  # kde_en (ktub_en, labelled de) is held out too
    assert len(fit) == 4 and all(Path(out / "fit" / row["item_id"]).is_file() for row in fit)
    assert {row["labelled"] for row in fit if row["speaker"] == "game_a"} == {"False"}
    held_out = sorted(path.name for path in (out / "calibration").iterdir())
    assert held_out == ["klet_en", "klet_ru", "ktub_en", "ktub_ru", "tux_ru"]
    clips = [path for path in (out / "calibration").rglob("*.wav")]
    assert len(clips) == 15 and not any(path.name.endswith("_0.wav") for path in clips)  # 0.5 s clips left out
    person = {"tux_ru": "tux_ru", "klet_ru": "kde_ru", "ktub_ru": "kde_ru", "klet_en": "kde_en", "ktub_en": "kde_en"}
    for line in (out / "calibration_trials.txt").read_text().splitlines():
        first, second, label = line.split()
        same = person[first.split("/")[0]] == person[second.split("/")[0]]
        assert label == ("target" if same else "nontarget")
        assert (out / "calibration" / first).is_file() and (out / "calibration" / second).is_file()
