"""`spk enrol`: add people's voices to a speaker database (pipelines/data/speaker_db.py), rename or
remove them, list them.

`run(db, name, clips)` embeds every clip with the database's encoder and adds them to `name`
(creating the database, or the name, when new). All or nothing: a clip that is missing,
unreadable, silent or too short fails the whole call with that clip's error, and the database
stays as it was. A clip whose audio is already enrolled under the same name is skipped (and
reported); under another name it is refused, since one recording cannot be two people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from speakembed.pipelines.audio.clips import Clip, embed_speech, speech_of_clips
from speakembed.pipelines.base.errors import InputNotFoundError, SpeakEmbedError, UsageError
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.base.progress import Progress, report_progress
from speakembed.pipelines.data.items import collect_items
from speakembed.pipelines.data.speaker_db import (
    EncoderIdentity,
    EnrolledClip,
    SpeakerDatabase,
    check_new_database_folder,
    check_speaker_name,
    is_database,
    load_database_encoder,
    new_database,
    now,
    open_database,
)
from speakembed.pipelines.scoring.backend import DEFAULT_BACKEND, NO_BACKEND


@dataclass(frozen=True)
class EnrolConfig:
    """Settings of `spk enrol`: encoder/checkpoint (None: the database's; the default encoder for
    a new one), back-end (None: the database's; "default" for a new one), VAD (None: the
    database's; silero for a new one) and device. The first enrolment fixes encoder, back-end
    and VAD for the database."""

    encoder: str | None = None
    checkpoint: str | None = None
    backend: str | None = None
    vad: str | None = None
    device: str | None = None


@dataclass
class EnrolReport:
    """What `spk enrol NAME CLIP...` did: the database, the name, the encoder id, the clip ids
    added, the clips skipped as already enrolled, the name's clip count and the speaker count
    afterwards, whether the database was created, and how many clips were embedded without VAD."""

    database: Path
    name: str
    encoder: str
    added: list[str] = field(default_factory=list)
    already_enrolled: list[str] = field(default_factory=list)
    clips: int = 0
    speakers: int = 0
    created: bool = False
    vad_fallback: int = 0

    def to_dict(self) -> dict:
        """The report as JSON-ready values (`--json`)."""
        return {**asdict(self), "database": str(self.database)}


@dataclass(frozen=True)
class SpeakerSummary:
    """One enrolled speaker as `spk enrol --list` shows it: name, clips, seconds of speech, and
    clips embedded without VAD."""

    name: str
    clips: int
    speech_s: float
    vad_fallback: int

    @classmethod
    def of(cls, name: str, clips: tuple[EnrolledClip, ...]) -> "SpeakerSummary":
        """The summary of `name`'s enrolled `clips`."""
        return cls(name, len(clips), round(sum(clip.speech_s for clip in clips), 2),
                   sum(clip.vad_fallback for clip in clips))


def run(database: str | Path, name: str, clips: list[str | Path | Clip], *, config: EnrolConfig = EnrolConfig(),
        embedder=None, progress: Progress | None = None) -> EnrolReport:
    """Enrol `clips` (audio files, folders of them, or `Clip`s) as speaker `name` in the database
    folder `database`, created when it does not exist (see the module docstring).

    `embedder`: an encoder already loaded (the Python API keeps one), else it is loaded here.
    Raises the typed error of the first clip that cannot be embedded, ManifestError for a folder
    that is not a database or was made with another encoder, UsageError for a bad name.
    """
    check_speaker_name(name)
    existing = open_database(database) if is_database(database) else None
    if existing is None:
        check_new_database_folder(database)
    clips = _expand(clips)
    embedder = embedder or load_database_encoder(existing, config.encoder, config.checkpoint, config.device)
    target = existing or _new_database(database, embedder, config)
    if existing is not None:
        existing.require_encoder(embedder.encoder_id)
        _check_same_setting(existing, "back-end", "--backend", existing.backend, _backend_value(config.backend))
        _check_same_setting(existing, "VAD", "--vad", existing.vad, config.vad)
    else:
        target.scorer()  # refuse a back-end file fitted for other weights before any work
    prepare_output_folder(target.path.parent)

    fresh, repeated = _new_audio(target, name, clips)
    enrolled = _embedded_clips(fresh, embedder, target.vad, progress)
    updated = target.with_clips(name, enrolled)
    if enrolled:
        updated.save()
    return EnrolReport(updated.path, name, embedder.encoder_id,
                       [clip.clip_id for clip in updated.speakers[name][-len(enrolled):]] if enrolled else [],
                       repeated, len(updated.speakers.get(name, ())), len(updated.names), existing is None,
                       sum(clip.vad_fallback for clip in enrolled))


def rename(database: str | Path, old: str, new: str) -> SpeakerDatabase:
    """Call speaker `old` `new` in the database (UsageError when `old` is not enrolled or `new`
    already is); returns the saved database."""
    updated = open_database(database).renamed(old, new)
    updated.save()
    return updated


def remove(database: str | Path, name: str) -> SpeakerDatabase:
    """Remove speaker `name` and its clips from the database (UsageError when it is not
    enrolled); returns the saved database."""
    updated = open_database(database).without(name)
    updated.save()
    return updated


def listing(database: str | Path) -> tuple[SpeakerDatabase, list[SpeakerSummary]]:
    """The database and a summary of each enrolled speaker, in enrolment order."""
    opened = open_database(database)
    return opened, [SpeakerSummary.of(name, clips) for name, clips in opened.speakers.items()]


def _expand(clips: list[str | Path | Clip]) -> list[Clip]:
    """`Clip`s as they are; files and folders (searched recursively) as the clips of their items."""
    if not clips:
        raise InputNotFoundError("nothing to enrol; give audio files or folders of a speaker's recordings")
    # one input at a time: the same file named twice, or two folders with the same layout, are
    # not an id clash here (enrolled audio is told apart by its hash)
    return [each for clip in clips
            for each in ([clip] if isinstance(clip, Clip) else [Clip.of_item(item) for item in collect_items([clip])])]


def _new_database(database: str | Path, embedder, config: EnrolConfig) -> SpeakerDatabase:
    identity = EncoderIdentity.of(embedder, config.encoder or embedder.spec.name, config.checkpoint)
    return new_database(database, identity, backend=_backend_value(config.backend) or DEFAULT_BACKEND,
                        vad=config.vad or "silero")


def _backend_value(backend: str | None) -> str | None:
    """`--backend` as a database records it: default, none, or a back-end file's absolute path."""
    if backend in (None, DEFAULT_BACKEND, NO_BACKEND):
        return backend
    return str(Path(backend).absolute())


def _check_same_setting(database: SpeakerDatabase, what: str, option: str, recorded: str, given: str | None) -> None:
    """UsageError when `given` (None: not given) differs from the database's `recorded` setting."""
    if given is not None and given != recorded:
        raise UsageError(f"{database.path}: this database was made with {what} '{recorded}', not '{given}'; "
                         f"leave {option} out to enrol into it")


def _new_audio(database: SpeakerDatabase, name: str, clips: list[Clip]) -> tuple[list[tuple[Clip, str]], list[str]]:
    """(clip, audio hash) of the clips whose audio is not enrolled yet (once each), and the
    sources of those that are (under `name`); UsageError for audio enrolled under another name."""
    fresh, repeated, seen = [], [], set()
    for clip in clips:
        digest = clip.audio_sha256()
        owner = database.speaker_of_audio(digest)
        if owner is not None and owner != name:
            raise UsageError(f"{clip.source}: this recording is already enrolled as '{owner}'; one recording "
                             "cannot be two people (remove it from them first)")
        if owner == name or digest in seen:
            repeated.append(clip.source)
            continue
        seen.add(digest)
        fresh.append((clip, digest))
    return fresh, repeated


def _embedded_clips(fresh: list[tuple[Clip, str]], embedder, vad: str, progress: Progress | None) -> list[EnrolledClip]:
    """EnrolledClips of `fresh` (clip, audio hash) pairs; raises the first clip's error, saying
    that nothing was enrolled."""
    speech = speech_of_clips([clip for clip, _ in fresh], embedder.spec, vad)
    for result in speech:
        if isinstance(result, SpeakEmbedError):
            result.args = (f"{result}; nothing was enrolled",)  # same type, so the same exit code
            raise result
    report_progress(progress, "enrolling", 0, len(fresh))
    embeddings = embed_speech(speech, embedder, progress, "enrolling")
    rate = embedder.spec.sample_rate
    enrolled_at = now()
    return [EnrolledClip("", clip.source, digest, round(len(samples) / rate, 3), bool(samples.vad_fallback), enrolled_at,
                         embedding)
            for (clip, digest), samples, embedding in zip(fresh, speech, embeddings)]
