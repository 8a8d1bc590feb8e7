"""`spk evaluate clone`: how close, how intelligible and how fast `spk clone` is.

For each evaluation speaker (a folder of recordings), the first `reference_clips` recordings are
the reference (short clips are pooled, as a user would give several), the rest the speaker's
other recordings:
- SECS: cosine similarity, by a *judge* encoder different from the one that conditions the TTS
  (so the conditioning encoder does not grade its own work), between the reference and
  (a) the clone speaking held-out sentences, (b) every stock Kokoro voice speaking the same
  sentences — the nearest stock voice is the baseline the clone must beat — and (c) the speaker's
  other real recordings: the ceiling. The clone-minus-nearest-stock margin gets a paired t over
  speakers, so a margin is reported as clear (t > 2) or not.
- Identification: is the clone, by the judge, nearest its own speaker's other recordings among
  all evaluated speakers (centroid cosine)? Chance is 1 / speakers.
- WER: sentences spoken by the clones, transcribed by Whisper-base (CTranslate2, offline).
- Real-time factor: synthesis wall time / audio duration.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speakembed.pipelines.base.outputs import prepare_output_folder, write_text_atomically
from speakembed.pipelines.audio.decode import resample
from speakembed.pipelines.data.items import audio_files_under
from speakembed.pipelines.base.errors import InputNotFoundError, UnusableAudioError, UsageError
from speakembed.models.engines.kokoro import SAMPLE_RATE, phonemize
from speakembed.pipelines.base.progress import Progress, report_progress

# Twenty varied sentences (questions, numbers, names, long and short) for the WER.
SENTENCES = [
    "Please call Stella and ask her to bring these things with her from the store.",
    "The museum opens at nine o'clock on weekdays.",
    "Would you like a cup of tea or a glass of cold water?",
    "Seven small boats sailed across the bay before sunrise.",
    "My brother bought three tickets for the concert on Saturday night.",
    "It is raining again, so take your umbrella.",
    "The doctor said that I should walk every morning.",
    "Why did the train stop in the middle of the bridge?",
    "She wrote a long letter to her grandmother in Scotland.",
    "We need four eggs, some flour and a little sugar.",
    "The children played football in the park until it got dark.",
    "Turn left at the church and the hotel is on your right.",
    "Nobody knew where the old key had been hidden.",
    "The library will be closed for repairs next week.",
    "Can you hear the birds singing outside the window?",
    "He fixed the broken chair with glue and two nails.",
    "Our flight to Madrid leaves at half past ten.",
    "The garden looks beautiful in the spring.",
    "I forgot my password, so I could not read my email.",
    "Thank you very much for your help yesterday.",
]


@dataclass(frozen=True)
class CloneEvalConfig:
    """Settings of `spk evaluate clone`: conditioning encoder, judge, adapter, --refine search, pitch matching and WER."""
    encoder: str = "lstm"  # conditions the TTS (the clone adapter's encoder)
    judge: str = "conv-transformer"  # measures SECS; must differ from `encoder`
    adapter: str | None = None  # clone adapter folder; default: the shipped one for `encoder`
    refine: int = 0
    refine_with: tuple[str, ...] = ("whisper-head",)  # encoders the refine search also asks; not the judge
    match_pitch: bool = False  # shift each clone's median F0 to its reference's
    secs_sentences: int = 2  # sentences per speaker for SECS (clone and every stock voice)
    reference_clips: int = 1  # the first K recordings of a speaker form its reference
    wer: bool = True
    vad: str = "silero"
    seed: int = 0


@dataclass
class SpeakerResult:
    """One evaluated speaker: its reference, SECS of the clone, of the nearest stock voice (named) and of its own other recordings (ceiling), and the voice chosen."""
    speaker: str
    reference: str
    secs_clone: float
    secs_nearest_stock: float
    nearest_stock_voice: str
    secs_real_ceiling: float | None  # mean over the speaker's other recordings; None with only one
    voice: str
    identified_as: str | None = None  # the evaluated speaker whose other recordings the clone is nearest (judge)


@dataclass
class CloneEvalReport:
    """Per-speaker results, mean SECS (clone, nearest stock, ceiling), WER, real-time factor, judge and encoder ids, settings and notes."""
    config: dict
    speakers: list[SpeakerResult]
    mean_secs_clone: float
    mean_secs_nearest_stock: float
    mean_secs_real_ceiling: float | None
    wer: float | None
    real_time_factor: float
    judge_id: str
    encoder_id: str
    identification_rate: float | None = None  # clones nearest their own speaker; None below two speakers with other recordings
    margin_t: float | None = None  # paired t of (SECS clone - SECS nearest stock) over speakers; None below two speakers
    notes: list[str] = field(default_factory=list)


def run(data_dir: str | Path, speakers: list[str] | None, *, config: CloneEvalConfig = CloneEvalConfig(),
        progress: Progress | None = None) -> CloneEvalReport:
    """Evaluate the clone pipeline on DATA/<speaker>/* recordings (all speakers when `speakers` is None)."""
    from speakembed.models.registry import load_encoder
    from speakembed.pipelines.clone import CloneConfig, Cloner, embed_synthesised

    if config.judge == config.encoder:
        raise UsageError("the judge encoder must differ from the conditioning encoder (pass another --judge)")
    if config.refine and config.judge in config.refine_with:
        raise UsageError(f"the judge '{config.judge}' also guides the --refine search (--refine-with); "
                         "pass another --judge or leave it out of --refine-with")
    recordings, judge_speech, skipped = _usable_recordings(_speaker_recordings(Path(data_dir), speakers), config)
    cloner = Cloner.load(CloneConfig(encoder=config.encoder, adapter=config.adapter, refine=config.refine, vad=config.vad,
                                     seed=config.seed, match_pitch=config.match_pitch, refine_with=config.refine_with))
    judge = load_encoder(config.judge)
    texts = [phonemize(sentence) for sentence in SENTENCES]
    stock = {name: embed_synthesised(judge, [cloner.render(voice, text) for text in texts[: config.secs_sentences]], config.vad)
             for name, voice in zip(cloner.voice_names, cloner.stock_voices())}
    results, synthesis_s, audio_s, transcripts = [], 0.0, 0.0, []
    clone_embeddings, other_centroids = {}, {}
    for index, (speaker, files) in enumerate(recordings.items()):
        report_progress(progress, "cloning the evaluation speakers", index, len(recordings))
        voice = cloner.choose_voice(cloner.analyse_reference(files[: config.reference_clips]))
        started = time.perf_counter()
        clips = [cloner.render(voice, text) for text in texts[: config.secs_sentences]]
        synthesis_s += time.perf_counter() - started
        audio_s += sum(len(clip) for clip in clips) / SAMPLE_RATE
        result, clone_embedding, others = _speaker_result(speaker, files, judge_speech[speaker], judge, clips, stock,
                                                          voice.describe(cloner.voice_names), config)
        results.append(result)
        clone_embeddings[speaker], other_centroids[speaker] = clone_embedding, others
        if config.wer:  # one WER sentence per speaker in turn, so every clone voice is heard
            transcripts += [(sentence, cloner.render(voice, texts[i])) for i, sentence in enumerate(SENTENCES) if i % len(recordings) == index]
    report_progress(progress, "cloning the evaluation speakers", len(recordings), len(recordings))
    wer = _word_error_rate(transcripts, progress) if config.wer else None
    ceilings = [r.secs_real_ceiling for r in results if r.secs_real_ceiling is not None]
    identification_rate = identify_clones(results, clone_embeddings, other_centroids)
    return CloneEvalReport(
        config=asdict(config), speakers=results,
        mean_secs_clone=float(np.mean([r.secs_clone for r in results])),
        mean_secs_nearest_stock=float(np.mean([r.secs_nearest_stock for r in results])),
        mean_secs_real_ceiling=float(np.mean(ceilings)) if ceilings else None,
        wer=wer, real_time_factor=synthesis_s / max(audio_s, 1e-9),
        judge_id=judge.encoder_id, encoder_id=cloner.embedder.encoder_id,
        identification_rate=identification_rate, margin_t=paired_t([r.secs_clone - r.secs_nearest_stock for r in results]),
        notes=[f"Left out {len(skipped)} unusable recordings (too short, silent, unreadable): "
               + ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else "")] if skipped else [],
    )


def _usable_recordings(recordings: dict[str, list[Path]], config: CloneEvalConfig
                       ) -> tuple[dict[str, list[Path]], dict[str, list[np.ndarray]], list[str]]:
    """The recordings every encoder of the evaluation can embed (a speaker needs its reference
    clips at least), their speech prepared for the judge (kept, so it is decoded once), and the
    names of those left out. UnusableAudioError when a speaker keeps fewer recordings than
    `config.reference_clips`."""
    from speakembed.models.registry import encoder_spec
    from speakembed.pipelines.audio.speech import prepare_speech

    judge_spec, encoder = encoder_spec(config.judge), encoder_spec(config.encoder)
    usable, judge_speech, skipped = {}, {}, []
    for speaker, files in recordings.items():
        usable[speaker], judge_speech[speaker] = [], []
        for path in files:
            try:
                speech = prepare_speech(path, judge_spec, config.vad)
                if encoder != judge_spec:
                    prepare_speech(path, encoder, config.vad)
            except UnusableAudioError:
                skipped.append(f"{speaker}/{path.name}")
                continue
            usable[speaker].append(path)
            judge_speech[speaker].append(speech)
        if len(usable[speaker]) < config.reference_clips:
            raise UnusableAudioError(f"{speaker}: only {len(usable[speaker])} usable recordings; the reference needs "
                                     f"{config.reference_clips}", "too_short")
    return usable, judge_speech, skipped


def identify_clones(results: list[SpeakerResult], clone_embeddings: dict[str, np.ndarray],
                    other_centroids: dict[str, np.ndarray | None]) -> float | None:
    """Set each result's `identified_as` (the speaker whose other recordings' unit centroid is
    nearest the clone's unit embedding by cosine) and return the fraction identified as
    themselves; None when fewer than two speakers have other recordings."""
    known = {speaker: centroid for speaker, centroid in other_centroids.items() if centroid is not None}
    if len(known) < 2:
        return None
    names, centroids = list(known), np.stack(list(known.values()))
    for result in results:
        result.identified_as = names[int(np.argmax(centroids @ clone_embeddings[result.speaker]))]
    return float(np.mean([result.identified_as == result.speaker for result in results]))


def paired_t(differences: list[float]) -> float | None:
    """Student's paired t of per-speaker differences (mean / standard error); None below two, inf when all are equal and positive."""
    if len(differences) < 2:
        return None
    values = np.asarray(differences, dtype=np.float64)
    spread = values.std(ddof=1)
    if spread == 0:
        return float(np.sign(values.mean()) * np.inf) if values.mean() else 0.0
    return float(values.mean() / (spread / np.sqrt(len(values))))


def _speaker_recordings(data_dir: Path, speakers: list[str] | None) -> dict[str, list[Path]]:
    if not data_dir.is_dir():
        raise InputNotFoundError(f"{data_dir}: no such folder; give a folder of SPEAKER/recording files")
    names = speakers or sorted(path.name for path in data_dir.iterdir() if path.is_dir())
    recordings = {}
    for name in names:
        files = audio_files_under(data_dir / name)
        if not files:
            raise InputNotFoundError(f"{data_dir / name}: no recordings for speaker '{name}'")
        recordings[name] = files
    if not recordings:
        raise InputNotFoundError(f"{data_dir}: no speaker folders")
    return recordings


def _speaker_result(speaker: str, files: list[Path], speech: list[np.ndarray], judge, clips: list[np.ndarray],
                    stock: dict[str, np.ndarray], voice: str, config: CloneEvalConfig
                    ) -> tuple[SpeakerResult, np.ndarray, np.ndarray | None]:
    """The speaker's SECS row, the clone's unit judge embedding (D,) and the unit centroid (D,) of
    the speaker's other recordings (None without any); `speech` holds the recordings' speech
    prepared for the judge, in the order of `files`."""
    from speakembed.models.normalize import unit_length
    from speakembed.pipelines.clone import embed_synthesised

    real = judge.embed(speech)
    reference, others = unit_length(real[: config.reference_clips].mean(axis=0)), real[config.reference_clips:]
    stock_scores = {name: float(np.mean(embeddings @ reference)) for name, embeddings in stock.items()}
    nearest = max(stock_scores, key=stock_scores.get)
    clone_embeddings = embed_synthesised(judge, clips, config.vad)
    result = SpeakerResult(
        speaker=speaker, reference=", ".join(path.name for path in files[: config.reference_clips]),
        secs_clone=float(np.mean(clone_embeddings @ reference)),
        secs_nearest_stock=stock_scores[nearest], nearest_stock_voice=nearest,
        secs_real_ceiling=float(np.mean(others @ reference)) if len(others) else None, voice=voice,
    )
    return result, unit_length(clone_embeddings.mean(axis=0)), unit_length(others.mean(axis=0)) if len(others) else None


def _word_error_rate(transcripts: list[tuple[str, np.ndarray]], progress: Progress | None) -> float:
    from speakembed.models.engines.asr import Transcriber
    from speakembed.pipelines.scoring.wer import word_error_rate

    transcriber = Transcriber.load()
    hypotheses = []
    for index, (_, clip) in enumerate(transcripts):
        report_progress(progress, "transcribing (Whisper-base)", index, len(transcripts))
        hypotheses.append(transcriber.transcribe(resample(clip, SAMPLE_RATE, 16000)))
    return word_error_rate([sentence for sentence, _ in transcripts], hypotheses)


def _margin_line(report: CloneEvalReport) -> str:
    margin = report.mean_secs_clone - report.mean_secs_nearest_stock
    if report.margin_t is None:
        return f"Clone minus nearest stock voice: {margin:+.3f} (one speaker: no paired statistics)"
    verdict = "clear" if abs(report.margin_t) > 2 else "not clear"
    return f"Clone minus nearest stock voice: {margin:+.3f}, paired t {report.margin_t:.2f} over {len(report.speakers)} speakers ({verdict})"


def _identification_line(report: CloneEvalReport) -> str:
    if report.identification_rate is None:
        return "Identification: n/a (needs two speakers with recordings beyond the reference)"
    hits = sum(r.identified_as == r.speaker for r in report.speakers)
    return (f"Clones identified as their own speaker: {hits}/{len(report.speakers)} "
            f"({100 * report.identification_rate:.0f} %; chance {100 / len(report.speakers):.0f} %)")


def write_report(report: CloneEvalReport, out_dir: str | Path) -> list[Path]:
    """Write report.json and report.md into `out_dir` (created with its parents); returns both paths."""
    out_dir = prepare_output_folder(out_dir)
    return [write_text_atomically(out_dir / "report.json", json.dumps(asdict(report), indent=2) + "\n"),
            write_text_atomically(out_dir / "report.md", markdown(report))]


def markdown(report: CloneEvalReport) -> str:
    """The report as a markdown table (per speaker and mean)."""
    lines = ["# spk evaluate clone", "",
             f"Conditioning encoder {report.encoder_id}; SECS judged by {report.judge_id}; refine {report.config['refine']}"
             + (f" (search also asks {', '.join(report.config['refine_with'])})" if report.config['refine'] and report.config['refine_with'] else "")
             + ".", "",
             "| speaker | SECS clone | SECS nearest stock voice | nearest stock | SECS real (ceiling) | clone identified as | clone voice |",
             "|---|---|---|---|---|---|---|"]
    for r in report.speakers:
        ceiling = "n/a" if r.secs_real_ceiling is None else f"{r.secs_real_ceiling:.3f}"
        mark = "n/a" if r.identified_as is None else (f"{r.identified_as} ✓" if r.identified_as == r.speaker else r.identified_as)
        lines.append(f"| {r.speaker} | {r.secs_clone:.3f} | {r.secs_nearest_stock:.3f} | {r.nearest_stock_voice} | {ceiling} | {mark} | {r.voice} |")
    ceiling = "n/a" if report.mean_secs_real_ceiling is None else f"{report.mean_secs_real_ceiling:.3f}"
    lines += [f"| **mean** | **{report.mean_secs_clone:.3f}** | **{report.mean_secs_nearest_stock:.3f}** | | **{ceiling}** | | |", "",
              _margin_line(report), _identification_line(report),
              f"WER (Whisper-base, {len(SENTENCES)} sentences): " + ("n/a" if report.wer is None else f"{100 * report.wer:.1f} %"),
              f"Real-time factor of synthesis: {report.real_time_factor:.3f}", ""]
    return "\n".join(lines + report.notes) + "\n"
