"""The speaker database on disk (`spk enrol --db voices/`): enrolled people, their clips' embeddings
and each person's centroid, tied to the encoder (and back-end) that made them.

Folder layout (schema `speaker-database`, version 1):
    voices/database.json   schema stamp; encoder id (`name@weights-hash`, which covers a checkpoint),
                           the `--encoder` name and checkpoint folder to load it again, embedding
                           size, back-end, VAD, the cosine threshold to start from; per speaker, in
                           enrolment order, its clips: clip id, source, sha256 of the audio,
                           seconds of speech, vad_fallback, time enrolled
    voices/clips.zarr      an embeddings store (pipelines/data/stores.py): one row per clip, item
                           ids `<speaker>/<clip file name>` (so `spk evaluate verification
                           --embeddings voices/clips.zarr` reads it as SPEAKER/UTTERANCE)
    voices/centroids.zarr  an embeddings store: one row per speaker (item id = name), the
                           unit-length mean of its clips' embeddings
Embeddings are stored as the encoder gave them; a back-end is applied when they are scored.

Every change writes a complete new folder beside the old one and swaps it in
(`base.outputs.replace_folder_atomically`), so a failed or interrupted update leaves the database
as it was. One writer at a time: two `spk enrol` runs on the same folder at once keep the later.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError, UsageError, some_ids
from speakembed.pipelines.base.outputs import replace_folder_atomically, write_text_atomically
from speakembed.pipelines.data.stores import EmbeddingStore, read_store, write_store
from speakembed.pipelines.scoring.metrics import unit_rows

DATABASE_SCHEMA = "speaker-database"
DATABASE_VERSION = 1
MANIFEST = "database.json"
CLIPS_STORE = "clips.zarr"
CENTROIDS_STORE = "centroids.zarr"
UNKNOWN = "unknown"  # the name of speech that matches no enrolled voice (identify, diarise)
WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class EnrolledClip:
    """One enrolled clip: its id in the database, where it came from, the sha256 of its audio (file
    bytes, or float32 samples for an array), seconds of speech embedded, whether the VAD kept too
    little (see pipelines/audio/speech.py), when it was enrolled, and its embedding (D,) float32."""

    clip_id: str
    source: str
    sha256: str
    speech_s: float
    vad_fallback: bool
    enrolled: str
    embedding: np.ndarray = field(repr=False, compare=False)

    def manifest_entry(self) -> dict:
        """The clip as database.json lists it (everything but the embedding)."""
        entry = asdict(self)
        del entry["embedding"]
        return entry


@dataclass(frozen=True)
class EncoderIdentity:
    """Which encoder made a database's embeddings: its id (`name@hash`), and how to load it again
    (the `--encoder` name, or a checkpoint folder), its embedding size and default threshold."""

    encoder_id: str
    name: str
    checkpoint: str | None
    embedding_size: int
    threshold: float | None = None  # the encoder's calibrated cosine threshold (model card), if any

    @classmethod
    def of(cls, embedder, name: str, checkpoint: str | None) -> "EncoderIdentity":
        """The identity of a loaded embedder (models.registry.load_encoder(name, ..., checkpoint))."""
        folder = str(Path(checkpoint).resolve()) if checkpoint else None
        return cls(embedder.encoder_id, name, folder, embedder.embedding_size, embedder.spec.default_threshold)


@dataclass(frozen=True)
class SpeakerDatabase:
    """A speaker database in memory: its folder, encoder, back-end and speakers (name -> clips, in
    enrolment order). Immutable: `with_clips`, `renamed`, `without` return changed copies, and
    `save` writes one to disk."""

    path: Path
    encoder: EncoderIdentity
    backend: str = "default"  # `--backend`: "default" (the encoder's shipped one), "none" or a back-end file
    vad: str = "silero"
    speakers: dict[str, tuple[EnrolledClip, ...]] = field(default_factory=dict)
    created: str = ""

    @property
    def names(self) -> list[str]:
        """Enrolled names, in enrolment order."""
        return list(self.speakers)

    def centroids(self) -> np.ndarray:
        """(speakers, D) float32: each speaker's unit-length mean clip embedding, in `names` order."""
        if not self.speakers:
            return np.zeros((0, self.encoder.embedding_size), dtype=np.float32)
        sums = np.stack([np.sum([clip.embedding for clip in clips], axis=0) for clips in self.speakers.values()])
        return unit_rows(sums).astype(np.float32)

    def clips_of(self, name: str) -> tuple[EnrolledClip, ...]:
        """The clips of an enrolled `name`; UsageError (with the enrolled names) for another."""
        if name not in self.speakers:
            raise UsageError(f"{self.path}: '{name}' is not enrolled (enrolled: {_listed(self.names)}); "
                             f"see `spk enrol --list --db {self.path}`")
        return self.speakers[name]

    def speaker_of_audio(self, sha256: str) -> str | None:
        """The enrolled name that already holds a clip with this audio hash, or None."""
        return next((name for name, clips in self.speakers.items() if any(clip.sha256 == sha256 for clip in clips)), None)

    def with_clips(self, name: str, clips: list[EnrolledClip]) -> "SpeakerDatabase":
        """A copy with `clips` added to `name` (a new speaker if not enrolled); clip ids are made
        unique within the speaker."""
        check_speaker_name(name)
        existing = self.speakers.get(name, ())
        taken = {clip.clip_id for clip in existing}
        added = []
        for clip in clips:
            clip_id = _unique_clip_id(name, PurePosixPath(clip.source).name or "clip", taken)
            taken.add(clip_id)
            added.append(replace(clip, clip_id=clip_id))
        return replace(self, speakers={**self.speakers, name: existing + tuple(added)})

    def renamed(self, old: str, new: str) -> "SpeakerDatabase":
        """A copy with speaker `old` called `new` (same place in the order); UsageError when `old`
        is not enrolled or `new` already is."""
        clips = self.clips_of(old)
        check_speaker_name(new)
        if new in self.speakers and new != old:
            raise UsageError(f"{self.path}: '{new}' is already enrolled; --remove it first, or enrol "
                             f"{old}'s clips under '{new}' instead")
        moved = tuple(replace(clip, clip_id=f"{new}/{clip.clip_id.split('/', 1)[1]}") for clip in clips)
        return replace(self, speakers={new if name == old else name: moved if name == old else kept
                                       for name, kept in self.speakers.items()})

    def without(self, name: str) -> "SpeakerDatabase":
        """A copy without speaker `name`; UsageError when it is not enrolled."""
        self.clips_of(name)
        return replace(self, speakers={other: clips for other, clips in self.speakers.items() if other != name})

    def scorer(self, backend: str | None = None, cohort: str | Path | None = None, top_k: int | None = None):
        """The `scoring.backend.Scorer` that compares embeddings with this database's voices: the
        database's back-end unless `backend` names another; adaptive s-norm against the `top_k`
        nearest embeddings of a `cohort` store."""
        from speakembed.pipelines.scoring.backend import DEFAULT_TOP_K, resolve_scorer

        return resolve_scorer(self.encoder.encoder_id, backend=backend or self.backend, cohort=cohort,
                              top_k=top_k or DEFAULT_TOP_K, checkpoint=self.encoder.checkpoint)

    def require_encoder(self, encoder_id: str) -> None:
        """ManifestError unless embeddings of `encoder_id` may be compared with this database's."""
        if encoder_id != self.encoder.encoder_id:
            how = (f"--checkpoint {self.encoder.checkpoint}" if self.encoder.checkpoint
                   else f"--encoder {self.encoder.name}")
            raise ManifestError(f"{self.path}: this database was made with {self.encoder.encoder_id}, not "
                                f"{encoder_id}; use {how}, or another --db")

    def save(self) -> Path:
        """Write the database to its folder atomically (the old one stays intact on any failure)."""
        return replace_folder_atomically(self.path, self._fill)

    def _fill(self, folder: Path) -> None:
        clips = [clip for speaker_clips in self.speakers.values() for clip in speaker_clips]
        size = self.encoder.embedding_size
        attrs = {"encoder": self.encoder.encoder_id, "embedding_size": size, "threshold": self.encoder.threshold,
                 "backend": self.backend}
        write_store(folder / CLIPS_STORE, EmbeddingStore(
            [clip.clip_id for clip in clips],
            np.stack([clip.embedding for clip in clips]) if clips else np.zeros((0, size), np.float32),
            np.ones(len(clips), dtype=bool), attrs, np.array([clip.vad_fallback for clip in clips], dtype=bool)))
        write_store(folder / CENTROIDS_STORE, EmbeddingStore(self.names, self.centroids(),
                                                             np.ones(len(self.names), dtype=bool), attrs))
        write_text_atomically(folder / MANIFEST, json.dumps(self._manifest(), indent=2, ensure_ascii=False) + "\n")

    def _manifest(self) -> dict:
        return {
            "schema": DATABASE_SCHEMA, "schema_version": DATABASE_VERSION,
            "encoder": self.encoder.encoder_id, "encoder_name": self.encoder.name,
            "checkpoint": self.encoder.checkpoint, "embedding_size": self.encoder.embedding_size,
            "threshold": self.encoder.threshold, "backend": self.backend, "vad": self.vad,
            "created": self.created or now(), "updated": now(),
            "speakers": [{"name": name, "clips": [clip.manifest_entry() for clip in clips]}
                         for name, clips in self.speakers.items()],
        }


def new_database(path: str | Path, encoder: EncoderIdentity, *, backend: str = "default",
                 vad: str = "silero") -> SpeakerDatabase:
    """An empty database for `path`, which must not exist yet or be an empty folder (nothing is
    written until `save`); ManifestError for a folder that holds anything else."""
    path = check_new_database_folder(path)
    return SpeakerDatabase(path, encoder, backend, vad, {}, now())


def check_new_database_folder(path: str | Path) -> Path:
    """`path` (absolute) if a new database may be made there: it does not exist or is an empty
    folder; ManifestError for a file or a folder holding anything else."""
    path = _absolute(path)
    if path.exists() and not path.is_dir():
        raise ManifestError(f"{path}: is a file, not a speaker database folder; give a folder for --db")
    if path.is_dir() and any(path.iterdir()):
        raise ManifestError(f"{path}: not a speaker database (no {MANIFEST}) and not empty; "
                            "give a new or empty folder for --db")
    return path


def is_database(path: str | Path) -> bool:
    """Whether `path` is a folder with a database manifest (its content is checked on opening)."""
    return (Path(path) / MANIFEST).is_file()


def open_database(path: str | Path) -> SpeakerDatabase:
    """Read the database in folder `path`.

    InputNotFoundError when there is no such folder; ManifestError when it is not a speaker
    database, has an unsupported version, or its parts disagree (a damaged folder).
    """
    path = _absolute(path)
    if not path.is_dir():
        raise InputNotFoundError(f"{path}: no such speaker database; create one with `spk enrol NAME CLIP... --db {path}`")
    manifest = _read_manifest(path)
    try:
        return _database_from(path, manifest)
    except (KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"{path / MANIFEST}: unexpected content ({type(error).__name__}: {error}); "
                            "the database is damaged, enrol its speakers again") from None


def _database_from(path: Path, manifest: dict) -> SpeakerDatabase:
    """The database that `manifest` (database.json) and the stores beside it describe."""
    encoder = EncoderIdentity(manifest["encoder"], manifest["encoder_name"], manifest.get("checkpoint"),
                              int(manifest["embedding_size"]), manifest.get("threshold"))
    if not (path / CLIPS_STORE).is_dir():
        raise ManifestError(f"{path}: {CLIPS_STORE} is missing; the database is damaged, enrol its speakers again")
    clips = read_store(path / CLIPS_STORE)
    if clips.encoder != encoder.encoder_id:
        raise ManifestError(f"{path}: {CLIPS_STORE} was made by {clips.encoder}, {MANIFEST} says "
                            f"{encoder.encoder_id}; the database is damaged, enrol its speakers again")
    rows = clips.lookup()
    speakers = {}
    for speaker in manifest["speakers"]:
        entries = speaker["clips"]
        missing = [entry["clip_id"] for entry in entries if entry["clip_id"] not in rows]
        if missing or not entries:
            raise ManifestError(f"{path}: speaker '{speaker['name']}' lists clips missing from {CLIPS_STORE} "
                                f"({_listed(missing)}); the database is damaged, enrol its speakers again")
        speakers[speaker["name"]] = tuple(EnrolledClip(**entry, embedding=clips.embeddings[rows[entry["clip_id"]]])
                                          for entry in entries)
    return SpeakerDatabase(path, encoder, manifest.get("backend", "default"), manifest.get("vad", "silero"),
                           speakers, manifest.get("created", ""))


def check_speaker_name(name: str) -> str:
    """`name` if it can name an enrolled speaker, else UsageError: it must hold something besides
    whitespace, no `/` (clip ids are `<name>/<clip>`), and not be `unknown` or `unknown_N` (the
    names given to speech of no enrolled voice)."""
    stripped = WHITESPACE.sub("_", name.strip())
    if not stripped or "/" in name or stripped == UNKNOWN or stripped.startswith(f"{UNKNOWN}_"):
        raise UsageError(f"'{name}' cannot be a speaker name (empty, holds '/', or taken by '{UNKNOWN}' "
                         "speech); choose another name")
    return name


def now() -> str:
    """The current UTC time, ISO 8601 to the second (database.json's timestamps)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: not a speaker database (no {MANIFEST}); create one with "
                            f"`spk enrol NAME CLIP... --db DIR` in a new folder") from None
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path / MANIFEST}: not readable ({error}); the database is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != DATABASE_SCHEMA:
        raise ManifestError(f"{path}: {MANIFEST} is not a speakembed speaker database manifest")
    if manifest.get("schema_version") != DATABASE_VERSION:
        raise ManifestError(f"{path}: speaker database version {manifest.get('schema_version')} is not supported "
                            f"(this spk reads version {DATABASE_VERSION}); upgrade spk or enrol again")
    missing = [key for key in ("encoder", "encoder_name", "embedding_size", "speakers") if key not in manifest]
    if missing:
        raise ManifestError(f"{path / MANIFEST}: lacks {missing}; the database is damaged, enrol again")
    return manifest


def _unique_clip_id(name: str, file_name: str, taken: set[str]) -> str:
    """`<name>/<file_name>`, or with `-2`, `-3`, ... before the extension when already taken."""
    candidate = f"{name}/{file_name}"
    stem, suffix = PurePosixPath(file_name).stem, PurePosixPath(file_name).suffix
    number = 2
    while candidate in taken:
        candidate = f"{name}/{stem}-{number}{suffix}"
        number += 1
    return candidate


def _absolute(path: str | Path) -> Path:
    """The folder as an absolute path, so that `--db .` has a name and a parent to swap it in."""
    return Path(path).absolute()


def _listed(names: list[str]) -> str:
    return some_ids(list(names)) if names else "none"


def load_database_encoder(database: SpeakerDatabase | None, encoder: str | None = None,
                          checkpoint: str | None = None, device: str | None = None):
    """The loaded encoder (models.registry.load_encoder) for `database`: `encoder` / `checkpoint`
    when given (which must be the one the database was made with, else ManifestError), else the
    database's own; for no database, `encoder` or the default encoder."""
    from speakembed.models.registry import DEFAULT_ENCODER, load_encoder

    if database is not None and encoder is None and checkpoint is None:
        encoder, checkpoint = database.encoder.name, database.encoder.checkpoint
    embedder = load_encoder(encoder or DEFAULT_ENCODER, device, checkpoint)
    if database is not None:
        database.require_encoder(embedder.encoder_id)
    return embedder
