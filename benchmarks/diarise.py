"""Diarisation accuracy, speed and memory: `spk diarise` against a naive Resemblyzer baseline.

Part 1, accuracy on sets of dev meetings, side by side: the synthetic ones
(`../shared/data/dev/meetings`: dev_m0X.flac with its dev_m0X.rttm and dev_m0X/refs/<speaker>.flac)
and, when built (recipes/debian-voices/run.sh stage 6), the real-speech meetings of the dev voices
in their clean, reverb and telephone (8 kHz) variants (exp/debian-voices/data/meetings/<variant>:
8 meetings of 1-3 minutes and the 20-minute deb_long). Every system writes one RTTM per meeting into a
temp folder, scored with `speakembed.pipelines.evaluate_diarisation.evaluate_diarisation` (pyannote.metrics,
collar ±0.25 s for the collared DER, overlapped speech always scored). Systems:
- spk diarise (reference): `diarise.run` with the meeting's reference clips (refs/*.flac).
- spk diarise (clustering, automatic count): `diarise.run` without references.
- spk diarise (clustering, true count): `DiariseConfig(num_speakers=<speakers in the RTTM>)`.
- naive baseline, built here from the reference tools only: 16 kHz audio read with soundfile
  (no `preprocess_wav`, which trims silences and would shift the timing; other rates resampled
  to 16 kHz with scipy's `resample_poly`); speech regions from
  the silero-vad package's own `get_speech_timestamps` (default settings); each region cut into
  1.5 s windows every 0.75 s (a region shorter than 1.5 s is one window; a last window is
  aligned to the region's end when the hop leaves its tail uncovered); each window
  volume-normalised (`normalize_volume(wav, -30, increase_only=True)`) and embedded with
  `resemblyzer.VoiceEncoder.embed_utterance`; windows clustered with
  `AgglomerativeClustering(n_clusters=<true count>, metric="cosine", linkage="average")`. Each
  region becomes turns split at the midpoint between the centres of neighbouring windows with
  different labels. No overlap handling, no smoothing. It runs in its own subprocess because
  importing silero_vad calls torch.set_num_threads(1); the child restores the default thread
  count afterwards so Resemblyzer gets the same cores as spk.
Per set: DER accumulated over its meetings (long meetings weigh more) and the mean of the
per-meeting DERs (what the issue's targets are on), miss / false alarm / confusion, JER, and how
many meetings got the right speaker count (with the mean absolute count error).
RTF = processing wall time / audio duration over a set's meetings, after an untimed warm-up
meeting. For spk it is the time of each `diarise.run` call (encoder loading, decoding, VAD,
embedding, decision, RTTM and parquet writing); for the baseline the per-meeting work after its
models are loaded (reading, VAD, embedding, clustering, RTTM writing).

Part 2, long audio: a ~1 hour 16 kHz mono FLAC built in a temp folder by cycling the dev meetings
with 1 s silences (written block by block; a matching reference RTTM is written alongside, so a
DER is reported as a sanity check). `spk diarise LONG.flac --out DIR -q` runs WITH its views (the
PNG timeline and the HTML page, whose embedded audio is the whole hour re-encoded as Vorbis in
30 s blocks) as a fresh subprocess in clustering mode and in reference mode (the 3 clips of dev_m01/refs), timed
by wall clock; its peak RSS is the child's own `ru_maxrss` from `os.wait4` (what `/usr/bin/time
-v` reports, for that child alone). The results are checked against the targets (1 h of audio
in <= 60 s, RTF <= 0.017, peak RSS <= 1.5 GB). The naive baseline is timed on the long file only
when its dev-meeting RTF predicts under 3 minutes (and is stopped at 3 minutes otherwise).
In reference mode the long file's reference DER is not shown: the clips name only dev_m01's
speakers, so most of the hour is correctly 'unknown'.

Run (part 1 on the synthetic set alone about 1 minute on 2 cores; each real variant about 3 more
minutes, mostly the baseline; part 2 about 4 minutes):
    .venv/bin/python benchmarks/diarise.py [--skip-long] [--json OUT] [--meetings DIR ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed_speed import BUSY_LOAD, machine_info  # noqa: E402  (same machine description for both benchmarks)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MEETINGS = REPO.parent / "shared" / "data" / "dev" / "meetings"
REAL_MEETINGS = REPO / "exp" / "debian-voices" / "data" / "meetings"
REAL_VARIANTS = ("clean", "reverb", "telephone")
SPK = Path(sys.executable).parent / "spk"
SAMPLE_RATE = 16000
COLLAR_S = 0.25
LONG_TARGET_S = 3600.0
LONG_GAP_S = 1.0
LONG_ID = "long_meetings"
TARGETS = {"wall_s": 60.0, "rtf": 0.017, "peak_rss_mb": 1500.0}  # for one hour of audio
BASELINE_LIMIT_S = 180.0
BASELINE = "naive baseline (silero + resemblyzer + AHC, true count)"
SPK_SYSTEMS = {  # label -> (uses references, uses the true count)
    "spk diarise (reference)": (True, False),
    "spk diarise (clustering, automatic count)": (False, False),
    "spk diarise (clustering, true count)": (False, True),
}
WINDOW_S, HOP_S = 1.5, 0.75


@dataclass(frozen=True)
class Meeting:
    meeting_id: str
    audio: Path
    rttm: Path
    refs: list[Path]
    num_speakers: int
    duration_s: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data


def load_meetings(meetings_dir: Path) -> list[Meeting]:
    """The meetings of `meetings_dir`: every X.flac with an X.rttm beside it."""
    import soundfile

    from speakembed.pipelines.data.rttm import read_rttm

    meetings = []
    for audio in sorted(meetings_dir.glob("*.flac")):
        rttm = audio.with_suffix(".rttm")
        if rttm.is_file():
            meetings.append(Meeting(audio.stem, audio, rttm, sorted((meetings_dir / audio.stem / "refs").glob("*.flac")),
                                    read_rttm(rttm)["speaker"].nunique(), soundfile.info(str(audio)).duration))
    if not meetings:
        raise SystemExit(f"{meetings_dir}: no meetings (X.flac with X.rttm) found")
    return meetings


def build_long_audio(meetings: list[Meeting], folder: Path, target_s: float = LONG_TARGET_S) -> tuple[Path, Path, float]:
    """Cycle the meetings, each followed by a silence, into folder/LONG_ID.flac until `target_s` is
    reached; write the matching reference RTTM. Returns (audio, rttm, duration in seconds)."""
    import numpy as np
    import soundfile

    audio_path, rttm_path = folder / f"{LONG_ID}.flac", folder / f"{LONG_ID}.rttm"
    gap = np.zeros(int(LONG_GAP_S * SAMPLE_RATE), dtype="float32")
    offset_s, lines = 0.0, []
    with soundfile.SoundFile(str(audio_path), "w", SAMPLE_RATE, 1, format="FLAC", subtype="PCM_16") as out:
        while offset_s < target_s:
            for meeting in meetings:
                lines += shifted_rttm_lines(meeting.rttm, offset_s)
                for block in soundfile.blocks(str(meeting.audio), blocksize=SAMPLE_RATE * 10, dtype="float32"):
                    out.write(block)
                out.write(gap)
                offset_s += meeting.duration_s + LONG_GAP_S
    rttm_path.write_text("".join(lines))
    return audio_path, rttm_path, soundfile.info(str(audio_path)).duration


def shifted_rttm_lines(rttm: Path, offset_s: float) -> list[str]:
    """The SPEAKER lines of `rttm`, moved by `offset_s` seconds into recording LONG_ID."""
    from speakembed.pipelines.data.rttm import SPEAKER_LINE, read_rttm

    return [SPEAKER_LINE.format(recording_id=LONG_ID, start_s=row.start_s + offset_s, duration_s=row.duration_s,
                                speaker=row.speaker) for row in read_rttm(rttm).itertuples()]


# ---------------------------------------------------------------- systems


def run_spk(meeting: Meeting, out_dir: Path, with_refs: bool, true_count: bool) -> float:
    """Diarise one meeting with `diarise.run` into out_dir/<meeting>.rttm; returns wall seconds."""
    from speakembed.pipelines.diarise import DiariseConfig, run

    config = DiariseConfig(num_speakers=meeting.num_speakers if true_count else None, write_views=False)
    started = time.perf_counter()
    run([meeting.audio], out_dir, refs=[str(path) for path in meeting.refs] if with_refs else None, config=config)
    return time.perf_counter() - started


def baseline_turns(wav, regions: list[dict], encoder, num_speakers: int) -> list[tuple[float, float, int]]:
    """(start s, end s, cluster) turns of the naive baseline for one recording."""
    import numpy as np
    from resemblyzer.audio import normalize_volume
    from sklearn.cluster import AgglomerativeClustering

    windows = [(region_index, start, end) for region_index, region in enumerate(regions)
               for start, end in region_windows(region["start"], region["end"])]
    if not windows:
        return []
    embeddings = np.stack([encoder.embed_utterance(normalize_volume(wav[start:end], -30, increase_only=True))
                           for _, start, end in windows])
    if len(windows) > 1:
        labels = AgglomerativeClustering(n_clusters=min(num_speakers, len(windows)), metric="cosine",
                                         linkage="average").fit_predict(embeddings)
    else:
        labels = np.zeros(1, dtype=int)
    return windows_to_turns(windows, labels, regions)


def region_windows(start: int, end: int) -> list[tuple[int, int]]:
    """1.5 s windows every 0.75 s inside a region (samples); one window if it is shorter; the
    last window is aligned to the region's end when the hop leaves a tail uncovered."""
    size, hop = int(WINDOW_S * SAMPLE_RATE), int(HOP_S * SAMPLE_RATE)
    if end - start <= size:
        return [(start, end)]
    windows = [(first, first + size) for first in range(start, end - size + 1, hop)]
    if windows[-1][1] < end:
        windows.append((end - size, end))
    return windows


def windows_to_turns(windows, labels, regions) -> list[tuple[float, float, int]]:
    """Each region split at the midpoint of neighbouring windows' centres where the label changes."""
    turns = []
    for region_index, region in enumerate(regions):
        mine = [(start, end, label) for (index, start, end), label in zip(windows, labels) if index == region_index]
        turn_start = region["start"]
        for (start, end, label), (next_start, next_end, next_label) in zip(mine, mine[1:]):
            if next_label != label:
                boundary = ((start + end) / 2 + (next_start + next_end) / 2) / 2
                turns.append((turn_start / SAMPLE_RATE, boundary / SAMPLE_RATE, int(label)))
                turn_start = boundary
        turns.append((turn_start / SAMPLE_RATE, region["end"] / SAMPLE_RATE, int(mine[-1][2])))
    return turns


def baseline_child(jobs: list[dict]) -> None:
    """Run the naive baseline on each job {audio, speakers, rttm} (the first is an untimed warm-up
    when job['warmup']); print {"seconds": [...]} as one JSON line."""
    import torch

    threads = torch.get_num_threads()
    from silero_vad import get_speech_timestamps, load_silero_vad  # sets torch threads to 1

    torch.set_num_threads(threads)
    import soundfile
    from resemblyzer import VoiceEncoder

    vad, encoder = load_silero_vad(), VoiceEncoder("cpu", verbose=False)
    seconds = []
    for job in jobs:
        started = time.perf_counter()
        wav, rate = soundfile.read(job["audio"], dtype="float32")
        if wav.ndim != 1:
            raise SystemExit(f"{job['audio']}: the baseline expects mono audio")
        if rate != SAMPLE_RATE:
            from scipy.signal import resample_poly

            wav = resample_poly(wav, SAMPLE_RATE, rate).astype("float32")
        regions = get_speech_timestamps(torch.from_numpy(wav), vad, sampling_rate=SAMPLE_RATE)
        turns = baseline_turns(wav, regions, encoder, job["speakers"])
        write_turns(Path(job["rttm"]), turns)
        if not job.get("warmup"):
            seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds, "torch_threads": torch.get_num_threads()}))


def write_turns(rttm: Path, turns: list[tuple[float, float, int]]) -> None:
    from speakembed.pipelines.data.rttm import SPEAKER_LINE

    rttm.write_text("".join(SPEAKER_LINE.format(recording_id=rttm.stem, start_s=start, duration_s=end - start,
                                                speaker=f"cluster_{label}") for start, end, label in turns))


def run_baseline(jobs: list[dict], scratch: Path, timeout_s: float | None = None) -> dict:
    """The baseline child on `jobs`, measured; adds its parsed JSON result to the measurement."""
    jobs_file = scratch / f"baseline_jobs_{len(list(scratch.glob('baseline_jobs_*')))}.json"
    jobs_file.write_text(json.dumps(jobs))
    measured = measured_run([sys.executable, str(Path(__file__).resolve()), "--baseline-child", str(jobs_file)],
                            scratch, timeout_s)
    lines = [line for line in measured.pop("stdout").splitlines() if line.startswith("{")]
    if measured["timed_out"] or not lines:
        return measured
    return {**measured, **json.loads(lines[-1])}


# ---------------------------------------------------------------- measurement


def measured_run(command: list[str], scratch: Path, timeout_s: float | None = None) -> dict:
    """Run `command` in a fresh process: wall seconds, peak RSS of that process (MB, from
    os.wait4, as /usr/bin/time -v reports it), exit status, stdout; killed after `timeout_s`."""
    stdout_path, stderr_path = scratch / "child.out", scratch / "child.err"
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdout=stdout, stderr=stderr)
        killer = threading.Timer(timeout_s, process.send_signal, (signal.SIGKILL,)) if timeout_s else None
        if killer:
            killer.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall_s = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if killer:
            killer.cancel()
    timed_out = process.returncode == -signal.SIGKILL and timeout_s is not None
    if process.returncode != 0 and not timed_out:
        sys.stderr.write(stderr_path.read_text()[-3000:])
        raise SystemExit(f"{' '.join(command[:3])}...: failed with exit status {process.returncode}")
    return {"wall_s": wall_s, "peak_rss_mb": usage.ru_maxrss / 1024, "timed_out": timed_out,
            "stdout": stdout_path.read_text()}


def score(reference: Path, hypothesis_dir: Path) -> dict:
    """Overall and per-recording scores of the RTTMs in `hypothesis_dir`."""
    from speakembed.pipelines.evaluate_diarisation import evaluate_diarisation

    report = evaluate_diarisation(reference, hypothesis_dir, collar_s=COLLAR_S, allow_missing=True)
    return {"overall": report.overall.to_dict(), "recordings": [scores.to_dict() for scores in report.recordings],
            "missing": report.missing_hypotheses}


# ---------------------------------------------------------------- part 1: dev meetings


def accuracy(meetings: list[Meeting], meetings_dir: Path, scratch: Path) -> list[dict]:
    """Score every system on one set of meetings; one result dict per system."""
    scratch.mkdir()
    audio_s = sum(meeting.duration_s for meeting in meetings)
    results = []
    for label, (with_refs, true_count) in SPK_SYSTEMS.items():
        log(f"running {label} ...")
        out_dir = scratch / f"spk_{len(results)}"
        run_spk(meetings[0], scratch / "warmup", with_refs, true_count)  # untimed: lazy initialisation
        wall_s = sum(run_spk(meeting, out_dir, with_refs, true_count) for meeting in meetings)
        results.append({"system": label, "wall_s": wall_s, "rtf": wall_s / audio_s, **score(meetings_dir, out_dir)})
    log(f"running {BASELINE} ...")
    out_dir = scratch / "baseline"
    out_dir.mkdir()
    jobs = [{"audio": str(meetings[0].audio), "speakers": meetings[0].num_speakers,
             "rttm": str(scratch / "warmup_baseline" / f"{meetings[0].meeting_id}.rttm"), "warmup": True}]
    (scratch / "warmup_baseline").mkdir()
    jobs += [{"audio": str(m.audio), "speakers": m.num_speakers, "rttm": str(out_dir / f"{m.meeting_id}.rttm")}
             for m in meetings]
    measured = run_baseline(jobs, scratch)
    wall_s = sum(measured["seconds"])
    results.append({"system": BASELINE, "wall_s": wall_s, "rtf": wall_s / audio_s, **score(meetings_dir, out_dir)})
    return results


# ---------------------------------------------------------------- part 2: long audio


def long_audio(meetings: list[Meeting], scratch: Path, baseline_rtf: float) -> dict:
    """Build the hour-long file, then time `spk diarise` on it (and the baseline when fast enough)."""
    log("building the long file ...")
    folder = scratch / "long"
    folder.mkdir()
    audio, rttm, duration_s = build_long_audio(meetings, folder)
    refs = [str(path) for path in meetings[0].refs]
    runs = []
    for mode, extra in (("clustering", []), ("reference", ["--refs", *refs])):
        log(f"running spk diarise ({mode}) on {duration_s / 60:.1f} min ...")
        out_dir = folder / f"spk_{mode}"
        measured = measured_run([str(SPK), "diarise", str(audio), "--out", str(out_dir), "-q", *extra], scratch)
        measured["html_mb"] = (out_dir / f"{LONG_ID}.html").stat().st_size / 1e6
        measured.pop("stdout")
        der = score(rttm, out_dir)["overall"]["der"] if mode == "clustering" else None
        runs.append({"system": f"spk diarise ({mode})", **measured, "der": der,
                     "speakers_found": hypothesis_speakers(out_dir / f"{LONG_ID}.rttm")})
    runs.append(long_baseline(audio, rttm, duration_s, folder, scratch, baseline_rtf))
    for run in runs:
        run["rtf"] = run["wall_s"] / duration_s if run.get("wall_s") else None
    return {"audio": str(audio.name), "duration_s": duration_s, "reference_speakers": count_speakers(rttm),
            "runs": runs}


def long_baseline(audio: Path, rttm: Path, duration_s: float, folder: Path, scratch: Path, baseline_rtf: float) -> dict:
    """The naive baseline on the long file when its dev RTF predicts < BASELINE_LIMIT_S."""
    predicted_s = baseline_rtf * duration_s
    entry = {"system": BASELINE, "predicted_s": predicted_s}
    if predicted_s >= BASELINE_LIMIT_S:
        return {**entry, "skipped": f"predicted {predicted_s:.0f} s from its dev RTF (limit {BASELINE_LIMIT_S:.0f} s)"}
    log(f"running {BASELINE} on the long file (predicted {predicted_s:.0f} s) ...")
    out_dir = folder / "baseline"
    out_dir.mkdir()
    job = {"audio": str(audio), "speakers": count_speakers(rttm), "rttm": str(out_dir / f"{LONG_ID}.rttm")}
    measured = run_baseline([job], scratch, timeout_s=BASELINE_LIMIT_S)
    if measured["timed_out"]:
        return {**entry, "skipped": f"stopped after {BASELINE_LIMIT_S:.0f} s"}
    return {**entry, "wall_s": measured["wall_s"], "peak_rss_mb": measured["peak_rss_mb"],
            "der": score(rttm, out_dir)["overall"]["der"], "speakers_found": hypothesis_speakers(Path(job["rttm"]))}


def count_speakers(rttm: Path) -> int:
    from speakembed.pipelines.data.rttm import read_rttm

    return int(read_rttm(rttm)["speaker"].nunique())


def hypothesis_speakers(rttm: Path) -> int:
    return count_speakers(rttm) if rttm.is_file() else 0


# ---------------------------------------------------------------- report


def print_table(console, headers: list[str], rows: list[list[str]]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.MARKDOWN)
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}"


def print_accuracy(console, meetings: list[Meeting], results: list[dict]) -> None:
    console.print(f"\nAccuracy on the dev meetings (collar ±{COLLAR_S:g} s for DER±; miss, FA, confusion: "
                  "% of reference speech, no collar)")
    headers = ["system", "DER %", "mean DER %", f"DER±{COLLAR_S:g} %", "miss %", "FA %", "conf %", "JER %",
               f"count right (x/{len(meetings)})", "mean |count err|", "RTF"]
    rows = [[r["system"], pct(o["der"]), pct(mean_of(r, "der")), pct(o["der_collar"]), f"{o['full']['missed_pct']:.2f}",
             f"{o['full']['false_alarm_pct']:.2f}", f"{o['full']['confusion_pct']:.2f}", pct(o["jer"]),
             f"{o['exact_speaker_counts']}/{len(meetings)}", f"{mean_count_error(r):.2f}", f"{r['rtf']:.4f}"]
            for r in results for o in [r["overall"]]]
    print_table(console, headers, rows)
    console.print("\nPer-meeting DER % (no collar; in brackets: hypothesis - reference speaker count)")
    headers = ["system", *(f"{m.meeting_id} ({m.num_speakers} spk)" for m in meetings)]
    rows = [[r["system"], *(f"{pct(s['der'])} ({s['speaker_count_error']:+d})" for s in r["recordings"])]
            for r in results]
    print_table(console, headers, rows)


def mean_of(result: dict, key: str) -> float:
    """The mean over a system's meetings of one per-meeting score (each meeting weighs the same)."""
    return sum(scores[key] for scores in result["recordings"]) / len(result["recordings"])


def mean_count_error(result: dict) -> float:
    """Mean absolute speaker-count error over a system's meetings."""
    return sum(abs(scores["speaker_count_error"]) for scores in result["recordings"]) / len(result["recordings"])


def print_long(console, long: dict) -> None:
    console.print(f"\nLong audio: {long['audio']}, {long['duration_s']:.1f} s ({long['duration_s'] / 3600:.2f} h), "
                  f"the dev meetings cycled with {LONG_GAP_S:g} s silences; {long['reference_speakers']} speakers")
    headers = ["system", "audio s", "wall s", "RTF", "peak RSS MB", "HTML MB", "DER %", "speakers found",
               f"wall ≤ {TARGETS['wall_s']:g} s/h", f"RTF ≤ {TARGETS['rtf']:g}", f"RSS ≤ {TARGETS['peak_rss_mb']:g} MB"]
    rows, notes = [], []
    for run in long["runs"]:
        if "skipped" in run:
            rows.append([run["system"], f"{long['duration_s']:.0f}", "skipped", *["-"] * 8])
            notes.append(f"{run['system']} skipped: {run['skipped']}.")
            continue
        checks = [] if run["system"] == BASELINE else [pass_fail(run, long["duration_s"])[key] for key in TARGETS]
        rows.append([run["system"], f"{long['duration_s']:.0f}", f"{run['wall_s']:.1f}", f"{run['rtf']:.4f}",
                     f"{run['peak_rss_mb']:.0f}", f"{run['html_mb']:.1f}" if "html_mb" in run else "-", pct(run["der"]), str(run["speakers_found"]),
                     *(checks or ["-"] * 3)])
    print_table(console, headers, rows)
    for note in notes:
        console.print(note)
    console.print("wall s and peak RSS: the whole `spk diarise` process (start-up, imports, model load, decode, "
                  "VAD, embedding, decisions, RTTM + parquet, PNG + HTML views); wall target scaled to the file's length. DER: no "
                  "collar, against the concatenated reference RTTMs; not shown in reference mode (its clips name "
                  "only dev_m01's speakers).")


def pass_fail(run: dict, duration_s: float) -> dict:
    """PASS/FAIL per target; the wall-time target is per hour of audio, scaled to `duration_s`."""
    limits = {**TARGETS, "wall_s": TARGETS["wall_s"] * duration_s / 3600}
    return {key: "PASS" if run[key] <= limit else "FAIL" for key, limit in limits.items()}


def print_header(console, machine: dict, data: dict) -> None:
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch threads {machine['torch_threads']}, "
                  f"Python {machine['python']}, device cpu")
    console.print(f"date: {machine['date']}   load average (1 min): {machine['load_average_1m']:.2f} before, "
                  f"{os.getloadavg()[0]:.2f} after")
    if machine["load_average_1m"] > BUSY_LOAD:
        console.print(f"WARNING: load average above {BUSY_LOAD}: other work shared the CPU; timings are unreliable")
    for meeting_set in data["sets"]:
        console.print(f"data ({meeting_set['name']}): {meeting_set['meetings_dir']}: " + ", ".join(
            f"{m['id']} ({m['duration_s']:.1f} s, {m['speakers']} speakers, {m['refs']} refs)"
            for m in meeting_set["meetings"]))


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meetings", type=Path, nargs="+", default=None,
                        help="folders of X.flac + X.rttm meetings, scored side by side (default: the synthetic dev "
                             "meetings and the real-speech meeting variants that are built)")
    parser.add_argument("--skip-long", action="store_true", help="only part 1 (accuracy on the dev meetings)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--baseline-child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.baseline_child:
        baseline_child(json.loads(args.baseline_child.read_text()))
        return
    import torch
    from rich.console import Console

    machine = {**machine_info(), "torch_threads": torch.get_num_threads()}
    folders = args.meetings or default_meeting_sets()
    sets = {set_name(folder): (folder, load_meetings(folder)) for folder in folders}
    data = {"sets": [{"name": name, "meetings_dir": str(folder), "meetings": [
        {"id": m.meeting_id, "duration_s": m.duration_s, "speakers": m.num_speakers, "refs": len(m.refs)}
        for m in meetings]} for name, (folder, meetings) in sets.items()]}
    with tempfile.TemporaryDirectory(prefix="diarise-bench-") as scratch:
        results = {}
        for index, (name, (folder, meetings)) in enumerate(sets.items()):
            log(f"meeting set {name}:")
            results[name] = accuracy(meetings, folder, Path(scratch) / f"set_{index}")
        first_meetings, first_results = next(iter(sets.values()))[1], next(iter(results.values()))
        baseline_rtf = next(r["rtf"] for r in first_results if r["system"] == BASELINE)
        long = None if args.skip_long else long_audio(first_meetings, Path(scratch), baseline_rtf)
    console = Console(width=240, highlight=False)
    print_header(console, machine, data)
    for name, (folder, meetings) in sets.items():
        console.print(f"\n## {name}")
        print_accuracy(console, meetings, results[name])
    if long:
        print_long(console, long)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "data": data, "accuracy": results, "long": long},
                                        indent=2) + "\n")


def default_meeting_sets() -> list[Path]:
    """The synthetic dev meetings, then each real-speech variant whose folder exists."""
    return [DEFAULT_MEETINGS] + [REAL_MEETINGS / variant for variant in REAL_VARIANTS if (REAL_MEETINGS / variant).is_dir()]


def set_name(folder: Path) -> str:
    """A short label of a meeting folder: `synthetic`, `real clean`, ... or the folder's name."""
    if folder.resolve() == DEFAULT_MEETINGS.resolve():
        return "synthetic"
    return f"real {folder.name}" if folder.parent.resolve() == REAL_MEETINGS.resolve() else folder.name


if __name__ == "__main__":
    main()
