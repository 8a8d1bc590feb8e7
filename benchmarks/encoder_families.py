"""The encoder families side by side on the synthetic and the real dev trials: accuracy, speed, memory.

Two corpora, each a folder of SPEAKER/utterance audio files with a trial list:
- synthetic: ../shared/data/dev (the synthetic voices; trials over file stems);
- real: the Debian real-speech dev trials that `recipes/debian-voices/run.sh` stages 0-3 build
  (exp/debian-voices/data/eval/{audio,trials.txt}; trials labelled by person). When they are
  missing, the real columns are left empty and the report says how to build them.

Encoders: every encoder the registry has weights for (`models/registry.py` encoder_names: the LSTM
with Resemblyzer's pretrained GE2E weights, the frozen Whisper-base baseline `whisper`, and the
shipped checkpoints conv-transformer and whisper-head), plus any `spk train` checkpoint folder
given with `--checkpoint NAME=DIR` (loaded as `spk embed --checkpoint DIR` loads it), so that a
freshly trained model can be compared without shipping it. The LSTM is the reference: it always
runs, and the speed-up column is relative to its row of the same run.

For each encoder and corpus one fresh subprocess embeds the audio folder with `spk embed`'s
pipeline (benchmarks/embed_speed.py `embed_spk`: decode, resample, loudness normalisation, Silero
VAD, encoder, zarr store; after an untimed warm-up file; the model load is timed separately) and
then scores the store as `spk evaluate verification` does (pipelines/evaluate_verification.py):
EER and minDCF (p_target 0.01) on the trial list, top-1/top-5 retrieval (each utterance against
all others) and the mean intra- and inter-speaker cosine distances (in the JSON). A file's speaker
is its folder name; on the real corpus it is the person of that folder (corpus/labels.tsv), as the
trials count it, so that one person's voices in two packages are not told apart.

Speed columns, measured on the synthetic corpus: RTF = wall s (embedding work after model loading)
/ audio s, speed-up = LSTM wall s / wall s, and the peak RSS of that subprocess (imports, model
and warm-up included). The real corpus's timings are in the JSON.

Run on an otherwise idle machine (about 5 minutes on 2 cores for both corpora):
    .venv/bin/python benchmarks/encoder_families.py [--encoders NAME ...] [--checkpoint NAME=DIR ...]
        [--audio DIR] [--trials FILE] [--real-audio DIR] [--real-trials FILE] [--real-labels FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import embed_speed  # noqa: E402
from embed_speed import (BUSY_LOAD, DEFAULT_AUDIO, DEFAULT_TRIALS, REPO, embed_spk, list_audio,  # noqa: E402
                         prepare_run, run_json_child)

REFERENCE = "lstm"
VAD = "silero"  # `spk embed`'s default
SYNTHETIC, REAL = "synthetic", "real"
SPEED_CORPUS = SYNTHETIC  # the corpus whose timings and memory the table shows
REAL_DATA = REPO / "exp" / "debian-voices" / "data"
DEFAULT_REAL_AUDIO = REAL_DATA / "eval" / "audio"
DEFAULT_REAL_TRIALS = REAL_DATA / "eval" / "trials.txt"
DEFAULT_REAL_LABELS = REAL_DATA / "corpus" / "labels.tsv"
BUILD_REAL = "PYTHON=.venv/bin/python recipes/debian-voices/run.sh --stop-stage 3"
ACCURACY_COLUMNS = (  # (column, result key, format, scale) shown for each corpus
    ("EER %", "eer_pct", ".2f", 1), ("minDCF 0.01", "min_dcf_01", ".3f", 1),
    ("top-1 %", "top1", ".1f", 100), ("top-5 %", "top5", ".1f", 100),
)


@dataclass
class Corpus:
    """One corpus of the comparison; `missing` (why it is not scored, and how to build it) or its data."""

    name: str
    audio: str
    trials: str | None
    speakers: str | None = None  # item id -> speaker table; None: each item's folder name
    speakers_source: str = "folder names"
    missing: str | None = None
    placeholder: str = "not built"  # the accuracy cells of a missing corpus
    files: int = 0
    audio_s: float = 0.0


# ---------------------------------------------------------------- child: one encoder on one corpus


def child_main(args) -> None:
    """Embed, then evaluate, with one encoder on one corpus; print the result as one JSON line."""
    import torch

    from speakembed.models.registry import encoder_spec
    from speakembed.pipelines.evaluate_verification import evaluate_verification

    register_checkpoints(args.checkpoint)
    spec = encoder_spec(args.child)
    # embed_spk keys its embeddings by file stem for embed_speed's own EER, and refuses repeated
    # stems; the real corpus repeats them across speaker folders (ktuberling's words in every
    # language), and this benchmark scores the store by item id instead.
    with tempfile.TemporaryDirectory(prefix="encoder_families-") as scratch, \
            mock.patch.object(embed_speed, "by_stem", lambda item_ids, rows: {}):
        result = embed_spk(args.audio, args.warmup, 1, args.child, VAD, keep=Path(scratch))
        result.pop("embeddings")
        report = evaluate_verification(embeddings=result.pop("store"), trials=args.trials,
                                       speakers=args.speakers).to_dict()
    result.update(encoder=args.child, dimension=spec.embedding_size, eer_pct=report["eer_pct"],
                  min_dcf_01=(report["min_dcf"] or {}).get("0.01", {}).get("min_dcf"),
                  top1=report["retrieval"]["top1"], top5=report["retrieval"]["top5"],
                  intra=report["distances"]["intra"], inter=report["distances"]["inter"],
                  trials_scored=report["counts"]["trials"], trials_skipped=report["counts"]["skipped_trials"],
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
                  torch_threads=torch.get_num_threads())
    print(json.dumps(result))


def register_checkpoints(checkpoints: dict[str, Path]) -> None:
    """Make each `spk train` checkpoint folder an encoder NAME of this process (its spec is the one
    `spk embed --checkpoint DIR` loads, renamed), so that embed_spk can embed with it by name."""
    from dataclasses import replace

    from speakembed.models.registry import checkpoint_spec, register

    for name, folder in checkpoints.items():
        register(replace(checkpoint_spec(folder), name=name))


# ---------------------------------------------------------------- parent: corpora, children, report


def synthetic_corpus(args) -> tuple[Corpus, dict, Path]:
    """The synthetic corpus (its page cache warmed), the machine description, and the warm-up file."""
    machine, data, warmup = prepare_run(argparse.Namespace(audio=args.audio, trials=args.trials, repeat=1))
    corpus = Corpus(SYNTHETIC, data["audio"], data["trials"], files=data["files"], audio_s=data["audio_s"])
    return corpus, machine, warmup


def real_corpus(args, scratch: Path) -> Corpus:
    """The real corpus (its page cache warmed, its person table written under `scratch`), or one
    that says what is missing and how to build it."""
    audio, trials = args.real_audio, args.real_trials
    if audio is None or trials is None:
        return Corpus(REAL, str(audio), str(trials), missing="left out (--real-audio / --real-trials '')",
                      placeholder="left out")
    absent = [str(path) for path in (audio, trials) if not path.exists()]
    if absent:
        return Corpus(REAL, str(audio), str(trials),
                      missing=f"not built ({' and '.join(absent)} not found); build it with `{BUILD_REAL}`")
    _, data, _ = prepare_run(argparse.Namespace(audio=audio, trials=trials, repeat=1))
    corpus = Corpus(REAL, data["audio"], data["trials"], files=data["files"], audio_s=data["audio_s"])
    if args.real_labels is not None and args.real_labels.is_file():
        corpus.speakers = str(write_person_table(audio, args.real_labels, scratch / "real-speakers.tsv"))
        corpus.speakers_source = f"persons of {args.real_labels}"
    return corpus


def write_person_table(audio_dir: Path, labels: Path, out: Path) -> Path:
    """Write the TSV `item_id speaker` that gives each audio file of `audio_dir` (item id: its path
    relative to `audio_dir`, as `spk embed` names it) the person of its speaker folder, after
    labels.tsv (columns speaker, person); a folder that labels.tsv lacks is its own person."""
    with open(labels, newline="") as handle:
        person_of = {row["speaker"]: row["person"] for row in csv.DictReader(handle, delimiter="\t")}
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["item_id", "speaker"])
        for path in list_audio(audio_dir):
            item_id = path.relative_to(audio_dir).as_posix()
            folder = item_id.split("/", 1)[0]
            writer.writerow([item_id, person_of.get(folder, folder)])
    return out


def parse_checkpoints(values: list[str], registered: tuple[str, ...]) -> dict[str, Path]:
    """NAME -> folder of the `--checkpoint NAME=DIR` options; SystemExit with one line when one is
    malformed, names a registered encoder or twice the same name, or is not a checkpoint folder."""
    from speakembed.models.registry import load_checkpoint_config
    from speakembed.pipelines.base.errors import SpeakEmbedError

    checkpoints: dict[str, Path] = {}
    for value in values:
        name, separator, folder = value.partition("=")
        if not separator or not name or not folder:
            raise SystemExit(f"--checkpoint {value}: give NAME=DIR (e.g. ct-real=exp/debian-voices/ct/final)")
        if name in registered or name in checkpoints:
            raise SystemExit(f"--checkpoint {value}: the name '{name}' is taken; choose another")
        try:
            load_checkpoint_config(folder)
        except SpeakEmbedError as error:
            raise SystemExit(f"--checkpoint {value}: {error}") from None
        checkpoints[name] = Path(folder).absolute()  # the children run in the repository root
    return checkpoints


def run_child(encoder: str, corpus: Corpus, warmup: Path, checkpoint: Path | None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", encoder, "--audio", corpus.audio,
               "--warmup", str(warmup), "--trials", corpus.trials or "", "--speakers", corpus.speakers or ""]
    if checkpoint is not None:
        command += ["--checkpoint", f"{encoder}={checkpoint}"]
    return run_json_child(command, f"{encoder} on {corpus.name}")


def run_encoder(encoder: str, corpora: list[Corpus], warmup: Path, checkpoint: Path | None) -> dict:
    """One encoder on every present corpus, each in its own subprocess: name, checkpoint, dimension,
    corpus name -> that child's result."""
    runs = {corpus.name: run_child(encoder, corpus, warmup, checkpoint) for corpus in corpora if not corpus.missing}
    return {"encoder": encoder, "checkpoint": str(checkpoint) if checkpoint else None,
            "dimension": next(iter(runs.values()))["dimension"], "corpora": runs}


def add_speed(results: list[dict], speed_corpus: Corpus) -> None:
    """RTF, speed-up against the reference encoder and peak RSS on `speed_corpus`, in place."""
    reference = next(result for result in results if result["encoder"] == REFERENCE)
    reference_wall_s = reference["corpora"][speed_corpus.name]["wall_s"]
    for result in results:
        timing = result["corpora"][speed_corpus.name]
        result.update(rtf=timing["wall_s"] / speed_corpus.audio_s, speedup=reference_wall_s / timing["wall_s"],
                      peak_rss_mb=timing["peak_rss_mb"])


def table_columns(corpora: list[Corpus]) -> list[str]:
    """The header of the report table: encoder, dim, the accuracy columns of each corpus, then speed."""
    accuracy = [f"{corpus.name} {column}" for corpus in corpora for column, *_ in ACCURACY_COLUMNS]
    return ["encoder", "dim", *accuracy, "RTF", f"speed-up (x {REFERENCE})", "peak RSS MB"]


def table_row(result: dict, corpora: list[Corpus]) -> list[str]:
    """One row of the report table (see table_columns); a missing corpus's cells read its placeholder."""
    cells = [result["encoder"], str(result["dimension"])]
    for corpus in corpora:
        scores = result["corpora"].get(corpus.name)
        cells += [(corpus.placeholder if scores is None else _number(scores[key], spec, scale))
                  for _, key, spec, scale in ACCURACY_COLUMNS]
    return cells + [f"{result['rtf']:.4f}", f"{result['speedup']:.2f}x", f"{result['peak_rss_mb']:.0f}"]


def _number(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(scale * value, spec)


def corpus_line(corpus: Corpus, results: list[dict]) -> str:
    """One line describing a corpus: its audio and trials (trials scored by the reference), or what is missing."""
    if corpus.missing:
        return f"{corpus.name}: {corpus.missing}"
    scored = results[0]["corpora"][corpus.name]
    skipped = f", {scored['trials_skipped']} skipped" if scored.get("trials_skipped") else ""
    trials = f"{corpus.trials} ({scored['trials_scored']} scored{skipped})" if corpus.trials else "none"
    return (f"{corpus.name}: {corpus.audio} ({corpus.files} files, {corpus.audio_s:.1f} s of audio); "
            f"trials: {trials}; speakers: {corpus.speakers_source}")


def print_report(machine: dict, corpora: list[Corpus], results: list[dict], skipped: list[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=240, highlight=False)
    threads = results[0]["corpora"][SPEED_CORPUS]["torch_threads"]
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch threads {threads}, "
                  f"Python {machine['python']}, no GPU used (device=cpu)")
    console.print(f"date: {machine['date']}   load average (1 min) before: {machine['load_average_1m']:.2f}")
    if machine["load_average_1m"] > BUSY_LOAD:
        console.print(f"WARNING: load average above {BUSY_LOAD}: other work shared the CPU; timings are unreliable")
    for corpus in corpora:
        console.print(corpus_line(corpus, results))
    console.print(f"VAD: {VAD}; speed and memory measured on the {SPEED_CORPUS} corpus")
    table = Table(box=box.MARKDOWN)
    for column in table_columns(corpora):
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for result in results:
        table.add_row(*table_row(result, corpora))
    console.print(table)
    for result in results:
        if result["checkpoint"]:
            console.print(f"{result['encoder']}: checkpoint {result['checkpoint']}")
    if skipped:
        console.print(f"skipped (not installed): {', '.join(skipped)}")
    console.print("Notes: EER and minDCF (p_target 0.01) over each trial list, cosine scores; top-k = nearest other "
                  "utterance(s) by cosine of the same speaker (on the real corpus: the same person); RTF = wall s / "
                  f"audio s on the {SPEED_CORPUS} corpus, wall s = embedding work after model loading (decode, VAD, "
                  f"encoder, store write); speed-up = {REFERENCE} wall s / wall s; peak RSS = ru_maxrss of that "
                  "subprocess. Each encoder and corpus in a fresh subprocess after an untimed warm-up file.")


def chosen_encoders(args, checkpoints: dict[str, Path]) -> tuple[list[str], list[str]]:
    """(encoders to run, the reference first, then the checkpoints; encoders asked for but not installed)."""
    from speakembed.models.registry import encoder_names

    installed = encoder_names()
    wanted = list(dict.fromkeys([REFERENCE, *(args.encoders if args.encoders is not None else installed)]))
    skipped = [name for name in wanted if name not in installed]
    if REFERENCE in skipped:
        raise SystemExit(f"the reference encoder {REFERENCE} is not installed (its weights ship in resemblyzer)")
    return [name for name in wanted if name not in skipped] + list(checkpoints), skipped


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="*", metavar="NAME",
                        help="registered encoders to compare (default: every one with weights); the LSTM always runs")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=DIR",
                        help="also compare the `spk train` checkpoint folder DIR, named NAME (repeatable)")
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO,
                        help="synthetic corpus: SPEAKER/utterance audio files")
    parser.add_argument("--trials", default=str(DEFAULT_TRIALS), help="synthetic corpus trial list; '' for none")
    parser.add_argument("--real-audio", default=str(DEFAULT_REAL_AUDIO),
                        help="real corpus: SPEAKER/clip audio files; '' to skip")
    parser.add_argument("--real-trials", default=str(DEFAULT_REAL_TRIALS), help="real corpus trial list; '' to skip")
    parser.add_argument("--real-labels", default=str(DEFAULT_REAL_LABELS),
                        help="labels.tsv (speaker, person) of the real corpus: retrieval by person; "
                             "'' for folder names")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--speakers", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.audio = args.audio.absolute()  # the children run in the repository root
    for name in ("trials", "real_audio", "real_trials", "real_labels", "speakers"):
        value = getattr(args, name)
        setattr(args, name, Path(value).absolute() if value else None)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        args.checkpoint = {name: Path(folder) for name, folder in (value.split("=", 1) for value in args.checkpoint)}
        child_main(args)
        return
    from speakembed.models.registry import encoder_names

    checkpoints = parse_checkpoints(args.checkpoint, encoder_names())
    encoders, skipped = chosen_encoders(args, checkpoints)
    synthetic, machine, warmup = synthetic_corpus(args)
    with tempfile.TemporaryDirectory(prefix="encoder_families-") as scratch:
        corpora = [synthetic, real_corpus(args, Path(scratch))]
        results = [run_encoder(name, corpora, warmup, checkpoints.get(name)) for name in encoders]
    add_speed(results, synthetic)
    print_report(machine, corpora, results, skipped)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "speed_corpus": SPEED_CORPUS,
                                         "corpora": [asdict(corpus) for corpus in corpora],
                                         "results": results, "skipped": skipped}, indent=2) + "\n")


if __name__ == "__main__":
    main()
