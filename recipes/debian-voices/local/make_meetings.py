"""Simulated meetings of real voices for diarisation work, from the dev split of the Debian corpus.

Reads CORPUS (build_corpus.py: CORPUS/labels.tsv and CORPUS/dev/<speaker>/<clip>; only dev speakers, so
never a train speaker and never a package that ../../shared/FACTS.md reserves) and writes, in the layout
of ../../shared/data/dev/meetings (so `benchmarks/diarise.py --meetings OUT/clean` reads it):

    OUT/<variant>/<id>.flac              the meeting: clean (16 kHz), reverb (16 kHz, one synthetic room
                                         response per speaker) or telephone (8 kHz: models.augment.telephone_band)
    OUT/<variant>/<id>.rttm              who speaks when (the same in every variant; RTTM speaker = corpus speaker)
    OUT/<variant>/<id>/refs/<speaker>.flac  one clean 4-8 s reference per speaker, from clips not in the meeting
    OUT/meetings.tsv                     meeting, variant, speakers, languages, duration, speech, overlap, turns
    OUT/sources.tsv                      meeting, speaker, clip (path in CORPUS/dev), use (turn|reference), start_s

A meeting has 3-5 speakers of distinct persons (one language, or mixed when no language has enough),
`--minutes` long (`--meetings` of them), plus one of `--long-minutes` (0: none) with the speakers that have
the most speech. A turn is one or a few clips of one speaker, every clip scaled to the same speech level;
turns are separated by pauses of 0.2-1.5 s or, for about 5 % of the speech, overlap the previous one.
The RTTM comes from the energy labeller (EnergyVAD) run on each clip: pauses of 0.3 s or more split a
segment. Every choice is seeded: the same corpus and seed give the same files.

    python make_meetings.py CORPUS OUT [--meetings 8] [--minutes "1 3"] [--long-minutes 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from build_corpus import place  # the sibling script: a hard link, or a copy where refused
from speakembed.models.augment import reverberate, synthetic_noise, synthetic_rir, telephone_band
from speakembed.models.signal import resample
from speakembed.pipelines.audio.decode import load_audio
from speakembed.pipelines.audio.vad import energy_trim_region, merge_regions, speech_regions
from speakembed.pipelines.data.rttm import SPEAKER_LINE

RATE = 16000
TELEPHONE_RATE = 8000
VARIANTS = ("clean", "reverb", "telephone")
LEVEL_DBFS = -26.0  # speech RMS of every clip: level-matched turns
PEAK_DBFS = -3.0  # of every file written, as ../../shared/data/dev
NOISE_FLOOR_DBFS = -70.0  # a faint room noise, so that the pauses are not digital zeros
SPLIT_PAUSE_S = 0.3  # pauses at least this long split an RTTM segment
EDGE_S = 0.1  # audio kept either side of a clip's labelled speech
FADE_S = 0.01
SPEAKERS = (3, 5)
PAUSE_S = (0.2, 1.5)  # between turns (speech to speech)
IN_TURN_GAP_S = (0.1, 0.4)  # between the clips of one turn
TURN_S = (1.5, 6.0)  # speech wanted in a turn; short turns are one clip
SHORT_TURN_RATE = 0.2
SHORT_TURN_S = 2.0  # turns shorter than this count as short in meetings.tsv
OVERLAP_TARGET = 0.05  # of the speech
OVERLAP_S = (0.4, 1.5)  # at most a third of either turn
REF_S = (4.0, 8.0)
REF_GAP_S = 0.2
MIN_MEETING_SPEECH_S = 3.0  # a speaker needs this much beside the reference
RT60_S = (0.3, 0.8)


@dataclass
class Clip:
    """A level-matched clip cut to its labelled speech (± EDGE_S); `regions` are sample ranges in it,
    `source` the clip's path in CORPUS/dev."""

    source: str
    samples: np.ndarray
    regions: list[tuple[int, int]]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / RATE

    @property
    def speech_s(self) -> float:
        return sum(end - start for start, end in self.regions) / RATE


@dataclass
class Voice:
    """A dev speaker of the corpus and its usable clips (folder order)."""

    name: str
    person: str
    language: str
    clips: list[Clip]

    @property
    def speech_s(self) -> float:
        return sum(clip.speech_s for clip in self.clips)


@dataclass
class Placed:
    speaker: str
    clip: Clip
    offset: int  # sample of the meeting where clip.samples[0] lands


@dataclass
class Meeting:
    id: str
    voices: list[Voice]
    refs: dict[str, list[Clip]]
    placed: list[Placed] = field(default_factory=list)
    turn_spans_s: list[float] = field(default_factory=list)
    length: int = 0  # samples

    def segments(self) -> list[tuple[str, int, int]]:
        """(speaker, start, end) in samples, sorted by start; a speaker's pauses < SPLIT_PAUSE_S are bridged."""
        by_speaker: dict[str, list[tuple[int, int]]] = {}
        for item in self.placed:
            by_speaker.setdefault(item.speaker, []).extend(
                (item.offset + start, item.offset + end) for start, end in item.clip.regions)
        segments = [(speaker, start, end) for speaker, regions in by_speaker.items()
                    for start, end in merge_regions(sorted(regions), max_gap=SPLIT_PAUSE_S * RATE - 1)]
        return sorted(segments, key=lambda segment: (segment[1], segment[0]))


def labelled_speech(waveform: np.ndarray) -> list[tuple[int, int]]:
    """The energy labeller: EnergyVAD regions (samples) with pauses shorter than SPLIT_PAUSE_S bridged."""
    return merge_regions(speech_regions(waveform, RATE, method="energy"), max_gap=SPLIT_PAUSE_S * RATE - 1)


def load_clip(path: Path, dev: Path) -> Clip | None:
    """The clip at `path` (in the folder `dev`), scaled to LEVEL_DBFS speech RMS and cut to its labelled
    speech; None when it holds none."""
    raw = load_audio(path, RATE)
    start, end = energy_trim_region(raw, RATE)
    if end - start < EDGE_S * RATE:
        return None
    gain = 10 ** (LEVEL_DBFS / 20) / np.sqrt(np.mean(np.square(raw[start:end], dtype=np.float64)))
    scaled = (raw * gain).astype(np.float32)
    regions = labelled_speech(scaled)
    if not regions:
        return None
    edge = int(EDGE_S * RATE)
    first, last = max(0, regions[0][0] - edge), min(len(scaled), regions[-1][1] + edge)
    return Clip(str(path.relative_to(dev)), faded(scaled[first:last]),
                [(start - first, end - first) for start, end in regions])


def faded(waveform: np.ndarray) -> np.ndarray:
    """Short raised-cosine ramps at both ends, so a cut clip does not click."""
    ramp = min(int(FADE_S * RATE), len(waveform) // 2)
    window = np.ones(len(waveform), np.float32)
    if ramp:
        rise = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))).astype(np.float32)
        window[:ramp], window[len(waveform) - ramp:] = rise, rise[::-1]
    return waveform * window


def dev_voices(corpus: Path) -> list[Voice]:
    """Every labelled, reliable dev speaker with enough speech for a reference and a few turns."""
    labels = corpus / "labels.tsv"
    if not labels.is_file():
        raise SystemExit(f"{labels}: no such file; build the corpus first (run.sh stage 2)")
    with open(labels) as table:
        rows = [row for row in csv.DictReader(table, delimiter="\t")
                if row["split"] == "dev" and row["labelled"] == "True" and row["reliable"] == "True"]
    voices = []
    for row in rows:
        check_speaker_name(row["speaker"])
        paths = sorted((corpus / "dev" / row["speaker"]).iterdir())
        clips = [clip for clip in (load_clip(path, corpus / "dev") for path in paths) if clip is not None]
        voice = Voice(row["speaker"], row["person"], row["language"], clips)
        if voice.speech_s >= REF_S[0] + MIN_MEETING_SPEECH_S:
            voices.append(voice)
    if len({voice.person for voice in voices}) < SPEAKERS[0]:
        raise SystemExit(f"{corpus}: fewer than {SPEAKERS[0]} dev persons with {REF_S[0] + MIN_MEETING_SPEECH_S:g} s "
                         f"of speech; no meeting can be made")
    return voices


def check_speaker_name(name: str) -> None:
    """RTTM fields hold no whitespace; `spk diarise --refs` reads NAME=PATH and keeps `unknown` for itself."""
    if not name or any(character.isspace() for character in name) or "=" in name or name.startswith("unknown"):
        raise SystemExit(f"speaker '{name}' cannot name an RTTM speaker or a `spk diarise --refs` clip")


def choose_voices(voices: list[Voice], count: int, one_language: bool, rng: np.random.Generator) -> list[Voice]:
    """Up to `count` voices of distinct persons; with `one_language`, all of a language that has at
    least SPEAKERS[0] persons (fewer than `count` when it has fewer), where there is one."""
    persons = {language: len({voice.person for voice in voices if voice.language == language})
               for language in sorted({voice.language for voice in voices})}
    languages = [language for language, number in persons.items() if number >= SPEAKERS[0]]
    pool = voices
    if one_language and languages:
        language = rng.choice(languages)
        pool = [voice for voice in voices if voice.language == language]
    chosen: list[Voice] = []
    for index in rng.permutation(len(pool)):
        if pool[index].person not in {voice.person for voice in chosen}:
            chosen.append(pool[index])
    return chosen[:count]


def richest_voices(voices: list[Voice], count: int) -> list[Voice]:
    """The `count` voices of distinct persons with the most speech (for the long meeting)."""
    chosen: list[Voice] = []
    for voice in sorted(voices, key=lambda voice: (-voice.speech_s, voice.name)):
        if voice.person not in {other.person for other in chosen}:
            chosen.append(voice)
    return chosen[:count]


def split_reference(voice: Voice, rng: np.random.Generator) -> tuple[list[Clip], list[Clip]]:
    """(reference clips of REF_S seconds with their gaps, the remaining clips in a random order)."""
    shuffled = [voice.clips[index] for index in rng.permutation(len(voice.clips))]
    reference, rest, total_s = [], [], 0.0
    for clip in shuffled:
        extra_s = clip.duration_s + (REF_GAP_S if reference else 0.0)
        if total_s < REF_S[0] and total_s + extra_s <= REF_S[1]:
            reference.append(clip)
            total_s += extra_s
        else:
            rest.append(clip)
    return reference, rest


def plan_meeting(meeting_id: str, voices: list[Voice], target_s: float, rng: np.random.Generator) -> Meeting:
    """Turns of the chosen voices until `target_s` seconds or until the clips run out: every voice
    speaks once in a random order, then `next_speaker` picks each turn's voice."""
    refs, pools = {}, {}
    for voice in voices:
        refs[voice.name], pools[voice.name] = split_reference(voice, rng)
    meeting = Meeting(meeting_id, voices, refs)
    opening = [voices[index].name for index in rng.permutation(len(voices)) if pools[voices[index].name]]
    speech_end_s, previous_span_s, speech_s, overlap_s, previous = None, 0.0, 0.0, 0.0, None
    while speech_end_s is None or speech_end_s < target_s:
        speaker = opening.pop(0) if opening else next_speaker(pools, previous, rng)
        if speaker is None:
            break
        turn, span_s = take_turn(pools[speaker], rng)
        if speech_end_s is None:
            start_s = rng.uniform(0.5, 1.0)
        elif overlap_s < OVERLAP_TARGET * (speech_s + span_s) and rng.random() < 0.5:
            overlap = min(rng.uniform(*OVERLAP_S), previous_span_s / 3, span_s / 3)
            start_s, overlap_s, speech_s = speech_end_s - overlap, overlap_s + overlap, speech_s - overlap
        else:
            start_s = speech_end_s + rng.uniform(*PAUSE_S)
        meeting.placed += [Placed(speaker, clip, int(round((start_s + offset_s) * RATE)) - clip.regions[0][0])
                           for clip, offset_s in turn]
        meeting.turn_spans_s.append(span_s)
        speech_end_s, previous_span_s, speech_s, previous = start_s + span_s, span_s, speech_s + span_s, speaker
    meeting.length = max(item.offset + len(item.clip.samples) for item in meeting.placed) + int(0.5 * RATE)
    return meeting


def next_speaker(pools: dict[str, list[Clip]], previous: str | None, rng: np.random.Generator) -> str | None:
    """A speaker other than `previous` with clips left, drawn uniformly; None when there is none.
    (Uniform, not by speech left: else the two big tuxpaint voices would hold nearly every turn.)"""
    names = [name for name, clips in pools.items() if clips and name != previous]
    return names[int(rng.integers(len(names)))] if names else None


def take_turn(pool: list[Clip], rng: np.random.Generator) -> tuple[list[tuple[Clip, float]], float]:
    """Clips taken off the front of `pool` for one turn, each with the time (s) of its first speech
    from the turn's first speech, and the turn's speech span (s)."""
    wanted_s = 0.0 if rng.random() < SHORT_TURN_RATE else rng.uniform(*TURN_S)
    turn, cursor_s = [], 0.0
    while pool and (not turn or cursor_s < wanted_s):
        clip = pool.pop(0)
        if turn:
            cursor_s += rng.uniform(*IN_TURN_GAP_S)
        turn.append((clip, cursor_s))
        cursor_s += (clip.regions[-1][1] - clip.regions[0][0]) / RATE
    return turn, cursor_s


def render(meeting: Meeting, variant: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(waveform, sample rate) of one variant of the meeting, with its noise floor, peak at PEAK_DBFS."""
    if variant == "reverb":
        rt60_s = rng.uniform(*RT60_S)
        rooms = {voice.name: synthetic_rir(rt60_s, rng, RATE) for voice in meeting.voices}  # one position each
        mix = np.zeros(meeting.length + max(map(len, rooms.values())), np.float32)
        for item in meeting.placed:
            room = rooms[item.speaker]
            wet = reverberate(np.pad(item.clip.samples, (0, len(room))), room)  # padded: the tail rings on
            mix[item.offset: item.offset + len(wet)] += wet
        return finished(mix[: meeting.length], rng), RATE
    mix = np.zeros(meeting.length, np.float32)
    for item in meeting.placed:
        mix[item.offset: item.offset + len(item.clip.samples)] += item.clip.samples
    mix = finished(mix, rng)
    if variant == "telephone":
        return peak_scaled(resample(telephone_band(mix, rng, RATE), RATE, TELEPHONE_RATE)), TELEPHONE_RATE
    return mix, RATE


def finished(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`waveform` with the room's noise floor added, peak at PEAK_DBFS."""
    noise = synthetic_noise("white", len(waveform), rng, RATE) * 10 ** (NOISE_FLOOR_DBFS / 20)
    return peak_scaled(waveform + noise)


def peak_scaled(waveform: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(waveform))) if len(waveform) else 0.0
    return (waveform * (10 ** (PEAK_DBFS / 20) / peak) if peak else waveform).astype(np.float32)


def reference_audio(clips: list[Clip], rng: np.random.Generator) -> np.ndarray:
    """The reference clips joined by REF_GAP_S pauses, with the noise floor, peak at PEAK_DBFS."""
    gap = np.zeros(int(REF_GAP_S * RATE), np.float32)
    joined = [part for clip in clips for part in (gap, clip.samples)][1:]
    return finished(np.concatenate(joined), rng)


def rttm_text(meeting: Meeting) -> str:
    return "".join(SPEAKER_LINE.format(recording_id=meeting.id, start_s=start / RATE, duration_s=(end - start) / RATE,
                                       speaker=speaker) for speaker, start, end in meeting.segments())


def statistics(meeting: Meeting) -> dict[str, float]:
    """Speech and overlapped speech (seconds, where at least one / two speakers talk), and their ratio."""
    talking = np.zeros(meeting.length, np.int8)
    for _, start, end in meeting.segments():
        talking[start:end] += 1
    speech_s, overlap_s = np.count_nonzero(talking) / RATE, np.count_nonzero(talking > 1) / RATE
    return {"speech_s": round(speech_s, 2), "overlap_s": round(overlap_s, 2),
            "overlap_fraction": round(overlap_s / speech_s, 4) if speech_s else 0.0}


def sources(meeting: Meeting) -> list[dict]:
    """Which corpus clip went where: each turn clip with the meeting time (s) of its first sample, each
    reference clip with its time in the reference file."""
    rows = [{"meeting": meeting.id, "speaker": item.speaker, "clip": item.clip.source, "use": "turn",
             "start_s": round(item.offset / RATE, 3)} for item in meeting.placed]
    for speaker, clips in meeting.refs.items():
        start_s = 0.0
        for clip in clips:
            rows.append({"meeting": meeting.id, "speaker": speaker, "clip": clip.source, "use": "reference",
                         "start_s": round(start_s, 3)})
            start_s += clip.duration_s + REF_GAP_S
    return rows


def write_table(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as table:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def write_meeting(meeting: Meeting, out: Path, seed: int, index: int) -> list[dict]:
    """Every variant's audio and RTTM, the clean references (linked into each variant), and the table rows."""
    reference_folder = out / "clean" / meeting.id / "refs"
    reference_folder.mkdir(parents=True, exist_ok=True)
    ref_s = []
    for number, voice in enumerate(meeting.voices):
        audio = reference_audio(meeting.refs[voice.name], np.random.default_rng([seed, index, 100 + number]))
        soundfile.write(str(reference_folder / f"{voice.name}.flac"), audio, RATE)
        ref_s.append(f"{len(audio) / RATE:.1f}")
    rows, stats = [], statistics(meeting)
    for number, variant in enumerate(VARIANTS):
        folder = out / variant
        audio, rate = render(meeting, variant, np.random.default_rng([seed, index, number]))
        soundfile.write(str(folder / f"{meeting.id}.flac"), audio, rate)
        (folder / f"{meeting.id}.rttm").write_text(rttm_text(meeting))
        for voice in meeting.voices:
            place(reference_folder / f"{voice.name}.flac", folder / meeting.id / "refs" / f"{voice.name}.flac")
        rows.append({"meeting": meeting.id, "variant": variant, "sample_rate": rate,
                     "speakers": ",".join(voice.name for voice in meeting.voices),
                     "languages": ",".join(voice.language for voice in meeting.voices),
                     "n_speakers": len(meeting.voices), "duration_s": round(len(audio) / rate, 2), **stats,
                     "turns": len(meeting.turn_spans_s),
                     "short_turns": sum(span < SHORT_TURN_S for span in meeting.turn_spans_s),
                     "ref_s": ",".join(ref_s)})
    return rows


def plans(voices: list[Voice], count: int, minutes: tuple[float, float], long_minutes: float,
          seed: int) -> list[Meeting]:
    """The meetings to make: `count` of `minutes` (deb_m01, deb_m03, ... of one language where possible),
    then the long one."""
    meetings = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        speakers = int(rng.integers(SPEAKERS[0], SPEAKERS[1] + 1))
        chosen = choose_voices(voices, speakers, one_language=index % 2 == 0, rng=rng)
        meetings.append(plan_meeting(f"deb_m{index + 1:02d}", chosen, rng.uniform(*minutes) * 60, rng))
    if long_minutes > 0:
        rng = np.random.default_rng([seed, count])
        meetings.append(plan_meeting("deb_long", richest_voices(voices, SPEAKERS[1]), long_minutes * 60, rng))
    return meetings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--meetings", type=int, default=8)
    parser.add_argument("--minutes", default="1 3", help="shortest and longest meeting, in minutes")
    parser.add_argument("--long-minutes", type=float, default=20.0, help="the long meeting (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    minutes = tuple(float(value) for value in args.minutes.split())
    if len(minutes) != 2 or not 0 < minutes[0] <= minutes[1]:
        raise SystemExit(f"--minutes '{args.minutes}': give the shortest and the longest, e.g. '1 3'")
    voices = dev_voices(args.corpus)
    for variant in VARIANTS:
        (args.out / variant).mkdir(parents=True, exist_ok=True)
    rows, clips = [], []
    for index, meeting in enumerate(plans(voices, args.meetings, minutes, args.long_minutes, args.seed)):
        rows += write_meeting(meeting, args.out, args.seed, index)
        clips += sources(meeting)
        clean = rows[-len(VARIANTS)]
        print(f"{meeting.id}: {clean['duration_s']:.0f} s, {clean['n_speakers']} speakers ({clean['languages']}), "
              f"{clean['turns']} turns, {100 * clean['overlap_fraction']:.1f} % overlapped speech", file=sys.stderr)
    write_table(args.out / "meetings.tsv", rows)
    write_table(args.out / "sources.tsv", clips)


if __name__ == "__main__":
    main()
