#!/usr/bin/env python3
"""The real dev trials through other channels: every clip of EVAL/audio re-recorded in a room
(reverberation, RT60 0.3-0.9 s, + pink noise at 15-25 dB SNR) and over a telephone line (8 kHz,
300-3400 Hz, mu-law), written as flac at 16 kHz under OUT/<variant>/audio at the same relative
paths (suffix .flac), with OUT/<variant>/trials.txt naming them so. Seeded per clip (its path), so re-runs agree.

    channel_trials.py EVAL OUT [--variants reverb telephone]

Enrol and test clips pass through independent channels (each clip its own room or line), as two
calls or two rooms would; this measures what waveform augmentation in training is for.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import soundfile

from speakembed.models.augment import add_noise, reverberate, synthetic_noise, synthetic_rir, telephone_band
from speakembed.pipelines.audio.decode import load_audio
from speakembed.pipelines.data.items import audio_files_under

RATE = 16000
VARIANTS = ("reverb", "telephone")


def through_room(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random room's reverberation, then pink noise at 15-25 dB SNR."""
    wet = reverberate(waveform, synthetic_rir(rng.uniform(0.3, 0.9), rng, RATE))
    return add_noise(wet, synthetic_noise("pink", len(wet), rng, RATE), rng.uniform(15.0, 25.0))


def through_line(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A telephone line: models.augment.telephone_band (8 kHz, 300-3400 Hz, mu-law or coarser)."""
    return telephone_band(waveform, rng, RATE)


CHANNELS = {"reverb": through_room, "telephone": through_line}


def clip_rng(variant: str, relative: str) -> np.random.Generator:
    """A generator seeded by the variant and the clip's path (stable across runs and machines)."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{variant}/{relative}".encode()).digest()[:8], "little"))


def renamed(trial: str) -> str:
    """A trial line `enrol test label` naming the .flac copies."""
    enrol, test, label = trial.split()
    return f"{Path(enrol).with_suffix('.flac').as_posix()} {Path(test).with_suffix('.flac').as_posix()} {label}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    clips = audio_files_under(args.eval / "audio")
    for variant in args.variants:
        folder = args.out / variant
        for clip in clips:
            relative = clip.relative_to(args.eval / "audio")
            target = (folder / "audio" / relative).with_suffix(".flac")
            target.parent.mkdir(parents=True, exist_ok=True)
            waveform = CHANNELS[variant](load_audio(clip, RATE), clip_rng(variant, relative.as_posix()))
            soundfile.write(target, np.clip(waveform, -1.0, 1.0), RATE)
        (folder / "trials.txt").write_text("".join(renamed(line) for line in (args.eval / "trials.txt").open()))
        print(f"{folder}: {len(clips)} clips through the {variant} channel")


if __name__ == "__main__":
    main()
