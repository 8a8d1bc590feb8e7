"""The encoder families side by side on one corpus: accuracy, embedding space and embedding speed.

For each registered encoder — the LSTM (pretrained GE2E), the shipped conv-transformer, the frozen
Whisper-base baseline (`whisper`: blocks 1-2 mean-pooled, no training) and Whisper-base with the
trained MLP head (`whisper-head`) — one fresh subprocess embeds the audio folder with `spk embed`'s
pipeline (benchmarks/embed_speed.py `embed_spk`: decode, resample, loudness normalisation, Silero
VAD, encoder, zarr store; after an untimed warm-up file; the model load is timed separately) and
then scores the store as `spk evaluate verification` does (pipelines/evaluate_verification.py): EER and minDCF
on the trial list, top-1/top-5 retrieval (each utterance against all others) and the mean intra-
and inter-speaker cosine distances, with each file's speaker taken from its folder name.

Speed columns: wall s (embedding work after model loading), RTF = wall s / audio s, speed-up =
LSTM wall s / wall s, and the peak RSS of the subprocess (imports, model and warm-up included).
An encoder that is not installed (e.g. no shipped checkpoint) is listed as skipped.

Run on an otherwise idle machine (about 3 minutes on 2 cores for the dev corpus):
    .venv/bin/python benchmarks/encoder_families.py [--audio DIR] [--trials FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed_speed import (BUSY_LOAD, DEFAULT_AUDIO, DEFAULT_TRIALS, embed_spk, prepare_run,  # noqa: E402
                         run_json_child)

ENCODERS = ("lstm", "conv-transformer", "whisper", "whisper-head")
REFERENCE = "lstm"
VAD = "silero"  # `spk embed`'s default


def child_main(encoder: str, audio_dir: Path, warmup: Path, trials: Path | None) -> None:
    """Embed, then evaluate, with one encoder; print the result as one JSON line."""
    import torch

    from speakembed.models.registry import encoder_spec
    from speakembed.pipelines.evaluate_verification import evaluate_verification

    spec = encoder_spec(encoder)
    with tempfile.TemporaryDirectory(prefix="encoder_families-") as scratch:
        result = embed_spk(audio_dir, warmup, 1, encoder, VAD, keep=Path(scratch))
        result.pop("embeddings")
        report = evaluate_verification(embeddings=result.pop("store"), trials=trials).to_dict()
    result.update(encoder=encoder, dimension=spec.embedding_size, eer_pct=report["eer_pct"],
                  min_dcf_01=(report["min_dcf"] or {}).get("0.01", {}).get("min_dcf"),
                  top1=report["retrieval"]["top1"], top5=report["retrieval"]["top5"],
                  intra=report["distances"]["intra"], inter=report["distances"]["inter"],
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  torch_threads=torch.get_num_threads())
    print(json.dumps(result))


def installed(encoder: str) -> bool:
    from speakembed.models.registry import ENCODERS as REGISTERED

    return encoder in REGISTERED


def run_child(encoder: str, args, warmup: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", encoder, "--audio", str(args.audio),
               "--warmup", str(warmup), "--trials", str(args.trials or "")]
    return run_json_child(command, encoder)


def print_report(machine: dict, data: dict, results: list[dict], skipped: list[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220, highlight=False)
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch threads {results[0]['torch_threads']}, "
                  f"Python {machine['python']}, no GPU used (device=cpu)")
    console.print(f"date: {machine['date']}   load average (1 min) before: {machine['load_average_1m']:.2f}")
    if machine["load_average_1m"] > BUSY_LOAD:
        console.print(f"WARNING: load average above {BUSY_LOAD}: other work shared the CPU; timings are unreliable")
    console.print(f"data: {data['audio']} ({data['files']} files, {data['audio_s']:.1f} s of audio); "
                  f"trials: {data['trials'] or 'none'}; VAD: {VAD}")
    reference = next((r for r in results if r["encoder"] == REFERENCE), results[0])
    table = Table(box=box.MARKDOWN)
    for column in ("encoder", "dim", "EER %", "minDCF 0.01", "top-1 %", "top-5 %", "intra", "inter",
                   "load s", "wall s", "RTF", f"speed (x {reference['encoder']})", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for r in results:
        table.add_row(r["encoder"], str(r["dimension"]), _number(r["eer_pct"], ".2f"), _number(r["min_dcf_01"], ".3f"),
                      _number(r["top1"], ".1f", 100), _number(r["top5"], ".1f", 100), _number(r["intra"], ".3f"),
                      _number(r["inter"], ".3f"), f"{r['load_s']:.2f}", f"{r['wall_s']:.2f}",
                      f"{r['wall_s'] / data['audio_s']:.4f}", f"{reference['wall_s'] / r['wall_s']:.2f}x",
                      f"{r['peak_rss_mb']:.0f}")
    console.print(table)
    if skipped:
        console.print(f"skipped (not installed): {', '.join(skipped)}")
    console.print("Notes: EER and minDCF (p_target 0.01) over the trial list, cosine scores; top-k = nearest other "
                  "utterance(s) by cosine of the same speaker; intra / inter = mean cosine distance (1 - cosine) of "
                  "same- / different-speaker pairs; wall s = embedding work after model loading (decode, VAD, "
                  "encoder, store write); each encoder in a fresh subprocess after an untimed warm-up file.")


def _number(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(scale * value, spec)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="folder of SPEAKER/utterance audio files")
    parser.add_argument("--trials", default=str(DEFAULT_TRIALS), help="TSV 'enroll test label' over file stems; '' for none")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated registered encoder names")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.trials = Path(args.trials) if args.trials else None
    args.repeat = 1
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.audio, args.warmup, args.trials)
        return
    machine, data, warmup = prepare_run(args)
    wanted = [name.strip() for name in args.encoders.split(",") if name.strip()]
    skipped = [name for name in wanted if not installed(name)]
    results = [run_child(name, args, warmup) for name in wanted if name not in skipped]
    if not results:
        raise SystemExit(f"none of the encoders {', '.join(wanted)} is installed")
    print_report(machine, data, results, skipped)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "data": data, "results": results,
                                         "skipped": skipped}, indent=2) + "\n")


if __name__ == "__main__":
    main()
