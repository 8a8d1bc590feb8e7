"""The train-split clips that fit an encoder's shipped back-end and calibration (recipes/debian-voices/backend.sh).

The train split of the corpus (build_corpus.py) is cut by person into two disjoint parts, neither
touching the dev split or its trials:
  OUT/fit/<speaker>/<clip>      up to --clips-per-speaker clips of every train speaker outside the
                                calibration languages (labelled and unlabelled voices): the cohort
                                the back-end's mean is estimated on (`spk train backend`), and the
                                s-norm cohort of the calibration
  OUT/fit_speakers.tsv          item_id, speaker (the person for labelled voices, else the corpus
                                speaker), labelled: the `--speakers` table of `spk train backend`
  OUT/calibration/<speaker>/... up to 40 clips of each labelled train person of the calibration
                                languages (--calibration-languages, each with several persons)
  OUT/calibration_trials.txt    their trials, made as the dev trials are (make_trials.trials: mostly
                                same-language non-targets), labelled: what `spk calibrate` fits on
Clips shorter than --min-duration seconds are left out, as in the dev trials. Every choice is seeded.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

import soundfile

from build_corpus import place  # the sibling scripts: a hard link (or a copy), and the dev trial maker
from make_trials import trials


def long_clips(folder: Path, min_duration_s: float) -> list[Path]:
    """The readable clips of a speaker folder that last at least `min_duration_s`, sorted (a few
    corpus entries are dangling links to files a package does not ship)."""
    return [path for path in sorted(folder.iterdir()) if duration_s(path) >= min_duration_s]


def duration_s(path: Path) -> float:
    """Duration of an audio file in seconds; 0 when it cannot be opened."""
    try:
        return soundfile.info(str(path)).duration
    except (soundfile.LibsndfileError, RuntimeError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--calibration-languages", default="ru lt el en")
    parser.add_argument("--clips-per-speaker", type=int, default=12)
    parser.add_argument("--per-person", type=int, default=40)
    parser.add_argument("--min-duration", type=float, default=0.8)
    parser.add_argument("--targets-per-person", type=int, default=150)
    parser.add_argument("--nontargets", type=int, default=3000)
    parser.add_argument("--same-language", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    held_out_languages = set(args.calibration_languages.split())
    with open(args.corpus / "labels.tsv") as table:
        rows = [row for row in csv.DictReader(table, delimiter="\t") if row["split"] == "train"]
    # A person is held out whole: a voice of one of its labels in a calibration language holds out all of them.
    held_out = {row["person"] for row in rows if row["labelled"] == "True" and row["language"] in held_out_languages}
    fit_table, calibration_clips = [], defaultdict(list)
    for row in rows:
        clips = long_clips(args.corpus / "train" / row["speaker"], args.min_duration)
        if row["person"] in held_out:
            calibration_clips[row["person"]] += [(path, row["language"]) for path in clips]
            continue
        label = row["person"] if row["labelled"] == "True" else row["speaker"]
        for path in rng.sample(clips, min(args.clips_per_speaker, len(clips))):
            item_id = path.relative_to(args.corpus / "train").as_posix()
            place(path, args.out / "fit" / item_id)
            fit_table.append((item_id, label, row["labelled"]))
    with open(args.out / "fit_speakers.tsv", "w") as out:
        out.write("item_id\tspeaker\tlabelled\n" + "".join(f"{item}\t{label}\t{flag}\n" for item, label, flag in fit_table))
    chosen = {person: rng.sample(items, min(args.per_person, len(items))) for person, items in sorted(calibration_clips.items())}
    ids = {person: [(path.relative_to(args.corpus / "train").as_posix(), language) for path, language in items]
           for person, items in chosen.items()}
    for items in chosen.values():
        for path, _ in items:
            place(path, args.out / "calibration" / path.relative_to(args.corpus / "train"))
    lines = trials(ids, args.targets_per_person, args.nontargets, args.same_language, rng)
    (args.out / "calibration_trials.txt").write_text("".join(f"{a} {b} {label}\n" for a, b, label in lines))
    targets = sum(label == "target" for *_, label in lines)
    print(f"fit: {len(fit_table)} clips of {len({label for _, label, _ in fit_table})} voices; calibration: "
          f"{len(chosen)} persons ({', '.join(sorted(held_out_languages))}), {sum(map(len, chosen.values()))} clips, "
          f"{targets} target + {len(lines) - targets} non-target trials")


if __name__ == "__main__":
    main()
