"""Corpus readers: one small function per on-disk layout, each returning the corpus's utterances.

Layouts (ROOT is the folder given to `spk preprocess CORPUS ROOT`):
    librispeech  ROOT/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac, transcripts in
                 ROOT/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt ("<utt id> TEXT" lines).
    voxceleb     ROOT/<id>/<video>/<utt>.wav (VoxCeleb1) or .m4a (VoxCeleb2, decoded by ffmpeg);
                 an optional trial list in ROOT (veri_test2.txt, list_test_all2.txt, or any *.txt
                 of "1 id/video/utt.wav id/video/utt.wav" lines) sends its speakers to the test split.
    commonvoice  ROOT/validated.tsv (client_id, path, sentence, up_votes, down_votes, gender,
                 locale, ...) with the clips in ROOT/clips/<path>; vote and per-speaker filters apply.
    folder       ROOT/<speaker>/.../<file> for any audio format; the speaker is the first folder.

Recording ids: librispeech "<speaker>-<chapter>-<utt>", voxceleb "<id>/<video>/<utt>",
commonvoice the clip's file name without extension, folder the path relative to ROOT.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, SpeakEmbedError
from speakembed.pipelines.data.items import Item, audio_files_under, items_fingerprint
from speakembed.pipelines.data.trials import read_trials

CORPORA = ("librispeech", "voxceleb", "commonvoice", "folder")
SPLITS = ("train", "dev", "test")
VOXCELEB_EXTENSIONS = {".wav", ".m4a"}
VOXCELEB_TRIAL_LISTS = ("veri_test2.txt", "veri_test.txt", "list_test_all2.txt", "list_test_all.txt",
                        "list_test_hard2.txt", "list_test_hard.txt")
_VOXCELEB_TRIAL_LINE = re.compile(r"^[01]\s+\S+/\S+/\S+\s+\S+/\S+/\S+$")
COMMONVOICE_COLUMNS = ("client_id", "path", "sentence", "up_votes", "down_votes")


class EmptySelectionError(SpeakEmbedError):
    """The corpus filters left no utterance; the message names the filter that did it."""

    exit_code = 5


@dataclass(frozen=True)
class Utterance:
    """One recording of the corpus, used whole. `gender` is None where the corpus does not say."""

    recording_id: str
    path: Path
    speaker: str
    text: str = ""
    language: str = ""
    gender: str | None = None


@dataclass(frozen=True)
class Corpus:
    """What a reader found: utterances in a stable order, and a trial list when the corpus has one
    (columns enroll, test, label with recording ids; its speakers are `test_speakers`)."""

    name: str
    root: Path
    utterances: list[Utterance]
    trials: pd.DataFrame | None = None
    trial_list: Path | None = None

    @property
    def speakers(self) -> list[str]:
        """The speaker labels of the corpus, sorted."""
        return sorted({utterance.speaker for utterance in self.utterances})

    @property
    def test_speakers(self) -> set[str]:
        """Speakers named by the corpus's own trial list (its first path component), empty without one."""
        if self.trials is None:
            return set()
        ids = pd.concat([self.trials["enroll"], self.trials["test"]])
        return {PurePosixPath(str(trial_id)).parts[0] for trial_id in ids}

    def fingerprint(self) -> str:
        """Changes when a file is added, removed or modified, or any metadata or trial changes."""
        digest = hashlib.sha256(self.name.encode())
        digest.update(items_fingerprint([Item(u.recording_id, u.path) for u in self.utterances]).encode())
        for utterance in self.utterances:
            digest.update(repr((utterance.speaker, utterance.text, utterance.language, utterance.gender)).encode())
        if self.trials is not None:
            digest.update(self.trials.to_csv(index=False).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class CommonVoiceFilters:
    """Which validated Common Voice clips to keep. Counts are clips; None means no limit."""

    min_upvotes: int = 2
    max_downvotes: int = 0
    min_recordings_per_speaker: int = 2
    max_recordings_per_speaker: int | None = None


def read_corpus(name: str, root: str | Path, *, commonvoice: CommonVoiceFilters = CommonVoiceFilters()) -> Corpus:
    """Read the corpus `name` (one of CORPORA) laid out under `root`."""
    if name not in CORPORA:
        raise SpeakEmbedError(f"unknown corpus '{name}'; choose one of: {', '.join(CORPORA)}")
    root = Path(root)
    if not root.is_dir():
        raise InputNotFoundError(f"{root}: no such folder; give the root folder of the {name} corpus")
    if name == "commonvoice":
        return read_commonvoice(root, commonvoice)
    return {"librispeech": read_librispeech, "voxceleb": read_voxceleb, "folder": read_folder}[name](root)


def read_librispeech(root: Path) -> Corpus:
    """ROOT/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac with per-chapter transcripts."""
    files = sorted(path for path in root.glob("*/*/*.flac")
                   if path.stem.startswith(f"{path.parts[-3]}-{path.parts[-2]}-"))
    _require_files(files, root, "librispeech", "ROOT/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac")
    texts: dict[str, str] = {}
    for transcript in sorted(root.glob("*/*/*.trans.txt")):
        texts.update(_transcript_lines(transcript))
    return Corpus("librispeech", root, [
        Utterance(path.stem, path, path.parts[-3], texts.get(path.stem, ""), "en") for path in files
    ])


def read_voxceleb(root: Path) -> Corpus:
    """ROOT/<id>/<video>/<utt>.wav|.m4a, and the trial list in ROOT if there is one."""
    files = sorted(path for path in root.glob("*/*/*") if path.suffix.lower() in VOXCELEB_EXTENSIONS and path.is_file())
    _require_files(files, root, "voxceleb", "ROOT/<id>/<video>/<utt>.wav (or .m4a)")
    utterances = [Utterance(_without_suffix(path.relative_to(root).as_posix()), path, path.parts[-3]) for path in files]
    trial_list = find_voxceleb_trial_list(root)
    trials = None
    if trial_list is not None:
        trials = read_trials(trial_list)
        trials["enroll"] = trials["enroll"].map(_without_suffix).astype("string")
        trials["test"] = trials["test"].map(_without_suffix).astype("string")
    return Corpus("voxceleb", root, utterances, trials, trial_list)


def find_voxceleb_trial_list(root: Path) -> Path | None:
    """The official list names first, then any other ROOT/*.txt whose first line is a VoxCeleb trial."""
    named = [root / name for name in VOXCELEB_TRIAL_LISTS]
    others = sorted(path for path in root.glob("*.txt") if path.name not in VOXCELEB_TRIAL_LISTS)
    for candidate in named + others:
        if candidate.is_file() and _looks_like_voxceleb_trials(candidate):
            return candidate
    return None


def read_commonvoice(root: Path, filters: CommonVoiceFilters = CommonVoiceFilters()) -> Corpus:
    """ROOT/validated.tsv and ROOT/clips/, keeping the clips that pass `filters`."""
    table = _validated_table(root)
    table = _apply(table, table["up_votes"] >= filters.min_upvotes, f"--min-upvotes {filters.min_upvotes}")
    table = _apply(table, table["down_votes"] <= filters.max_downvotes, f"--max-downvotes {filters.max_downvotes}")
    counts = table.groupby("client_id")["path"].transform("size")
    table = _apply(table, counts >= filters.min_recordings_per_speaker,
                   f"--min-recordings-per-speaker {filters.min_recordings_per_speaker}")
    if filters.max_recordings_per_speaker is not None:
        table = table.sort_values(["client_id", "path"]).groupby("client_id").head(filters.max_recordings_per_speaker)
    language = table["locale"] if "locale" in table.columns else pd.Series(root.name, index=table.index)
    gender = table["gender"] if "gender" in table.columns else pd.Series("", index=table.index)
    table = table.assign(language=language, gender=gender).sort_values("path")
    return Corpus("commonvoice", root, [
        Utterance(PurePosixPath(row.path).stem, _clip_path(root, row.path), row.client_id, row.sentence,
                  row.language, row.gender or None)
        for row in table.itertuples(index=False)
    ])


def read_folder(root: Path) -> Corpus:
    """ROOT/<speaker>/.../<file>: every audio file below a speaker folder (files in ROOT itself are
    ignored); symlinked speaker folders and files are followed (see `audio_files_under`)."""
    files = [path for path in audio_files_under(root) if len(path.relative_to(root).parts) >= 2]
    _require_files(files, root, "folder", "ROOT/<speaker>/<any sub-folders>/<file>.wav|.flac|...")
    return Corpus("folder", root, [
        Utterance(path.relative_to(root).as_posix(), path, path.relative_to(root).parts[0]) for path in files
    ])


def assign_split(speaker: str, dev_fraction: float, test_fraction: float) -> str:
    """'train', 'dev' or 'test' for `speaker`, from the sha1 of its id mapped into [0, 1):
    the same speaker always lands in the same split, on any machine and in any corpus order."""
    if dev_fraction < 0 or test_fraction < 0 or dev_fraction + test_fraction > 1:
        raise ValueError(f"split fractions dev {dev_fraction} and test {test_fraction} must be >= 0 and sum to <= 1")
    position = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest()[:15], 16) / 16**15
    if position < test_fraction:
        return "test"
    return "dev" if position < test_fraction + dev_fraction else "train"


def speaker_splits(corpus: Corpus, dev_fraction: float, test_fraction: float) -> dict[str, str]:
    """speaker -> split for every speaker of `corpus`; trial-list speakers always go to test."""
    forced = corpus.test_speakers
    return {speaker: "test" if speaker in forced else assign_split(speaker, dev_fraction, test_fraction)
            for speaker in corpus.speakers}


def _require_files(files: list[Path], root: Path, corpus: str, layout: str) -> None:
    if not files:
        raise InputNotFoundError(f"{root}: no audio in the {corpus} layout; expected {layout}")


def _transcript_lines(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in map(str.strip, lines) if line)


def _without_suffix(recording: str) -> str:
    return PurePosixPath(recording).with_suffix("").as_posix()


def _looks_like_voxceleb_trials(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next((line.strip() for line in handle if line.strip()), "")
    return bool(_VOXCELEB_TRIAL_LINE.match(first))


def _validated_table(root: Path) -> pd.DataFrame:
    path = root / "validated.tsv"
    if not path.is_file():
        raise InputNotFoundError(f"{root}: no validated.tsv; expected the commonvoice layout "
                                 "ROOT/validated.tsv with the clips in ROOT/clips/")
    table = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    missing = [column for column in COMMONVOICE_COLUMNS if column not in table.columns]
    if missing:
        raise ManifestError(f"{path}: lacks the Common Voice columns {missing}")
    votes = table[["up_votes", "down_votes"]].apply(pd.to_numeric, errors="coerce")
    if votes.isna().any().any():
        raise ManifestError(f"{path}: up_votes and down_votes must be whole numbers")
    table = table.assign(up_votes=votes["up_votes"], down_votes=votes["down_votes"])
    if table.empty:
        raise InputNotFoundError(f"{path}: lists no clips")
    return table


def _apply(table: pd.DataFrame, keep: pd.Series, option: str) -> pd.DataFrame:
    """`table[keep]`, refusing a filter that leaves nothing."""
    kept = table[keep]
    if kept.empty:
        raise EmptySelectionError(f"the filter {option} left none of the {len(table)} clips; relax it")
    return kept


def _clip_path(root: Path, name: str) -> Path:
    path = root / "clips" / name
    return path if path.suffix else path.with_suffix(".mp3")  # early releases list names without .mp3
