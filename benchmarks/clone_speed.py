"""`spk clone` against plain Kokoro-82M: synthesis speed, cost of choosing the voice, memory.

The reference is Kokoro-82M itself (the packaged int8 ONNX model, one stock voice, the same
espeak-ng phonemes): the cloning pipeline adds the adapter, the resampling and pitch shift of
the chosen voice and, with --refine, the voice search. Each method runs in a fresh subprocess,
speaks the 20 sentences of `spk evaluate clone` one by one (after one untimed warm-up sentence)
and reports: audio seconds, the time to choose the voice (embedding the reference, the adapter,
the search), synthesis seconds, real-time factors (synthesis alone and end to end) and peak RSS.

Run on an otherwise idle machine (about 3 minutes on 2 cores):
    .venv/bin/python benchmarks/clone_speed.py [--reference examples/audio/awb_1.flac] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed_speed import BUSY_LOAD, machine_info, run_json_child  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO / "examples" / "audio" / "awb_1.flac"
METHODS = {"kokoro": "Kokoro-82M, stock voice jf_alpha", "clone": "spk clone", "clone-refine": "spk clone --refine 40"}
REFINE = {"clone": 0, "clone-refine": 40}
REFERENCE_METHOD = "kokoro"


def child_main(method: str, reference: Path) -> None:
    """Choose the voice (clone methods), speak every sentence, print one JSON line."""
    from speakembed.pipelines.clone import CloneConfig, Cloner
    from speakembed.pipelines.evaluate_clone import SENTENCES
    from speakembed.models.engines.kokoro import SAMPLE_RATE, Kokoro, phonemize

    phonemes = [phonemize(sentence) for sentence in SENTENCES]
    if method == REFERENCE_METHOD:
        kokoro = Kokoro.load()
        style = kokoro.voices["jf_alpha"]
        speak, choice_s = (lambda text: kokoro.synthesize(text, style)), 0.0
    else:
        cloner = Cloner.load(CloneConfig(refine=REFINE[method]))
        started = time.perf_counter()
        voice = cloner.choose_voice(cloner.analyse_reference([reference]))
        choice_s = time.perf_counter() - started
        speak = lambda text: cloner.render(voice, text)  # noqa: E731
    speak(phonemize("Warming up."))
    started = time.perf_counter()
    samples = sum(len(speak(text)) for text in phonemes)
    synthesis_s = time.perf_counter() - started
    print(json.dumps({"method": METHODS[method], "sentences": len(phonemes), "audio_s": samples / SAMPLE_RATE,
                      "choice_s": choice_s, "synthesis_s": synthesis_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def print_report(machine: dict, reference: Path, results: list[dict]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200, highlight=False)
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, CPU only")
    console.print(f"date: {machine['date']}   load average (1 min): {machine['load_average_1m']:.2f} before, "
                  f"{os.getloadavg()[0]:.2f} after")
    if machine["load_average_1m"] > BUSY_LOAD:
        console.print(f"WARNING: load average above {BUSY_LOAD}: other work shared the CPU; timings are unreliable")
    console.print(f"text: the 20 sentences of spk evaluate clone; reference voice: {reference}")
    base = next(result for result in results if result["method"] == METHODS[REFERENCE_METHOD])
    table = Table(box=box.MARKDOWN)
    for column in ("method", "sentences", "audio s", "voice choice s", "synthesis s", "RTF synthesis (x ref)",
                   "RTF end to end", "peak RSS MB (x ref)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in results:
        rtf = r["synthesis_s"] / r["audio_s"]
        table.add_row(r["method"], str(r["sentences"]), f"{r['audio_s']:.1f}", f"{r['choice_s']:.1f}", f"{r['synthesis_s']:.1f}",
                      f"{rtf:.3f} ({rtf / (base['synthesis_s'] / base['audio_s']):.2f}x)",
                      f"{(r['choice_s'] + r['synthesis_s']) / r['audio_s']:.3f}",
                      f"{r['peak_rss_mb']:.0f} ({r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x)")
    console.print(table)
    console.print("Notes: RTF = seconds of compute / seconds of audio (below 1 is faster than real time); voice choice = "
                  "embedding the reference + adapter (+ the --refine search, which also loads and runs whisper-head); "
                  "x ref = ratio to plain Kokoro; peak RSS = ru_maxrss of each method's fresh subprocess.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="reference recording to clone")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.reference.is_file():
        raise SystemExit(f"{args.reference}: no such reference recording")
    if args.child:
        child_main(args.child, args.reference)
        return
    machine = machine_info()
    results = [run_json_child([sys.executable, __file__, "--child", method, "--reference", str(args.reference)], label)
               for method, label in METHODS.items()]
    print_report(machine, args.reference, results)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
