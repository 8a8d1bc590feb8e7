"""Verification trials over the dev split of the Debian real-speech corpus (build_corpus.py).

Writes OUT/audio/<speaker>/<clip> (hard links to the chosen dev clips) and OUT/trials.txt (Kaldi style:
`enroll test target|nontarget`, ids relative to OUT/audio, as `spk embed OUT/audio` names its items). A person is one label: voices of the same person in two packages are a
target pair, never a non-target. Non-target pairs are mostly of the same language (`--same-language`
of them), so that an encoder cannot pass by telling languages apart; clips shorter than
`--min-duration` seconds are left out; every choice is seeded.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
from collections import defaultdict
from pathlib import Path

import soundfile

from build_corpus import place  # the sibling script: a hard link, or a copy where refused


def dev_clips(corpus: Path, min_duration_s: float, per_person: int, rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """person -> [(clip id, language)], at most `per_person` clips of at least `min_duration_s` each."""
    with open(corpus / "labels.tsv") as table:
        speakers = [row for row in csv.DictReader(table, delimiter="\t") if row["split"] == "dev"]
    clips = defaultdict(list)
    for row in speakers:
        for path in sorted((corpus / "dev" / row["speaker"]).iterdir()):
            if soundfile.info(str(path)).duration >= min_duration_s:
                clips[row["person"]].append((str(path.relative_to(corpus / "dev")), row["language"]))
    return {person: rng.sample(items, min(per_person, len(items))) for person, items in sorted(clips.items())}


def trials(clips: dict[str, list[tuple[str, str]]], targets_per_person: int, nontargets: int, same_language: float,
           rng: random.Random) -> list[tuple[str, str, str]]:
    rows = []
    for items in clips.values():
        pairs = list(itertools.combinations([clip for clip, _ in items], 2))
        rows += [(a, b, "target") for a, b in rng.sample(pairs, min(targets_per_person, len(pairs)))]
    everything = [(person, clip, language) for person, items in clips.items() for clip, language in items]
    by_language = defaultdict(list)
    for entry in everything:
        by_language[entry[2]].append(entry)
    shared = [language for language, entries in by_language.items() if len({person for person, _, _ in entries}) > 1]
    wanted, seen = nontargets, set()
    while len(seen) < wanted:
        if rng.random() < same_language:
            pool = by_language[rng.choice(shared)]
            first, second = rng.choice(pool), rng.choice(pool)
        else:
            first, second = rng.choice(everything), rng.choice(everything)
        if first[0] != second[0]:
            seen.add((first[1], second[1]))
    rows += [(a, b, "nontarget") for a, b in sorted(seen)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--min-duration", type=float, default=0.8)
    parser.add_argument("--per-person", type=int, default=40)
    parser.add_argument("--targets-per-person", type=int, default=150)
    parser.add_argument("--nontargets", type=int, default=3000)
    parser.add_argument("--same-language", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    clips = dev_clips(args.corpus, args.min_duration, args.per_person, rng)
    rows = trials(clips, args.targets_per_person, args.nontargets, args.same_language, rng)
    for clip, _ in (entry for items in clips.values() for entry in items):
        place(args.corpus / "dev" / clip, args.out / "audio" / clip)
    (args.out / "trials.txt").write_text("".join(f"{a} {b} {label}\n" for a, b, label in rows))
    targets = sum(label == "target" for *_, label in rows)
    print(f"{len(clips)} persons, {sum(map(len, clips.values()))} clips -> {targets} target + {len(rows) - targets} "
          f"non-target trials in {args.out / 'trials.txt'}")


if __name__ == "__main__":
    main()
