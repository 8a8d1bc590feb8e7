"""`spk train backend`: fit a scoring back-end (pipelines/scoring/backend.py) on an embeddings store.

The back-end adapts the scores of one encoder's weights to a domain: the speaker-balanced mean
of the store's voices is removed from every embedding, and with `lda_dim` / `wccn` the embeddings
are projected onto the directions that separate its speakers. The speaker of each item comes
from a `--speakers` table or the first folder of its id (as `spk evaluate verification` reads
them); without any, the plain mean of all valid embeddings is used (LDA and WCCN need speakers).
Writes OUT/backend.npz, which `--backend OUT` of verify / evaluate uses; fit its calibration
with `spk verify --trials ... --backend OUT` and `spk calibrate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from speakembed.pipelines.base.errors import ManifestError
from speakembed.pipelines.base.outputs import prepare_output_folder
from speakembed.pipelines.data.stores import read_store
from speakembed.pipelines.evaluate_verification import speaker_embeddings
from speakembed.pipelines.scoring.backend import BACKEND_FILE, fit_backend


@dataclass(frozen=True)
class BackendConfig:
    """Settings of `spk train backend`: an LDA output size (None: no LDA) and WCCN whitening."""
    lda_dim: int | None = None
    wccn: bool = False


@dataclass(frozen=True)
class BackendReport:
    """What `spk train backend` wrote: the file, its id, the encoder, how many embeddings and
    speakers it was fitted on, its output size and notes."""
    path: Path
    backend_id: str
    encoder: str
    embeddings: int
    speakers: int | None
    output_size: int
    notes: list[str]


def run(embeddings: str | Path, out_dir: str | Path, *, speakers: str | Path | None = None,
        id_column: str | None = None, speaker_column: str | None = None,
        config: BackendConfig = BackendConfig()) -> BackendReport:
    """Fit a back-end on the valid embeddings of the store `embeddings`; write OUT/backend.npz.

    ManifestError when the store holds fewer than two valid embeddings; UsageError for an LDA size
    the speakers cannot give, or LDA / WCCN without speakers.
    """
    out_dir = prepare_output_folder(out_dir)
    store = read_store(embeddings)
    notes: list[str] = []
    vectors, names, _ = speaker_embeddings(store, speakers, id_column, speaker_column, notes)
    if len(vectors) == 0 and speakers is None:
        notes.append("no item id names a speaker folder: the plain mean of all embeddings is removed")
        vectors, names = store.embeddings[store.valid], None
    if len(vectors) < 2:
        raise ManifestError(f"{embeddings}: a back-end needs at least 2 valid embeddings with a speaker, found {len(vectors)}")
    info = {"embeddings_store": str(embeddings), "speakers_table": None if speakers is None else str(speakers)}
    backend = fit_backend(vectors, names, encoder_id=store.encoder, lda_dim=config.lda_dim, wccn=config.wccn, info=info)
    path = backend.save(out_dir / BACKEND_FILE)
    output_size = backend.embedding_size if backend.projection is None else int(backend.projection.shape[1])
    return BackendReport(path, backend.id, store.encoder, len(vectors), backend.info["speakers"], output_size, notes)
