"""Make a multi-speaker training corpus from what ships offline, as a `folder` corpus
(speaker/utterance.flac, 16 kHz, peak -3 dBFS):

- kokoro:   new Kokoro-82M voices, random Dirichlet mixtures of the 5 packaged style tables
            (mixtures close to one stock voice or to a 50/50 pair of two are rejected: those are the
            evaluation voices of ../shared/data/dev); half of them also get a speaker-level
            resampling factor (pitch and formants move together: a pseudo-speaker).
- espeak:   espeak-ng English dialects x voice variants x pitch (formant synthesis; weak speakers,
            there for variety).
- klettres: real recorded voices of klettres-data (letters and syllables, one voice per language),
            clips joined into utterances, plus two resampled pseudo-speakers of each.

Sentences come from a small grammar, so no text corpus is needed. Each speaker is written to a
temporary folder and renamed when complete: re-running continues where a killed run stopped.

    python recipes/synthetic/local/make_corpus.py OUT [--kokoro 60] [--espeak 48] [--utterances 8]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
import soxr

RATE = 16000
PEAK = 10 ** (-3 / 20)
KLETTRES = Path("/usr/share/klettres")
ESPEAK_DIALECTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")

SUBJECTS = ["the old farmer", "my younger sister", "a tired engineer", "the small committee", "our neighbour",
            "the quiet student", "a local baker", "the new manager", "his best friend", "the ship's captain",
            "every visitor", "the museum guide", "a curious child", "the night nurse", "their lawyer"]
VERBS = ["painted", "carried", "repaired", "ordered", "described", "borrowed", "noticed", "cleaned",
         "forgot", "delivered", "measured", "protected", "explained", "sold", "discovered"]
OBJECTS = ["a wooden chair", "the broken window", "seven green bottles", "the winter coat", "a long letter",
           "the heavy suitcase", "two silver keys", "the garden fence", "a map of the valley", "the red bicycle",
           "an empty basket", "the kitchen clock", "a box of old photographs", "the blue umbrella"]
PLACES = ["near the station", "behind the library", "on the northern hill", "at the harbour",
          "in the crowded market", "beside the river", "under the bridge", "outside the school"]
TIMES = ["yesterday morning", "late on Friday", "before the storm", "after lunch", "last summer",
         "early in the evening", "during the holidays", "on a rainy Tuesday"]
EXTRAS = ["because it was cheaper", "without saying a word", "and then went home", "while the radio played",
          "although nobody asked", "as quickly as possible", "for the second time", "with great care"]


def sentence(rng: np.random.Generator) -> str:
    """A random sentence of 8-20 words from the grammar above."""
    parts = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if rng.random() < 0.7:
        parts.append(rng.choice(PLACES))
    parts.append(rng.choice(TIMES) if rng.random() < 0.6 else rng.choice(EXTRAS))
    text = " ".join(parts)
    return text[0].upper() + text[1:] + rng.choice([".", ".", "!", "?"])


def finish(waveform: np.ndarray, rate: int, factor: float = 1.0) -> np.ndarray:
    """16 kHz, peak -3 dBFS; `factor` != 1 plays the audio faster (pitch and formants up)."""
    audio = soxr.resample(waveform.astype(np.float32), rate * factor, RATE)
    return (audio * PEAK / max(float(np.abs(audio).max()), 1e-6)).astype(np.float32)


def write_speaker(root: Path, name: str, utterances) -> None:
    """Write one speaker's utterances atomically (folder renamed when complete)."""
    final = root / name
    if final.is_dir():
        return
    partial = root / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for index, audio in enumerate(utterances):
        soundfile.write(partial / f"{name}_{index:02d}.flac", audio, RATE)
    partial.rename(final)


def kokoro_weights(rng: np.random.Generator, voices: int) -> np.ndarray:
    """Dirichlet weights that stay away from a stock voice and from a 50/50 mix of two voices."""
    while True:
        weights = rng.dirichlet(np.full(voices, 0.5))
        top = np.sort(weights)[::-1]
        near_stock = top[0] > 0.7
        near_pair = top[0] + top[1] > 0.85 and top[0] - top[1] < 0.3
        if not (near_stock or near_pair):
            return weights


def kokoro_speakers(root: Path, count: int, utterances: int, rng: np.random.Generator) -> None:
    """Synthesise the Kokoro voices and write their recipe (mixture weights and resampling factor)
    to kokoro_voices.tsv: the training targets of the clone adapter (`spk train clone-adapter`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from speakembed.models.engines.kokoro import Kokoro, mix_voices, phonemize

    model = Kokoro.load()
    names = sorted(model.voices)
    rows = []
    for index in range(count):  # every draw happens even for finished speakers: a resumed run is identical
        speaker = f"kokoro{index:03d}"
        weights = kokoro_weights(rng, len(names))
        factor = 1.0 if index % 2 == 0 else float(rng.uniform(0.88, 1.12))
        seeds = rng.integers(1 << 30, size=utterances)
        rows.append([speaker, *np.round(weights, 6), round(factor, 6)])
        if (root / speaker).is_dir():
            continue
        style = mix_voices([model.voices[name] for name in names], weights)
        clips = []
        for seed in seeds:
            local = np.random.default_rng(int(seed))
            waveform = model.synthesize(phonemize(sentence(local)), style, speed=float(local.uniform(0.9, 1.1)))
            clips.append(finish(waveform, 24000, factor))
        write_speaker(root, speaker, clips)
        print(f"{speaker} weights={np.round(weights, 2).tolist()} factor={factor:.3f}", flush=True)
    header = ["speaker", *names, "factor"]
    table = "\n".join("\t".join(map(str, row)) for row in [header, *rows])
    (root / "kokoro_voices.tsv").write_text(table + "\n")


def espeak_speakers(root: Path, count: int, utterances: int, rng: np.random.Generator) -> None:
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout.splitlines()[1:]
    variants = sorted(line.split()[4].removeprefix("!v/") for line in listing if line.split())
    for index in range(count):
        dialect, variant = rng.choice(ESPEAK_DIALECTS), rng.choice(variants)
        pitch, rate = int(rng.integers(20, 80)), int(rng.integers(140, 190))
        texts = [sentence(rng) for _ in range(utterances)]
        if (root / f"espeak{index:03d}").is_dir():
            continue
        clips = []
        for text in texts:
            wav = subprocess.run(["espeak-ng", "-v", f"{dialect}+{variant}", "-p", str(pitch), "-s", str(rate),
                                  "--stdout", text], capture_output=True, check=True).stdout
            waveform, rate_in = soundfile.read(io.BytesIO(wav), dtype="float32")
            clips.append(finish(waveform, rate_in))
        write_speaker(root, f"espeak{index:03d}", clips)


def klettres_speakers(root: Path, utterances: int, rng: np.random.Generator) -> None:
    if not KLETTRES.is_dir():
        print("klettres-data is not installed (apt-get install klettres-data): skipping its voices", flush=True)
        return
    for language in sorted(path.name for path in KLETTRES.iterdir() if path.is_dir()):
        clips = [soundfile.read(path, dtype="float32") for path in sorted((KLETTRES / language).rglob("*.ogg"))]
        clips = [(audio.mean(axis=1) if audio.ndim == 2 else audio, rate) for audio, rate in clips]
        if len(clips) < 10:
            continue
        for factor, suffix in ((1.0, ""), (0.9, "_slow"), (1.12, "_fast")):
            choices = [rng.choice(len(clips), size=min(len(clips), int(rng.integers(5, 9))), replace=False)
                       for _ in range(utterances)]
            if (root / f"klettres_{language}{suffix}").is_dir():
                continue
            gap = np.zeros(int(0.12 * RATE), np.float32)
            joined = [np.concatenate([np.concatenate([finish(*clips[pick], factor), gap]) for pick in picks]) for picks in choices]
            write_speaker(root, f"klettres_{language}{suffix}", joined)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--kokoro", type=int, default=60, help="number of Kokoro mixture voices")
    parser.add_argument("--espeak", type=int, default=48, help="number of espeak-ng voices")
    parser.add_argument("--utterances", type=int, default=8, help="utterances per speaker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    klettres_speakers(args.out, args.utterances, np.random.default_rng([args.seed, 1]))
    espeak_speakers(args.out, args.espeak, args.utterances, np.random.default_rng([args.seed, 2]))
    kokoro_speakers(args.out, args.kokoro, args.utterances, np.random.default_rng([args.seed, 3]))


if __name__ == "__main__":
    main()
