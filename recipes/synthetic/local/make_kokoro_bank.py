"""Render the training voices of the clone adapter over all Kokoro voices (the 54 of kokoro-js):

- every stock voice alone, except the five packaged Japanese ones (the Kokoro voices of
  ../shared/data/dev are those and their 50/50 pairs: they stay unseen);
- seeded random mixtures of 2 or 3 stock voices (Dirichlet 1 weights); for half of them the
  prosody half of the style (durations, F0, energy) is mixed from 1 or 2 other voices; half get
  a resampling factor (log-uniform 0.88-1.14: pitch and formants move together).

Each voice speaks two probe sentences into one 24 kHz FLAC, OUT/kokoro<NNNN>/0.flac, with its
recipe in OUT/kokoro_voices.tsv (speaker, one weight column per stock voice, factor, and
`prosody:<voice>` columns), the corpus layout `spk train clone-adapter --data OUT` reads. A voice
whose file exists is not rendered again, so a killed run continues.

    python recipes/synthetic/local/make_kokoro_bank.py OUT [--mixtures 120] [--seed 7] [--voices FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
import soxr

from speakembed.models.engines.kokoro import SAMPLE_RATE, Kokoro, mix_voices, phonemize
from speakembed.pipelines.train_clone_adapter import PROSODY_PREFIX, VOICES_TABLE

PROBES = ["The old farmer carried seven green bottles to the harbour before the storm.",
          "Nobody could remember where the children had hidden the silver key."]
PAUSE_S = 0.25
DEV_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")  # and mixes of them: ../shared/data/dev


def random_voice(rng: np.random.Generator, voices: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(decoder weights (voices,), prosody weights (voices,), resampling factor) of one random mixture."""
    members = rng.choice(voices, rng.choice([2, 3]), replace=False)
    decoder = np.zeros(voices)
    decoder[members] = rng.dirichlet(np.ones(len(members)))
    if rng.random() < 0.5:
        prosody = decoder.copy()
    else:
        others = rng.choice(voices, rng.choice([1, 2]), replace=False)
        prosody = np.zeros(voices)
        prosody[others] = rng.dirichlet(np.ones(len(others)))
    factor = float(np.exp(rng.uniform(np.log(0.88), np.log(1.14)))) if rng.random() < 0.5 else 1.0
    return decoder, prosody, factor


def near_dev_voice(weights: np.ndarray, names: list[str]) -> bool:
    """Whether a decoder mixture is (almost) a dev voice: mostly one packaged Japanese voice, or mostly a pair of them."""
    japanese = np.array([name in DEV_VOICES for name in names])
    return weights[japanese].sum() >= 0.9 and np.sort(weights[japanese])[-2:].sum() >= 0.9


def bank(names: list[str], mixtures: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """The stock voices then `mixtures` random ones (the same for a seed), dev-like ones left out."""
    rng = np.random.default_rng(seed)
    count = len(names)
    voices = [(np.eye(count)[index], np.eye(count)[index], 1.0) for index in range(count)]
    voices += [random_voice(rng, count) for _ in range(mixtures)]
    return [voice for voice in voices if not near_dev_voice(voice[0], names)]


def render(kokoro: Kokoro, names: list[str], decoder: np.ndarray, prosody: np.ndarray, factor: float) -> np.ndarray:
    """The probe sentences in one voice, (samples,) float32 at 24 kHz, tempo kept under resampling."""
    style = mix_voices([kokoro.voices[name] for name in names], decoder, prosody)
    pieces = []
    for sentence in PROBES:
        waveform = kokoro.synthesize(phonemize(sentence), style, speed=1.0 / factor)
        if abs(factor - 1.0) > 1e-4:
            waveform = soxr.resample(waveform, SAMPLE_RATE * factor, SAMPLE_RATE).astype(np.float32)
        pieces += [waveform, np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
    return np.concatenate(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mixtures", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--voices", help="Kokoro voices file (default: the 54 fetched from kokoro-js)")
    args = parser.parse_args()
    kokoro = Kokoro.load(voices_path=args.voices)
    names = sorted(kokoro.voices)
    rows = []
    for index, (decoder, prosody, factor) in enumerate(bank(names, args.mixtures, args.seed)):
        speaker = f"kokoro{index:04d}"
        path = args.out / speaker / "0.flac"
        if not path.is_file():
            waveform = render(kokoro, names, decoder, prosody, factor)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".partial.flac")
            soundfile.write(temporary, waveform / max(1.0, float(np.abs(waveform).max())), SAMPLE_RATE)
            temporary.rename(path)
            print(f"{speaker}: {len(waveform) / SAMPLE_RATE:.1f} s", flush=True)
        rows.append([speaker, *decoder, factor, *prosody])
    columns = ["speaker", *names, "factor", *(PROSODY_PREFIX + name for name in names)]
    pd.DataFrame(rows, columns=columns).to_csv(args.out / VOICES_TABLE, sep="\t", index=False)
    print(f"{len(rows)} voices in {args.out / VOICES_TABLE}")


if __name__ == "__main__":
    main()
