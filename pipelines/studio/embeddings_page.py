"""Embeddings page: a folder or a zip of clips -> their embeddings (`pipelines.embed.run`, what `spk
embed` runs), a 2-D projection (PCA) coloured by speaker and the cosine similarity matrix, with
the separation figures `spk evaluate verification` reports, so a user sees whether their voices
separate.

A clip's speaker is the folder that holds it (`alice/1.wav`), as for `spk embed` + `spk evaluate`;
a clip outside any folder is named by its file name up to the first '_' (`alice_1.wav`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import streamlit as st

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.base.errors import InputNotFoundError
from speakembed.pipelines.studio import resources
from speakembed.pipelines.studio.session import (AUDIO_TYPES, count, progress_bar, save_upload, shown_errors,
                                                 unpack_zip, work_folder)

TITLE, ICON, URL_PATH = "Embeddings", ":material/scatter_plot:", "embeddings"
RESULT_KEY = "embeddings_result"
SOURCES = ("A folder", "A zip archive or several clips")
MAX_MATRIX_CLIPS = 60  # the similarity matrix of more clips is unreadable: it shows speakers' means instead


@dataclass(frozen=True)
class EmbeddingView:
    """Embedded clips: ids (speaker/file), speakers, unit embeddings (N, D), their 2-D PCA points
    (N, 2) and the share of variance each axis explains, the embed report, and the separation."""

    ids: list[str]
    speakers: np.ndarray
    embeddings: np.ndarray
    points: np.ndarray
    explained: tuple[float, float]
    report: object  # pipelines.embed.EmbedReport
    separation: object  # scoring.metrics.SpeakerDistances
    retrieval: object  # scoring.metrics.RetrievalAccuracy


def render() -> None:
    """Draw the Embeddings page."""
    st.title("Do the voices separate?")
    source = st.radio("Clips", SOURCES, horizontal=True, key="embeddings_source",
                      help="The folder holding a clip names its speaker (alice/1.wav); loose files are named by "
                           "their name up to the first '_' (alice_1.wav).")
    if source == SOURCES[0]:
        uploads = st.file_uploader("A folder with one sub-folder of clips per speaker", type=AUDIO_TYPES,
                                   accept_multiple_files="directory", key="embeddings_folder")
    else:
        uploads = st.file_uploader("A zip of speaker folders, or clips named speaker_*.wav", type=[*AUDIO_TYPES, "zip"],
                                   accept_multiple_files=True, key="embeddings_files")
    names = resources.encoder_choices()
    encoder = st.selectbox("Encoder", names, index=names.index(DEFAULT_ENCODER), key="embeddings_encoder")
    if st.button("Embed", type="primary", disabled=not uploads, key="embeddings_go"):
        st.session_state.pop(RESULT_KEY, None)
        with shown_errors():
            st.session_state[RESULT_KEY] = embed_clips(uploads, encoder)
    view = st.session_state.get(RESULT_KEY)
    if view is not None:
        show_view(view)


def speaker_of(relative: PurePosixPath) -> str:
    """The speaker of a clip at `relative` path: its folder's name, else its file name up to the first '_'."""
    if len(relative.parts) > 1:
        return relative.parts[-2]
    return relative.stem.split("_", 1)[0] or relative.stem


def gather_clips(uploads, folder: Path) -> Path:
    """Lay the uploaded clips (and the clips inside uploaded zips) out as folder/<speaker>/<file>,
    the layout whose item ids start with the speaker; returns `folder`."""
    unpacked = work_folder("embeddings-unpacked")
    for upload in uploads:
        saved = save_upload(upload)
        if saved.suffix.lower() == ".zip":
            for relative in unpack_zip(saved, unpacked / saved.stem):
                _place(unpacked / saved.stem / relative, folder, relative)
        else:
            _place(saved, folder, PurePosixPath(upload.name))
    if not any(folder.iterdir()):
        raise InputNotFoundError("no audio clips among the uploads (a zip must hold .wav, .flac, .mp3, ... files)")
    return folder


def _place(source: Path, folder: Path, relative: PurePosixPath) -> None:
    target = folder / speaker_of(relative) / relative.name
    for number in range(2, 10_000):  # two speakers' folders may hold files of the same name
        if not target.exists():
            break
        target = target.with_name(f"{relative.stem}-{number}{relative.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def embed_clips(uploads, encoder: str) -> EmbeddingView:
    """Embed the uploaded clips with `spk embed`'s pipeline and a cached encoder; project and measure them."""
    from sklearn.decomposition import PCA

    from speakembed.pipelines import embed
    from speakembed.pipelines.data.stores import read_store
    from speakembed.pipelines.evaluate_verification import speaker_embeddings
    from speakembed.pipelines.scoring.metrics import retrieval_accuracy, speaker_distances, unit_rows

    clips = gather_clips(uploads, work_folder("embeddings-clips"))
    with progress_bar("embedding") as progress:
        report = embed.run([clips], work_folder("embeddings"), config=embed.EmbedConfig(encoder=encoder),
                           embedder=resources.encoder(encoder), progress=progress)
    store = read_store(report.store_path)
    vectors, speakers, _ = speaker_embeddings(store)
    if len(vectors) < 2:
        raise InputNotFoundError(f"only {count(len(vectors), 'clip')} could be embedded; a projection needs two or more")
    ids = [item_id for item_id, _ in sorted(store.lookup().items(), key=lambda pair: pair[1]) if "/" in item_id]
    vectors = unit_rows(vectors)
    pca = PCA(n_components=2, random_state=0).fit(vectors)
    ratios = tuple(float(ratio) for ratio in pca.explained_variance_ratio_)
    return EmbeddingView(ids, speakers, vectors, pca.transform(vectors), ratios, report,
                         speaker_distances(vectors, speakers), retrieval_accuracy(vectors, speakers, (1,)))


def show_view(view: EmbeddingView) -> None:
    """Counts and separation figures, the projection, and the similarity matrix."""
    failed = sum(view.report.failures.values())
    st.caption(f"{count(len(view.ids), 'clip')} of {count(len(set(view.speakers.tolist())), 'speaker')} embedded with "
               f"{view.report.encoder}" + (f"; {count(failed, 'clip')} could not be embedded" if failed else "") + ".")
    same, different, top1 = st.columns(3)
    same.metric("Mean cosine, same speaker", _cosine(view.separation.intra))
    different.metric("Mean cosine, different speakers", _cosine(view.separation.inter))
    accuracy = view.retrieval.accuracy.get(1, float("nan"))
    top1.metric("Nearest clip is the same speaker", "n/a" if np.isnan(accuracy) else f"{100 * accuracy:.0f} %")
    projection, matrix = st.columns(2, gap="large")
    with projection:
        st.subheader("2-D projection (PCA)")
        st.altair_chart(projection_chart(view), width="stretch")
    with matrix:
        st.subheader("Cosine similarity")
        st.altair_chart(similarity_chart(view), width="stretch")


def _cosine(distance: float) -> str:
    return "n/a" if np.isnan(distance) else f"{1 - distance:.3f}"


def projection_chart(view: EmbeddingView):
    """The clips' PCA points coloured by speaker (hover: the clip)."""
    import altair as alt

    points = pd.DataFrame({"x": view.points[:, 0], "y": view.points[:, 1], "speaker": view.speakers, "clip": view.ids})
    return alt.Chart(points).mark_circle(size=90, opacity=0.85).encode(
        x=alt.X("x", title=f"PC 1 ({100 * view.explained[0]:.0f} % of variance)", axis=alt.Axis(labels=False)),
        y=alt.Y("y", title=f"PC 2 ({100 * view.explained[1]:.0f} %)", axis=alt.Axis(labels=False)),
        color=alt.Color("speaker", title="speaker"), tooltip=["clip", "speaker"]).properties(height=420)


def similarity_table(view: EmbeddingView) -> pd.DataFrame:
    """Long table row, column, cosine: between clips (ordered by speaker), or with more than
    MAX_MATRIX_CLIPS clips between speakers' mean embeddings."""
    order = np.argsort(view.speakers, kind="stable")
    labels, vectors = np.asarray(view.ids)[order], view.embeddings[order]
    if len(labels) > MAX_MATRIX_CLIPS:
        labels = np.unique(view.speakers)
        vectors = np.stack([view.embeddings[view.speakers == speaker].mean(axis=0) for speaker in labels])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = vectors @ vectors.T
    return pd.DataFrame({"row": np.repeat(labels, len(labels)), "column": np.tile(labels, len(labels)),
                         "cosine": cosines.reshape(-1)})


def similarity_chart(view: EmbeddingView):
    """The similarity matrix as a heat map (hover: the pair and its cosine)."""
    import altair as alt

    table = similarity_table(view)
    order = list(dict.fromkeys(table["row"]))
    return alt.Chart(table).mark_rect().encode(
        x=alt.X("column:N", sort=order, title=None, axis=alt.Axis(labelAngle=-60, labelLimit=120)),
        y=alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=120)),
        color=alt.Color("cosine:Q", scale=alt.Scale(scheme="viridis"), title="cosine"),
        tooltip=["row", "column", alt.Tooltip("cosine:Q", format=".3f")]).properties(height=420)
