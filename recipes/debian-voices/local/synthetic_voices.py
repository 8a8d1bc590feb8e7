"""Synthetic (TTS) train voices for the shipped back-end and calibration (backend.sh stage 0), as a
`folder` corpus OUT/<voice>/<voice>_NN.flac (16 kHz, peak -3 dBFS), none of them a voice of
../shared/data/dev (flite awb/kal16/rms/slt, festival kal/ked/slt, piper joe, the five Japanese
Kokoro voices and their 50/50 mixes):

- kokoro_<name>: every stock Kokoro-82M voice of kokoro-js except the five Japanese ones (American
  and British English, and the es, fr, hi, it, pt, zh voices speaking English, as the dev's
  Japanese voices do); same engine family as the dev's Kokoro voices, other speakers.
- espeak<NNN>: espeak-ng voices (dialect x variant x pitch), made as recipes/synthetic makes them.

flite, festival and piper are left out: every voice of theirs that installs here is a dev voice
(flite's `kal` is the same diphone speaker as the dev's kal16). Sentences come from
recipes/synthetic's grammar; every choice is seeded; a finished voice is not made again.

    python recipes/debian-voices/local/synthetic_voices.py OUT [--espeak 48] [--utterances 8] [--kokoro N]
        [--kokoro-utterances 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "synthetic" / "local"))
from make_corpus import espeak_speakers, finish, sentence, write_speaker  # noqa: E402  (recipes/synthetic's helpers)

DEV_KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")  # ../shared/data/dev's
STOCK_VOICES = 54  # kokoro-js 1.2.1 (models/engines/kokoro_voices.py)


def kokoro_speakers(root: Path, count: int | None, utterances: int, rng: np.random.Generator) -> None:
    """One speaker per stock Kokoro voice outside DEV_KOKORO_VOICES (`count` of them spread evenly
    over the sorted names; None: all 49), reading English sentences."""
    from speakembed.models.engines.kokoro import SAMPLE_RATE, Kokoro, phonemize

    model = Kokoro.load()
    if len(model.voices) < STOCK_VOICES:
        sys.exit(f"only {len(model.voices)} Kokoro voices are installed ({model.voices_source}); the back-end's "
                 "synthetic voices need the 54 of kokoro-js: python -m speakembed.models.engines.kokoro_voices fetch")
    names = sorted(set(model.voices) - set(DEV_KOKORO_VOICES))
    if count is not None and count < len(names):
        names = [names[index] for index in np.linspace(0, len(names) - 1, count).round().astype(int)]
    for name in names:
        seeds = rng.integers(1 << 30, size=utterances)  # drawn for finished voices too: a resumed run is identical
        if (root / f"kokoro_{name}").is_dir():
            continue
        language = "en-gb" if name.startswith("b") else "en-us"
        clips = []
        for seed in seeds:
            local = np.random.default_rng(int(seed))
            waveform = model.synthesize(phonemize(sentence(local), language), model.voices[name],
                                        speed=float(local.uniform(0.9, 1.1)))
            clips.append(finish(waveform, SAMPLE_RATE))
        write_speaker(root, f"kokoro_{name}", clips)
        print(f"kokoro_{name}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--espeak", type=int, default=48, help="number of espeak-ng voices")
    parser.add_argument("--utterances", type=int, default=8, help="utterances per espeak-ng voice")
    parser.add_argument("--kokoro", type=int, default=None, help="number of stock Kokoro voices (default: all 49)")
    parser.add_argument("--kokoro-utterances", type=int, default=8, help="utterances per Kokoro voice")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    espeak_speakers(args.out, args.espeak, args.utterances, np.random.default_rng([args.seed, 2]))
    kokoro_speakers(args.out, args.kokoro, args.kokoro_utterances, np.random.default_rng([args.seed, 4]))


if __name__ == "__main__":
    main()
