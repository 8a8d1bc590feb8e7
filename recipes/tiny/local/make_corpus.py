"""Make the tiny recipe's synthetic corpus: source-filter "speakers" (recipes/common/synth.py) with random
pitch and vocal-tract size, laid out as a `folder` corpus (speaker/utterance.wav), plus a disjoint
set of evaluation speakers and a Kaldi trial list over them.

    python recipes/tiny/local/make_corpus.py OUT [--train-speakers 24] [--eval-speakers 8]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "common"))  # recipes/common: the project's voice synthesiser
import synth  # noqa: E402

RATE = 16000


def random_speaker(rng: np.random.Generator) -> tuple[float, tuple[float, float, float]]:
    """Pitch 90-320 Hz and a vocal tract scaled 0.8-1.35 against a male neutral (500/1500/2500 Hz)."""
    scale = rng.uniform(0.8, 1.35)
    return float(rng.uniform(90, 320)), tuple(float(f * scale * rng.uniform(0.93, 1.07)) for f in (500, 1500, 2500))


def write_speakers(root: Path, names: list[str], utterances: int, rng: np.random.Generator) -> None:
    for name in names:
        f0, formants = random_speaker(rng)
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(utterances):
            waveform = synth.voice(f0, formants, float(rng.uniform(2.0, 3.5)), RATE, seed=int(rng.integers(1 << 30)))
            soundfile.write(root / name / f"{name}_{index}.wav", waveform, RATE, subtype="PCM_16")


def write_trials(root: Path, names: list[str], utterances: int, path: Path) -> None:
    files = [f"{name}/{name}_{index}.wav" for name in names for index in range(utterances)]
    lines = [f"{a} {b} {'target' if a.split('/')[0] == b.split('/')[0] else 'nontarget'}"
             for a, b in itertools.combinations(files, 2)]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-speakers", type=int, default=24)
    parser.add_argument("--eval-speakers", type=int, default=8)
    parser.add_argument("--utterances", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    train = [f"train{index:03d}" for index in range(args.train_speakers)]
    evaluation = [f"eval{index:03d}" for index in range(args.eval_speakers)]
    write_speakers(args.out / "train", train, args.utterances, rng)
    write_speakers(args.out / "eval", evaluation, args.utterances, rng)
    write_trials(args.out / "eval", evaluation, args.utterances, args.out / "trials.txt")


if __name__ == "__main__":
    main()
