"""The Python API: speaker embeddings and a speaker database in a few lines.

    from speakembed import Encoder, SpeakerDB

    encoder = Encoder("lstm")                        # any --encoder name, or Encoder(checkpoint="run/")
    a = encoder.embed("a.wav")                       # (256,) float32, unit length
    both = encoder.embed(["a.wav", "b.flac"])        # (2, 256)
    c = encoder.embed(samples, sample_rate=44100)    # a waveform (samples,) or (samples, channels)
    encoder.similarity("a.wav", "b.wav")             # the score `spk verify` gives (paths, waveforms, embeddings)

    voices = SpeakerDB("voices/")                    # opens the folder, or makes it on the first enrol
    voices.enrol("alice", ["a1.wav", "a2.wav"])      # files, folders or waveforms (with sample_rate=)
    answer = voices.identify("x.wav")                # .identity ("alice" or "unknown"), .candidates
    voices.names, voices.rename("alice", "Alice"), voices.remove("bob")

Everything goes through the pipelines the `spk` commands run (audio decoding, VAD, the encoder
registry, the speaker database, scoring); errors are the same typed errors (SpeakEmbedError
subclasses, pipelines/base/errors.py). Nothing heavy is imported before the first call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

if TYPE_CHECKING:
    import numpy as np

    from speakembed.pipelines.enrol import EnrolReport
    from speakembed.pipelines.identify import Identification

Audio = Union[str, Path, "np.ndarray"]


class Encoder:
    """A speaker encoder, loaded on first use.

    name: a registered encoder (`lstm`, `conv-transformer`, `whisper`, `whisper-head`, ...);
    checkpoint: a `spk train` output folder instead; device: torch device (default: CUDA when
    present); vad: silero, energy, hybrid or none; backend: how `similarity` scores ("default": the
    back-end shipped beside the weights, "none": raw cosine, or a `spk train backend` file).
    """

    def __init__(self, name: str | None = None, *, checkpoint: str | Path | None = None, device: str | None = None,
                 vad: str = "silero", backend: str = "default"):
        from speakembed.models.registry import DEFAULT_ENCODER

        self.name = name or DEFAULT_ENCODER
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.device, self.vad, self.backend = device, vad, backend
        self._embedder = None
        self._scorer = None

    @property
    def embedder(self):
        """The loaded models.embedder.SpeakerEmbedder (loaded on first use)."""
        if self._embedder is None:
            from speakembed.models.registry import load_encoder

            self._embedder = load_encoder(self.name, self.device, self.checkpoint)
        return self._embedder

    @property
    def encoder_id(self) -> str:
        """`name@weights-hash`, as stores and databases record it."""
        return self.embedder.encoder_id

    def embed(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None) -> "np.ndarray":
        """Embed one clip -> (D,) float32, or a list of clips -> (N, D); rows have unit length.

        A clip is a path, or a waveform array (samples,) / (samples, channels) at `sample_rate` Hz.
        Raises the typed errors of `spk embed` (missing, unreadable, silent, too short, ...).
        """
        from speakembed.pipelines.audio.clips import embed_speech

        clips = _clips(audio, sample_rate)
        embeddings = embed_speech([clip.speech(self.embedder.spec, self.vad) for clip in clips], self.embedder)
        return embeddings[0] if _is_single(audio) else embeddings

    def similarity(self, first: Audio, second: Audio, sample_rate: int | None = None) -> float:
        """The score of two clips (paths or waveforms at `sample_rate`) or embeddings (D,), as
        `spk verify` scores them: cosine after the encoder's back-end (see `backend`)."""
        pair = [self._embedding(item, sample_rate) for item in (first, second)]
        return float(self.scorer.pairs(pair[0][None], pair[1][None])[0])

    @property
    def scorer(self):
        """The scoring.backend.Scorer of `similarity`."""
        if self._scorer is None:
            from speakembed.pipelines.scoring.backend import resolve_scorer

            self._scorer = resolve_scorer(self.encoder_id, backend=self.backend, checkpoint=self.checkpoint)
        return self._scorer

    def _embedding(self, item: Audio, sample_rate: int | None) -> "np.ndarray":
        """An embedding as given ((D,) array and no sample rate), else the clip's embedding."""
        import numpy as np

        if isinstance(item, np.ndarray) and sample_rate is None and item.shape == (self.embedder.embedding_size,):
            return item.astype(np.float32)
        return self.embed(item, sample_rate)

    def __repr__(self) -> str:
        where = f"checkpoint={self.checkpoint!r}" if self.checkpoint else repr(self.name)
        return f"Encoder({where})"


class SpeakerDB:
    """A speaker database folder (the one `spk enrol --db` makes): opened if it exists, made on
    the first `enrol` otherwise, with `encoder` (an `Encoder`, or an encoder name; default: the
    database's own, `lstm` for a new one). `vad` and `backend` are fixed by the first enrolment
    (None: silero and the shipped back-end); an existing database keeps its own."""

    def __init__(self, path: str | Path, *, encoder: Encoder | str | None = None, vad: str | None = None,
                 backend: str | None = None, device: str | None = None):
        self.path = Path(path)
        self._encoder = Encoder(encoder, device=device) if isinstance(encoder, str) else encoder
        self.vad, self.backend, self.device = vad, backend, device

    @property
    def database(self):
        """The database as on disk now (pipelines.data.speaker_db.SpeakerDatabase); raises when
        there is none yet."""
        from speakembed.pipelines.data.speaker_db import open_database

        return open_database(self.path)

    @property
    def exists(self) -> bool:
        """Whether the folder holds a database already."""
        from speakembed.pipelines.data.speaker_db import is_database

        return is_database(self.path)

    @property
    def names(self) -> list[str]:
        """Enrolled names, in enrolment order (empty before the first enrolment)."""
        return self.database.names if self.exists else []

    @property
    def encoder(self) -> Encoder:
        """The database's encoder (the one given, else the database's, else the default)."""
        if self._encoder is None:
            if self.exists:
                identity = self.database.encoder
                self._encoder = Encoder(identity.name, checkpoint=identity.checkpoint, device=self.device)
            else:
                self._encoder = Encoder(device=self.device)
        return self._encoder

    def enrol(self, name: str, clips: Audio | Sequence[Audio], sample_rate: int | None = None) -> "EnrolReport":
        """Add clips (paths, folders, or waveforms at `sample_rate`) to `name`, as `spk enrol` does:
        all or nothing; audio already enrolled under the name is skipped. Returns the EnrolReport."""
        from speakembed.pipelines import enrol

        encoder = self.encoder
        config = enrol.EnrolConfig(encoder=encoder.name, checkpoint=encoder.checkpoint, backend=self.backend,
                                   vad=self.vad, device=self.device)
        return enrol.run(self.path, name, _clips(clips, sample_rate, name=name, paths_as_given=True),
                         config=config, embedder=encoder.embedder)

    def identify(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, *, top: int = 5,
                 threshold: float | None = None, prior: float = 0.5) -> "Identification | list[Identification]":
        """Who is speaking in a clip (path or waveform at `sample_rate`) -> an Identification
        (`.identity`: an enrolled name or "unknown"; `.candidates`: the `top` best with scores and,
        when calibrated, probabilities), or a list of them for a list of clips. See `spk identify`
        for `threshold` and `prior`. Raises the typed error of a clip that cannot be embedded."""
        from speakembed.pipelines import identify

        config = identify.IdentifyConfig(top=top, threshold=threshold, prior=prior, device=self.device)
        report = identify.identify_clips(self.database, _clips(audio, sample_rate), config=config,
                                         embedder=self.encoder.embedder, strict=True)
        return report.identifications[0] if _is_single(audio) else report.identifications

    def rename(self, old: str, new: str) -> None:
        """Call enrolled speaker `old` `new` (as `spk enrol --rename`)."""
        from speakembed.pipelines import enrol

        enrol.rename(self.path, old, new)

    def remove(self, name: str) -> None:
        """Remove speaker `name` and their clips (as `spk enrol --remove`)."""
        from speakembed.pipelines import enrol

        enrol.remove(self.path, name)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"SpeakerDB({str(self.path)!r}, {len(self)} speakers)"


def _is_single(audio) -> bool:
    """Whether `audio` is one clip (a path or a waveform array) rather than a list of them."""
    return not isinstance(audio, (list, tuple))


def _clips(audio, sample_rate: int | None, *, name: str = "clip", paths_as_given: bool = False) -> list:
    """`audio` (one clip or a list) as pipelines.audio.clips.Clip objects: waveforms at
    `sample_rate`, files, and the audio files under folders; with `paths_as_given`, paths stay
    as they are (the enrol pipeline expands and checks them itself)."""
    from speakembed.pipelines.audio.clips import Clip
    from speakembed.pipelines.base.errors import InputNotFoundError
    from speakembed.pipelines.data.items import Item, collect_items

    clips = []
    for index, item in enumerate([audio] if _is_single(audio) else list(audio), start=1):
        if isinstance(item, (str, Path)) and paths_as_given:
            clips.append(item)
        elif isinstance(item, (str, Path)):
            path = Path(item)
            found = collect_items([path]) if path.is_dir() else [Item(str(item), path)]
            clips += [Clip.of_item(each) for each in found]
        else:
            clips.append(Clip.of_samples(f"{name}-samples-{index}", item, sample_rate))
    if not clips:
        raise InputNotFoundError("no clips given")
    return clips
