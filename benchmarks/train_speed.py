"""Training and embedding speed of the two trainable encoders: conv-transformer against LSTM.

Both encoders are built as `spk train` builds them (`build_network`): the conv-transformer with the
architecture of the shipped checkpoint (models/pretrained/conv-transformer/config.json; defaults
when none ships), the LSTM with LSTMEncoder's 3 x 256 GE2E sizes; the seed is fixed.
No data is read: inputs are random log-mel-shaped tensors, so only the network is timed.

Per encoder, each measurement runs in its own fresh subprocess (so its peak RSS, `ru_maxrss`, is
that measurement's alone; imports, model and warm-up included):
- train: GE2E steps as `spk train` takes them (pipelines/train.py `_train_step`, minus data
  loading and SpecAugment): forward on an N x M batch of random 160-frame, 40-mel crops
  (N=16 speakers x M=6 utterances = 96 crops), models/losses.GE2ELoss, backward, gradient
  clipping at 3.0, AdamW step (lr 1e-3, weight decay 1e-4, over encoder + loss parameters).
  --warmup untimed warm-up steps (default 1), then up to --train-steps timed steps (fewer once
  --budget-s is spent, never fewer than 2). Throughput = utterances (crops) per second = 96 x steps / wall.
- embed: inference as `spk embed` runs the encoder (eval mode, torch.inference_mode) on batches
  of 64 windows of 160 frames (1.6 s). One untimed warm-up batch, then up to --embed-batches
  timed batches (same budget rule). Windows overlap by 50 % (hop 80 frames = 0.8 s), so on long
  audio each window accounts for 0.8 s of new audio:
      audio covered = windows x 0.8 s,   RTF = wall / audio covered,   s per hour = RTF x 3600.
  (Decode, resample, VAD and the mel frontend are not included: see embed_speed.py for the full path.)
Also: parameter count and weight size (float32 MB = 4 bytes x parameters / 10^6; the sinusoidal
positional table of the conv-transformer is a non-persistent buffer, not a weight), and the
ratios conv-transformer / LSTM.

Run (about 1 minute on 2 idle cores, 2-3 minutes on busy ones; the LSTM's training steps dominate):
    .venv/bin/python benchmarks/train_speed.py [--threads N] [--train-steps 10] [--embed-batches 10] [--json OUT]
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
from embed_speed import BUSY_LOAD, machine_info, run_json_child  # noqa: E402  (one machine description for every benchmark)

ENCODERS = ("conv-transformer", "lstm")
PHASES = ("train", "embed")
SPEAKERS, UTTERANCES = 16, 6  # GE2E N x M (TrainConfig defaults)
CROP_FRAMES, N_MELS = 160, 40
WINDOW_BATCH = 64
WINDOW_S, HOP_S = 1.6, 0.8  # 160-frame windows at 50 % overlap
MIN_TIMED = 2  # timed steps or batches, even when the budget is spent


# ---------------------------------------------------------------- children: one phase of one encoder


def build(encoder: str):
    """A fresh network of `encoder`: the conv-transformer with the architecture of the shipped
    checkpoint (models/pretrained/conv-transformer/config.json) when there is one, else defaults."""
    import torch

    from speakembed.models.checkpoints import build_network, checkpoint_arguments, load_checkpoint_config
    from speakembed.models.registry import PRETRAINED

    torch.manual_seed(0)
    shipped = PRETRAINED / encoder
    arguments = checkpoint_arguments(load_checkpoint_config(shipped)[0]) if (shipped / "config.json").is_file() else {}
    return build_network(encoder, arguments)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_loop(step, warmup: int, count: int, budget_s: float, device) -> tuple[int, float]:
    """(steps timed, wall s): `warmup` untimed calls, then up to `count` timed ones, stopping early
    once `budget_s` is spent (but not before MIN_TIMED)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    done, started = 0, time.perf_counter()
    while done < count:
        step()
        synchronize(device)
        done += 1
        if done >= MIN_TIMED and time.perf_counter() - started > budget_s:
            break
    return done, time.perf_counter() - started


def measure_train(encoder: str, args, device) -> dict:
    import torch

    from speakembed.models.losses import GE2ELoss

    network = build(encoder).to(device).train()
    loss_function = GE2ELoss().to(device)
    optimizer = torch.optim.AdamW(list(network.parameters()) + list(loss_function.parameters()), lr=1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(1)
    batch = torch.randn(SPEAKERS * UTTERANCES, CROP_FRAMES, N_MELS, generator=generator).to(device)

    def step():
        embeddings = network(batch)
        loss = loss_function(embeddings.view(SPEAKERS, UTTERANCES, -1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 3.0)
        optimizer.step()

    steps, wall_s = timed_loop(step, args.warmup, args.train_steps, args.budget_s, device)
    return {"train_steps": steps, "train_wall_s": wall_s, "train_step_s": wall_s / steps,
            "train_utt_per_s": steps * SPEAKERS * UTTERANCES / wall_s}


def measure_embed(encoder: str, args, device) -> dict:
    import torch

    network = build(encoder).to(device).eval()
    generator = torch.Generator().manual_seed(2)
    windows = torch.randn(WINDOW_BATCH, CROP_FRAMES, N_MELS, generator=generator).to(device)

    @torch.inference_mode()
    def step():
        network(windows)

    batches, wall_s = timed_loop(step, 1, args.embed_batches, args.budget_s, device)
    count = batches * WINDOW_BATCH
    rtf = wall_s / (count * HOP_S)
    return {"embed_batches": batches, "embed_windows": count, "embed_wall_s": wall_s,
            "windows_per_s": count / wall_s, "rtf": rtf, "s_per_audio_hour": rtf * 3600}


def child_main(encoder: str, phase: str, args) -> None:
    """Measure one phase of one encoder and print its result as one JSON line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = measure_train(encoder, args, device) if phase == "train" else measure_embed(encoder, args, device)
    network = build(encoder)
    parameters = sum(parameter.numel() for parameter in network.parameters())
    result.update({"encoder": encoder, "phase": phase, "parameters": parameters, "weights_mb": 4 * parameters / 1e6,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
                   "torch_threads": torch.get_num_threads(), "torch": torch.__version__})
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(result))


# ---------------------------------------------------------------- parent: run children, report


def run_child(encoder: str, phase: str, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", encoder, "--phase", phase,
               "--device", args.device, "--warmup", str(args.warmup), "--train-steps", str(args.train_steps),
               "--embed-batches", str(args.embed_batches), "--budget-s", str(args.budget_s)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return run_json_child(command, f"{encoder} {phase}")


def combine(children: list[dict]) -> dict[str, dict]:
    """encoder -> its train and embed results in one dict (peak RSS kept per phase)."""
    results = {encoder: {"encoder": encoder} for encoder in ENCODERS}
    for child in children:
        merged = results[child["encoder"]]
        rss = child.pop("peak_rss_mb")
        gpu = child.pop("peak_gpu_mb", None)
        merged.update({key: value for key, value in child.items() if key != "phase"})
        merged[f"{child['phase']}_peak_rss_mb"] = rss
        if gpu is not None:
            merged[f"{child['phase']}_peak_gpu_mb"] = gpu
    return results


RATIO_KEYS = ("parameters", "weights_mb", "train_utt_per_s", "train_step_s", "train_peak_rss_mb",
              "windows_per_s", "rtf", "s_per_audio_hour", "embed_peak_rss_mb")


def ratios(results: dict[str, dict]) -> dict:
    conv, lstm = results["conv-transformer"], results["lstm"]
    return {key: conv[key] / lstm[key] for key in RATIO_KEYS}


def print_report(machine: dict, args, results: dict[str, dict], ratio: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220, highlight=False)
    first = results[ENCODERS[0]]
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch {first['torch']} with "
                  f"{first['torch_threads']} threads, Python {machine['python']}, device {args.device}")
    loads = f"{machine['load_average_1m']:.2f} before, {machine['load_average_1m_after']:.2f} after"
    console.print(f"date: {machine['date']}   load average (1 min): {loads}")
    if machine["load_average_1m"] > BUSY_LOAD:  # "after" includes this benchmark's own load
        console.print(f"WARNING: load average above {BUSY_LOAD}: other work shared the CPU; timings are unreliable")
    console.print(f"train: GE2E N={SPEAKERS} x M={UTTERANCES} random {CROP_FRAMES}-frame {N_MELS}-mel crops, AdamW; "
                  f"embed: batches of {WINDOW_BATCH} windows of {CROP_FRAMES} frames, inference_mode")
    table = Table(box=box.MARKDOWN)
    columns = ("encoder", "params", "weights MB", "train steps", "s/step", "train utt/s", "train RSS MB",
               "embed windows", "windows/s", "RTF", "s per audio h", "embed RSS MB")
    for column in columns:
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for encoder in ENCODERS:
        r = results[encoder]
        table.add_row(encoder, f"{r['parameters']:,}", f"{r['weights_mb']:.2f}", str(r["train_steps"]),
                      f"{r['train_step_s']:.3f}", f"{r['train_utt_per_s']:.1f}", f"{r['train_peak_rss_mb']:.0f}",
                      str(r["embed_windows"]), f"{r['windows_per_s']:.1f}", f"{r['rtf']:.5f}",
                      f"{r['s_per_audio_hour']:.2f}", f"{r['embed_peak_rss_mb']:.0f}")
    table.add_row("conv-transformer / lstm", f"{ratio['parameters']:.2f}x", f"{ratio['weights_mb']:.2f}x", "",
                  f"{ratio['train_step_s']:.2f}x", f"{ratio['train_utt_per_s']:.2f}x", f"{ratio['train_peak_rss_mb']:.2f}x",
                  "", f"{ratio['windows_per_s']:.2f}x", f"{ratio['rtf']:.2f}x", f"{ratio['s_per_audio_hour']:.2f}x",
                  f"{ratio['embed_peak_rss_mb']:.2f}x")
    console.print(table)
    console.print(
        f"Notes: train utt/s = {SPEAKERS * UTTERANCES} crops x timed steps / wall (forward + GE2E loss + backward + clip + AdamW; "
        "no data loading, no SpecAugment). RTF = embed wall / (windows x 0.8 s): 1.6 s windows at 50 % overlap cover 0.8 s "
        "of new audio each; s per audio h = RTF x 3600 (encoder only: no decode, VAD or mel frontend).\n"
        "weights MB = 4 bytes x parameters / 1e6. RSS = ru_maxrss of the fresh subprocess that ran that phase "
        "(imports, model, optimizer state, warm-up included). Ratios > 1 mean the conv-transformer has more of it."
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads in each child (default: torch's own)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps per encoder (at most)")
    parser.add_argument("--embed-batches", type=int, default=10, help="timed embedding batches of 64 windows (at most)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    parser.add_argument("--budget-s", type=float, default=15.0,
                        help="stop a timed loop after this many seconds (but after at least 2 steps)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", choices=ENCODERS, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_steps < MIN_TIMED or args.embed_batches < MIN_TIMED:
        parser.error(f"--train-steps and --embed-batches must be at least {MIN_TIMED}")
    if args.threads < 0 or args.warmup < 0:
        parser.error("--threads and --warmup must be >= 0")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.phase, args)
        return
    machine = machine_info()
    # Phase by phase, encoders side by side, so a change in the machine's load hits both alike.
    children = [run_child(encoder, phase, args) for phase in PHASES for encoder in ENCODERS]
    machine["load_average_1m_after"] = os.getloadavg()[0]
    results = combine(children)
    ratio = ratios(results)
    print_report(machine, args, results, ratio)
    if args.json:
        settings = {"device": args.device, "threads": args.threads or None, "warmup": args.warmup,
                    "train_steps": args.train_steps, "embed_batches": args.embed_batches, "budget_s": args.budget_s,
                    "batch": f"{SPEAKERS}x{UTTERANCES}", "crop_frames": CROP_FRAMES, "window_batch": WINDOW_BATCH}
        args.json.write_text(json.dumps({"machine": machine, "settings": settings, "results": list(results.values()),
                                         "ratios_conv_transformer_over_lstm": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
