"""Does a calibration hold on real speech and on TTS voices at once? (backend.sh stage 5)

Scorings (the shipped back-end's cosine; adaptive s-norm against the real fit cohort, or against a
mixed cohort of the real fit clips and the synthetic fit voices) x calibrations (fitted on the real
calibration trials, or on those pooled with the synthetic calibration trials). Each is measured
on the calibration split by 2-fold cross-validation (calibration persons, and synthetic voices,
cut in two halves; fit on one half's trials, measure on the other's, both ways; LLRs of both
held-out halves pooled) -- the figure to choose by -- and on the real and synthetic dev trials,
fitted on all calibration trials (never on dev). The back-end is the one in MODELS/ENCODER.
Prints a markdown table.

Synthetic voices (synthetic_voices.py, embedded into SYNTHETIC): alternate voices of each family
(kokoro_*, espeak*) in sorted order are fit (cohort) or calibration voices; their trials are made
as the dev trials are (make_trials.trials), half of the non-targets within one family.

    python local/domain_calibration.py WORK ENCODER SYNTHETIC DATA SYNTHETIC_DEV MODELS
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from make_trials import trials as make_trials  # the sibling script
from speakembed.pipelines.data.stores import read_store
from speakembed.pipelines.data.trials import read_trials
from speakembed.pipelines.scoring.backend import Backend, Scorer
from speakembed.pipelines.scoring.calibration import actual_detection_cost, cllr, fit_logistic
from speakembed.pipelines.scoring.metrics import equal_error_rate, min_detection_cost
from speakembed.pipelines.verify import IdResolver

P_TARGETS = (0.01, 0.05)
TOP_K = 100


class Set:
    """Labelled trials over one store: embeddings of both sides, labels, and each side's group
    (person or voice) for the cross-validation folds."""

    def __init__(self, store_path: Path, trials: list[tuple[str, str, int]], group_of=lambda item: item.split("/")[0]):
        store = read_store(store_path)
        resolve = IdResolver(store.lookup())
        rows = [(resolve(a), resolve(b), label) for a, b, label in trials]
        rows = [(int(a), int(b), label) for a, b, label in rows if a == a and b == b]  # NaN: not embedded
        self.first = store.embeddings[[a for a, _, _ in rows]]
        self.second = store.embeddings[[b for _, b, _ in rows]]
        self.labels = np.array([label for *_, label in rows])
        self.groups = np.array([(group_of(store.item_ids[a]), group_of(store.item_ids[b])) for a, b, _ in rows])

    def part(self, keep: set[str]) -> "Set":
        """The trials whose two sides are both of the groups in `keep`."""
        mask = np.isin(self.groups[:, 0], list(keep)) & np.isin(self.groups[:, 1], list(keep))
        part = object.__new__(Set)
        part.first, part.second, part.labels, part.groups = self.first[mask], self.second[mask], self.labels[mask], self.groups[mask]
        return part

    def halves(self) -> list[set[str]]:
        names = sorted(set(self.groups.ravel()))
        return [set(names[0::2]), set(names[1::2])]


def metrics(llr: np.ndarray, labels: np.ndarray) -> dict:
    values = {"eer": equal_error_rate(llr, labels).eer, "cllr": cllr(llr, labels)}
    for p in P_TARGETS:
        values[p] = (min_detection_cost(llr, labels, p).min_dcf, actual_detection_cost(llr, labels, p))
    return values


def fitted_llr(scorer: Scorer, train: list[Set], test: Set) -> np.ndarray:
    scores = np.concatenate([scorer.pairs(part.first, part.second) for part in train])
    fitted = fit_logistic(scores, np.concatenate([part.labels for part in train]))
    return fitted.llr(scorer.pairs(test.first, test.second))


def cross_validated(scorer: Scorer, real: Set, synthetic: Set, pooled: bool) -> dict[str, dict]:
    """Held-out metrics per domain: fit on one half of the persons and voices, test on the other."""
    held = {"real": ([], []), "synthetic": ([], [])}
    for fold in (0, 1):
        train = {"real": real.part(real.halves()[fold]), "synthetic": synthetic.part(synthetic.halves()[fold])}
        test = {"real": real.part(real.halves()[1 - fold]), "synthetic": synthetic.part(synthetic.halves()[1 - fold])}
        parts = [train["real"], train["synthetic"]] if pooled else [train["real"]]
        for domain in held:
            held[domain][0].append(fitted_llr(scorer, parts, test[domain]))
            held[domain][1].append(test[domain].labels)
    return {domain: metrics(np.concatenate(llrs), np.concatenate(labels)) for domain, (llrs, labels) in held.items()}


def row(scoring: str, calibration: str, where: str, values: dict) -> str:
    cells = [f"{100 * values['eer']:.2f} %", f"{values['cllr']:.3f}"]
    for p in P_TARGETS:
        minimum, actual = values[p]
        cells += [f"{minimum:.3f}", f"{actual:.3f}", f"{100 * (actual / minimum - 1):+.1f} %"]
    return f"| {scoring} | {calibration} | {where} | " + " | ".join(cells) + " |"


def synthetic_split(store_path: Path) -> tuple[np.ndarray, dict[str, list[tuple[str, str]]]]:
    """(fit embeddings (C, D), calibration clips by voice) of the synthetic voices' store."""
    store = read_store(store_path)
    items = [item for item in store.lookup() if item.startswith(("kokoro_", "espeak"))]
    voices = sorted({item.split("/")[0] for item in items})
    family = lambda voice: "kokoro" if voice.startswith("kokoro") else "espeak"  # noqa: E731
    calibration_voices = {voice for name in ("kokoro", "espeak")
                          for voice in [v for v in voices if family(v) == name][1::2]}
    lookup = store.lookup()
    fit = store.embeddings[[lookup[item] for item in items if item.split("/")[0] not in calibration_voices]]
    clips = defaultdict(list)
    for item in sorted(items):
        if item.split("/")[0] in calibration_voices:
            clips[item.split("/")[0]].append((item, family(item.split("/")[0])))
    return fit, dict(clips)


def kaldi_trials(path: Path) -> list[tuple[str, str, int]]:
    table = read_trials(path)
    return list(zip(table["enroll"], table["test"], table["label"].astype(int)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("work", "encoder", "synthetic", "data", "synthetic_dev", "models"):
        parser.add_argument(name, type=Path if name != "encoder" else str)
    args = parser.parse_args()
    out = args.work / args.encoder
    person = {r["speaker"]: r["person"] for r in csv.DictReader(open(args.data / "corpus/labels.tsv"), delimiter="\t")}
    real = Set(out / "calibration", kaldi_trials(args.work / "split/calibration_trials.txt"),
               lambda item: person[item.split("/")[0]])
    synthetic_fit, clips = synthetic_split(args.synthetic)
    rows = make_trials(clips, 1000, 3000, 0.5, random.Random(0))
    synthetic = Set(args.synthetic, [(a, b, int(label == "target")) for a, b, label in rows])
    dev = {"real dev": Set(out / "real-dev", kaldi_trials(args.data / "eval/trials.txt")),
           "synthetic dev": Set(out / "synthetic-dev", kaldi_trials(args.synthetic_dev / "trials.tsv"))}
    backend = Backend.load(args.models / args.encoder)
    real_cohort = read_store(out / "fit")
    real_cohort = real_cohort.embeddings[real_cohort.valid]
    scorers = {"back-end": Scorer(backend),
               "back-end + s-norm (real cohort)": Scorer(backend, real_cohort, top_k=TOP_K),
               "back-end + s-norm (real + synthetic cohort)": Scorer(backend, np.concatenate([real_cohort, synthetic_fit]),
                                                                     top_k=TOP_K)}
    print(f"{args.encoder}: calibration trials real {len(real.labels)}, synthetic {len(synthetic.labels)} "
          f"({len(clips)} voices); synthetic fit clips {len(synthetic_fit)}\n")
    print("| scoring | calibrated on | measured on | EER | Cllr | minDCF 0.01 | actDCF 0.01 | within | "
          "minDCF 0.05 | actDCF 0.05 | within |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, scorer in scorers.items():
        for pooled in (False, True):
            calibration = "real + synthetic" if pooled else "real"
            for domain, values in cross_validated(scorer, real, synthetic, pooled).items():
                print(row(name, calibration, f"calibration split, {domain} (2-fold)", values))
            parts = [real, synthetic] if pooled else [real]
            for where, trials in dev.items():
                print(row(name, calibration, where, metrics(fitted_llr(scorer, parts, trials), trials.labels)), flush=True)


if __name__ == "__main__":
    main()
