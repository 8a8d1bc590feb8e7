"""Generate the bundled example recordings in examples/audio/ with the flite text-to-speech engine.

Three synthetic speakers (flite voices), two clips each, 3-5 s, 16 kHz mono 16-bit FLAC, peak at
-3 dBFS with long leading/trailing silence trimmed. Also writes examples/audio/README.md (how each
clip was made) and examples/trials.txt (Kaldi-style `enroll test target|nontarget` lines).

Run from anywhere:  .venv/bin/python scripts/make_examples.py
Needs: flite (Debian: apt-get install --no-install-recommends flite), numpy, soundfile, soxr.
The output is deterministic for a given flite build, so re-running it only rewrites the same files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

REPO_ROOT = Path(__file__).resolve().parent.parent
AUDIO_DIR = REPO_ROOT / "examples" / "audio"
TRIALS_PATH = REPO_ROOT / "examples" / "trials.txt"

SAMPLE_RATE = 16000  # Hz, the encoders' input rate
PEAK_DBFS = -3.0
MIN_DURATION_S, MAX_DURATION_S = 3.0, 5.0
TARGET_DURATION_S = 4.0  # aimed at when a clip falls outside the range and is re-synthesised
TRIM_THRESHOLD_DB = -40.0  # frames this far below the loudest frame count as silence
TRIM_PAD_S = 0.15  # silence kept at each end so onsets/decays are not cut
FRAME_S = 0.010
MAX_FOLDER_BYTES = 600 * 1024

INSTALL_HINT = (
    "the flite text-to-speech engine is not installed; on Debian/Ubuntu run\n"
    "  apt-get update && apt-get install -y --no-install-recommends flite\n"
    "(voices slt, awb and kal16 ship with the flite package)"
)


@dataclass(frozen=True)
class Speaker:
    voice: str  # flite voice name, also the file-name prefix
    description: str
    texts: tuple[str, str]  # one sentence per clip; every clip has its own sentence


SPEAKERS = (
    Speaker(
        "slt",
        "US English female (CMU ARCTIC slt, clustergen)",
        (
            "The museum opens at nine, but the coffee shop next door starts serving at seven.",
            "Please remember to water the tomato plants before you leave for the weekend.",
        ),
    ),
    Speaker(
        "awb",
        "Scottish English male (CMU ARCTIC awb, clustergen)",
        (
            "A cold wind blew across the harbour as the fishing boats returned at dusk.",
            "Our train was delayed by twenty minutes because of a signal fault near the station.",
        ),
    ),
    Speaker(
        "kal16",
        "US English male (kal, diphone synthesis, 16 kHz)",
        (
            "Every morning she reads the newspaper while her brother walks the dog.",
            "The library will close early on Friday for the annual staff meeting.",
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=AUDIO_DIR, help="folder for the clips (default: examples/audio)")
    args = parser.parse_args(argv)

    if shutil.which("flite") is None:
        print(f"make_examples: {INSTALL_HINT}", file=sys.stderr)
        return 2
    missing = [s.voice for s in SPEAKERS if s.voice not in _flite_voices()]
    if missing:
        print(f"make_examples: flite lacks the voice(s) {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for speaker in SPEAKERS:
        for number, text in enumerate(speaker.texts, start=1):
            path = args.out / f"{speaker.voice}_{number}.flac"
            waveform, stretch = synthesise_clip(speaker.voice, text)
            soundfile.write(str(path), waveform, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            duration_s = len(waveform) / SAMPLE_RATE
            rows.append((path.name, speaker, text, duration_s, stretch))
            print(f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}: {duration_s:.2f} s")

    (args.out / "README.md").write_text(_readme(rows), encoding="utf-8")
    if args.out == AUDIO_DIR:
        TRIALS_PATH.write_text(_trials(), encoding="utf-8")
        print(f"{TRIALS_PATH.relative_to(REPO_ROOT)}: {len(_trial_rows())} trials")

    size = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"{args.out}: {size / 1024:.0f} KiB in all")
    if size > MAX_FOLDER_BYTES:
        print(f"make_examples: the folder exceeds {MAX_FOLDER_BYTES // 1024} KiB; shorten the texts", file=sys.stderr)
        return 1
    return 0


def synthesise_clip(voice: str, text: str) -> tuple[np.ndarray, float]:
    """Speak `text` with flite `voice`; return 16 kHz float32 audio (trimmed, peak -3 dBFS) and the stretch used.

    A clip outside 3-5 s is synthesised once more with flite's duration_stretch (speaking rate)
    scaled towards 4 s, so that a different flite build with other timing still meets the range.
    """
    stretch = 1.0
    waveform = _prepare(_run_flite(voice, text, stretch))
    duration_s = len(waveform) / SAMPLE_RATE
    if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        stretch = round(TARGET_DURATION_S / duration_s, 3)
        waveform = _prepare(_run_flite(voice, text, stretch))
        duration_s = len(waveform) / SAMPLE_RATE
    if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        raise SystemExit(f"make_examples: {voice} '{text}' lasts {duration_s:.2f} s even at stretch {stretch}")
    return waveform, stretch


def _run_flite(voice: str, text: str, stretch: float) -> np.ndarray:
    """Run flite into a temporary WAV and return its samples as mono float32 at 16 kHz."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "clip.wav"
        command = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", str(wav)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wav.exists():
            raise SystemExit(f"make_examples: flite failed for voice {voice}: {result.stderr.strip()}")
        samples, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1, dtype=np.float32)
    # kal (not kal16) and some third-party voices speak at 8 kHz; resample rather than refuse them.
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return mono


def _prepare(waveform: np.ndarray) -> np.ndarray:
    """Trim leading/trailing silence, then scale the peak to -3 dBFS (headroom for lossy re-encodes)."""
    waveform = _trim_silence(waveform)
    peak = float(np.max(np.abs(waveform)))
    return (waveform * (10 ** (PEAK_DBFS / 20) / peak)).astype(np.float32)


def _trim_silence(waveform: np.ndarray) -> np.ndarray:
    """Cut the ends where 10 ms frames stay 40 dB below the loudest frame, keeping 0.15 s of padding."""
    frame = int(FRAME_S * SAMPLE_RATE)
    count = len(waveform) // frame
    energy = np.square(waveform[: count * frame].reshape(count, frame), dtype=np.float64).mean(axis=1)
    level_db = 10 * np.log10(energy + 1e-12)
    voiced = np.flatnonzero(level_db > level_db.max() + TRIM_THRESHOLD_DB)
    pad = int(TRIM_PAD_S * SAMPLE_RATE)
    start = max(0, voiced[0] * frame - pad)
    end = min(len(waveform), (voiced[-1] + 1) * frame + pad)
    return waveform[start:end]


def _flite_voices() -> set[str]:
    result = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
    listing = result.stdout.split(":", 1)[-1]  # "Voices available: kal awb_time kal16 awb rms slt"
    return set(listing.split())


def _flite_version() -> str:
    """The build that made the clips, e.g. "flite-2.2-current Sep 2018" (from the --version banner)."""
    banner = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
    for line in banner.splitlines():
        if "version:" in line:
            return line.split("version:", 1)[1].split("(")[0].strip()
    return "flite"


def _trial_rows() -> list[tuple[str, str, str]]:
    """All same-speaker pairs (target) and, for each ordered pair of speakers, clip 1 vs clip 2 (nontarget)."""
    rows = [(f"{s.voice}_1.flac", f"{s.voice}_2.flac", "target") for s in SPEAKERS]
    rows += [
        (f"{a.voice}_1.flac", f"{b.voice}_2.flac", "nontarget") for a in SPEAKERS for b in SPEAKERS if a is not b
    ]
    return rows


def _trials() -> str:
    return "".join(f"{enroll} {test} {label}\n" for enroll, test, label in _trial_rows())


def _readme(rows: list[tuple[str, Speaker, str, float, float]]) -> str:
    version = _flite_version()
    lines = [
        "# Example recordings",
        "",
        "These clips are **synthetic**: they were generated by `scripts/make_examples.py` with the",
        f"[flite](http://cmuflite.org) text-to-speech engine ({version}, Debian package `flite`).",
        "No real person was recorded. Re-create them with:",
        "",
        "    .venv/bin/python scripts/make_examples.py",
        "",
        f"Processing: flite output, resampled to {SAMPLE_RATE} Hz mono if needed, leading/trailing silence",
        f"trimmed (frames {-TRIM_THRESHOLD_DB:.0f} dB below the loudest, {TRIM_PAD_S:.2f} s kept), peak normalised to",
        f"{PEAK_DBFS:.0f} dBFS, saved as 16-bit FLAC. Each voice is one \"speaker\"; `examples/trials.txt` lists",
        "verification trials over these files (Kaldi style: `enroll test target|nontarget`).",
        "",
        "| file | engine | voice | text | duration (s) |",
        "|---|---|---|---|---|",
    ]
    for name, speaker, text, duration_s, stretch in rows:
        voice = f"`{speaker.voice}` ({speaker.description})"
        if stretch != 1.0:
            voice += f", duration_stretch={stretch}"
        lines.append(f"| `{name}` | flite | {voice} | {text} | {duration_s:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
