"""Embedding speed, memory and accuracy: SpeakEmbed's `spk embed` pipeline against Resemblyzer.

Both tools embed the same audio files, each in its own fresh subprocess so that the peak RSS
(`ru_maxrss`) is that method's alone. Per method the table gives: files embedded, seconds of
audio, model load time, wall time of the embedding work, real-time factor (wall / audio s),
speed-up and memory relative to Resemblyzer, and the verification EER on a trial list (so speed
is never bought with accuracy).

What is timed is each tool's full path from file on disk to embedding, after model loading:
- resemblyzer: `preprocess_wav(path)` (librosa decode, resample, volume normalisation, webrtcvad
  silence trimming) then `VoiceEncoder.embed_utterance`, file by file.
- spk (vad=silero|energy|none): `speakembed.pipelines.embed.run` on the audio folder (decode,
  resample, loudness normalisation, VAD, batched encoder, zarr store written to a temp dir).
  `run` loads the encoder itself, so the reported embedding time is `run` time minus the time of
  a separate warm `load_encoder("lstm", "cpu")` call in the same process.
Each child first embeds the shortest file once (untimed) so lazy initialisation (numba in
librosa, torch's first call, the silero model) is not counted. The parent reads every file once
beforehand so that all methods find the audio in the page cache.

Run (about 2-3 minutes on 2 cores for the dev corpus):
    .venv/bin/python benchmarks/embed_speed.py [--audio DIR] [--trials FILE] [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_AUDIO = REPO.parent / "shared" / "data" / "dev" / "audio"
DEFAULT_TRIALS = REPO.parent / "shared" / "data" / "dev" / "trials.tsv"
REFERENCE = "resemblyzer"
BUSY_LOAD = 1.5  # 1-min load average above which other work is competing for the cores
METHODS = {  # child key -> table label
    "resemblyzer": "resemblyzer",
    "silero": "spk (vad=silero)",
    "energy": "spk (vad=energy)",
    "none": "spk (vad=none)",
    "conv-transformer": "spk --encoder conv-transformer (vad=silero)",
}
SPK_SETTINGS = {  # child key -> (encoder, vad) of the spk methods
    "silero": ("lstm", "silero"), "energy": ("lstm", "energy"), "none": ("lstm", "none"),
    "conv-transformer": ("conv-transformer", "silero"),
}


# ---------------------------------------------------------------- shared by parent and children


def list_audio(audio_dir: Path) -> list[Path]:
    """The audio files of `audio_dir`, found as `spk embed` finds them (recursive, sorted)."""
    from speakembed.pipelines.audio.decode import is_audio_file

    return sorted(path for path in audio_dir.rglob("*") if path.is_file() and is_audio_file(path))


def timed(function, *args, **kwargs):
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


# ---------------------------------------------------------------- children: one method each


def trial_eer(embeddings: dict, trials: Path | None) -> tuple[float | None, int]:
    """(EER in %, trials scored) with cosine scores; trials naming an unembedded id are skipped."""
    if trials is None:
        return None, 0
    import numpy as np

    from speakembed.pipelines.scoring.metrics import equal_error_rate

    scores, labels = [], []
    with open(trials, newline="") as handle:
        for enroll, test, label in csv.reader(handle, delimiter="\t"):
            if label.isdigit() and enroll in embeddings and test in embeddings:
                scores.append(float(np.dot(embeddings[enroll], embeddings[test])))  # unit-length embeddings
                labels.append(int(label))
    if not scores:
        return None, 0
    return 100 * equal_error_rate(np.array(scores), np.array(labels)).eer, len(scores)


def by_stem(item_ids, rows) -> dict:
    """Embeddings keyed by utterance id (the file stem); refuses ambiguous stems."""
    keyed = {Path(item_id).stem: row for item_id, row in zip(item_ids, rows)}
    if len(keyed) != len(item_ids):
        raise SystemExit("two audio files share a file stem; utterance ids would be ambiguous")
    return keyed


def embed_resemblyzer(audio_dir: Path, warmup: Path, repeat: int) -> dict:
    from resemblyzer import VoiceEncoder, preprocess_wav

    load_s, encoder = timed(VoiceEncoder, "cpu", verbose=False)

    def embed(path: Path):
        wav = preprocess_wav(path)
        return len(wav) / 16000, encoder.embed_utterance(wav)

    embed(warmup)
    files = list_audio(audio_dir)
    wall_s, speech_s, embedded = 0.0, 0.0, {}
    for _ in range(repeat):
        started = time.perf_counter()
        results = {}
        for path in files:
            try:
                results[path] = embed(path)
            except Exception:  # a file resemblyzer cannot embed (e.g. all silence) counts as a failure
                continue
        wall_s += time.perf_counter() - started
        speech_s += sum(seconds for seconds, _ in results.values())
        embedded = by_stem([path.name for path in results], [embedding for _, embedding in results.values()])
    return {"load_s": load_s, "wall_s": wall_s, "speech_s": speech_s, "items": len(files) * repeat,
            "embedded": len(embedded) * repeat, "embeddings": embedded}


def embed_spk(audio_dir: Path, warmup: Path, repeat: int, encoder: str, vad: str, keep: Path | None = None) -> dict:
    """`spk embed`'s pipeline timed on `audio_dir`; `keep`: a folder where the stores are left
    (the result then names the last one as "store"), else a temporary one."""
    import torch  # noqa: F401  (imported before timing: load_encoder would otherwise import it)

    from speakembed.models.registry import load_encoder
    from speakembed.pipelines.embed import EmbedConfig, run
    from speakembed.pipelines.data.stores import read_store

    config = EmbedConfig(encoder=encoder, vad=vad, device="cpu")
    load_s, _ = timed(load_encoder, encoder, "cpu")
    wall_s, speech_s, items, embedded_count = 0.0, 0.0, 0, 0
    with tempfile.TemporaryDirectory(prefix="embed_speed-") as temporary:
        scratch = keep or temporary
        run([warmup], Path(scratch) / "warmup", config=config)
        warm_load_s, _ = timed(load_encoder, encoder, "cpu")  # what `run` spends loading, cache warm
        for index in range(repeat):  # a fresh folder each time, else `run` finds the store up to date
            run_s, report = timed(run, [audio_dir], Path(scratch) / f"run{index}", config=config)
            wall_s += run_s - warm_load_s
            speech_s += report.speech_s
            items += report.num_items
            embedded_count += report.num_embedded
        store = read_store(report.store_path)
    valid = [row for row in range(len(store.item_ids)) if store.valid[row]]
    embedded = by_stem([store.item_ids[row] for row in valid], store.embeddings[valid])
    return {"load_s": load_s, "warm_load_s": warm_load_s, "wall_s": wall_s, "speech_s": speech_s,
            "items": items, "embedded": embedded_count, "embeddings": embedded, "store": str(report.store_path)}


def child_main(method: str, audio_dir: Path, warmup: Path, repeat: int, trials: Path | None) -> None:
    """Measure one method and print its result as one JSON line."""
    if method == REFERENCE:
        result = embed_resemblyzer(audio_dir, warmup, repeat)
    else:
        result = embed_spk(audio_dir, warmup, repeat, *SPK_SETTINGS[method])
    import torch

    result["eer_pct"], result["trials_scored"] = trial_eer(result.pop("embeddings"), trials)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result["torch_threads"] = torch.get_num_threads()
    print(json.dumps({"method": METHODS[method], **result}))


# ---------------------------------------------------------------- parent: run children, report


def run_child(method: str, args, warmup: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--audio", str(args.audio),
               "--warmup", str(warmup), "--repeat", str(args.repeat)]
    if args.trials:
        command += ["--trials", str(args.trials)]
    return run_json_child(command, METHODS[method])


def run_json_child(command: list[str], label: str) -> dict:
    """Run one benchmark child in a fresh process; its result is the last JSON line it prints."""
    print(f"running {label} ...", file=sys.stderr, flush=True)
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if finished.returncode != 0 or not lines:
        sys.stderr.write(finished.stderr[-3000:])
        raise SystemExit(f"{label}: the benchmark child failed (exit status {finished.returncode})")
    return json.loads(lines[-1])


def add_ratios(results: list[dict], audio_s: float) -> None:
    """Real-time factor and ratios to the reference method, in place."""
    reference = next(result for result in results if result["method"] == REFERENCE)
    for result in results:
        result["audio_s"] = audio_s
        result["rtf"] = result["wall_s"] / audio_s
        result["speedup"] = reference["wall_s"] / result["wall_s"]
        result["load_ratio"] = result["load_s"] / reference["load_s"]
        result["rss_ratio"] = result["peak_rss_mb"] / reference["peak_rss_mb"]


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_average_1m": os.getloadavg()[0]}


def print_report(machine: dict, data: dict, results: list[dict]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200, highlight=False)
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch threads "
                  f"{results[0]['torch_threads']}, Python {machine['python']}, no GPU used (device=cpu)")
    loads = f"{machine['load_average_1m']:.2f} before, {os.getloadavg()[0]:.2f} after"
    console.print(f"date: {machine['date']}   load average (1 min): {loads}")
    if machine["load_average_1m"] > BUSY_LOAD:  # "after" includes this benchmark's own load
        console.print(f"WARNING: load average above {BUSY_LOAD}: other work shared the CPU; timings are unreliable")
    console.print(f"data: {data['audio']} ({data['files']} files, {data['audio_s']:.1f} s of audio) x {data['repeat']} "
                  f"pass(es); trials: {data['trials'] or 'none'}")
    table = Table(box=box.MARKDOWN)
    for column in ("method", "files", "audio s", "speech s", "load s (x ref)", "wall s", "RTF",
                   "speed-up", "peak RSS MB (x ref)", "EER %"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in results:
        eer = f"{r['eer_pct']:.2f}" if r["eer_pct"] is not None else "-"
        table.add_row(r["method"], f"{r['embedded']}/{r['items']}", f"{r['audio_s']:.1f}", f"{r['speech_s']:.1f}",
                      f"{r['load_s']:.2f} ({r['load_ratio']:.2f}x)", f"{r['wall_s']:.2f}", f"{r['rtf']:.4f}",
                      f"{r['speedup']:.2f}x", f"{r['peak_rss_mb']:.0f} ({r['rss_ratio']:.2f}x)", eer)
    console.print(table)
    trials_note = (f"EER over {results[0]['trials_scored']} trials, cosine scores; " if data["trials"] else "")
    console.print(
        "Notes: wall s = embedding work after model loading, including decode, resample, normalisation and VAD; "
        "RTF = wall s / audio s; speed-up = resemblyzer wall s / wall s; x ref = ratio to resemblyzer.\n"
        "spk wall s = embed.run time minus a separate warm load_encoder('lstm', 'cpu') time "
        f"({results[-1].get('warm_load_s', 0):.2f} s), as run loads the encoder itself; it includes writing the zarr store. "
        "load s = first model load in a fresh process (imports excluded).\n"
        "Each method ran in a fresh subprocess after embedding the shortest file once (untimed warm-up: numba, torch, "
        "silero model); peak RSS = ru_maxrss of that subprocess (imports, model, warm-up included). "
        f"{trials_note}speech s = audio left after each tool's VAD."
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="folder of audio files (searched recursively)")
    parser.add_argument("--trials", default=str(DEFAULT_TRIALS),
                        help="TSV 'enroll test label' over file stems; '' for none")
    parser.add_argument("--repeat", type=int, default=1, help="times the file set is embedded (lengthens the run)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.trials = Path(args.trials) if args.trials else None
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def check_inputs(args) -> None:
    """Exit with one line when the audio or the trials are missing."""
    hint = " (the default dev corpus is missing; give --audio DIR)" if args.audio == DEFAULT_AUDIO else ""
    if not args.audio.is_dir():
        raise SystemExit(f"{args.audio}: no such audio folder{hint}")
    if args.trials and not args.trials.is_file():
        if args.trials != DEFAULT_TRIALS:
            raise SystemExit(f"{args.trials}: no such trial list (give --trials '' to skip the EER)")
        print(f"{args.trials}: no trial list; EER not reported", file=sys.stderr)
        args.trials = None


def prepare_run(args) -> tuple[dict, dict, Path]:
    """Check the inputs, read every audio file once (the page cache is then warm for every method
    alike); returns (machine, data description, the shortest file for the warm-up)."""
    check_inputs(args)
    import soundfile

    files = list_audio(args.audio)
    if not files:
        raise SystemExit(f"{args.audio}: no audio files found")
    durations = {path: soundfile.info(str(path)).duration for path in files}
    for path in files:
        path.read_bytes()
    data = {"audio": str(args.audio), "files": len(files), "audio_s": sum(durations.values()), "repeat": args.repeat,
            "trials": str(args.trials) if args.trials else None}
    return machine_info(), data, min(files, key=durations.get)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.audio, args.warmup, args.repeat, args.trials)
        return
    machine, data, warmup = prepare_run(args)
    from speakembed.models.registry import ENCODERS

    methods = [method for method in METHODS if SPK_SETTINGS.get(method, ("lstm",))[0] in ENCODERS or method == REFERENCE]
    results = [run_child(method, args, warmup) for method in methods]
    add_ratios(results, data["audio_s"] * args.repeat)
    print_report(machine, data, results)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "data": data, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
