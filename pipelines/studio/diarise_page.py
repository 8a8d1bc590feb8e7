"""Diarise page: who spoke when in a recording, against uploaded reference clips, the speaker
database, or by clustering, through `pipelines.diarise.run` (what `spk diarise` runs); shows the
interactive page `spk diarise` writes (timeline, similarity curves, playback), a speaker table and
the RTTM / parquet downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.studio import resources
from speakembed.pipelines.studio.session import (AUDIO_TYPES, count, database_path, progress_bar, save_upload,
                                                 shown_errors, work_folder)

TITLE, ICON, URL_PATH = "Diarise", ":material/timeline:", "diarise"
RESULT_KEY = "diarise_result"
MODES = ("Reference clips", "Speaker database", "Find the voices (clustering)")


@dataclass(frozen=True)
class Diarisation:
    """A finished run: its report (pipelines.diarise.DiariseReport), the recording's id, and its segments table."""

    report: object
    recording_id: str
    segments: pd.DataFrame

    def output(self, name: str) -> Path:
        """A file the run wrote in its output folder."""
        return self.report.out_dir / name


def render() -> None:
    """Draw the Diarise page."""
    st.title("Diarise: who spoke when?")
    meeting_column, voices_column = st.columns(2, gap="large")
    with meeting_column:
        upload = st.file_uploader("Recording (a meeting, an interview, ...)", type=AUDIO_TYPES, key="diarise_meeting")
        meeting = save_upload(upload) if upload is not None else None
        if meeting is not None:
            st.audio(str(meeting))
    with voices_column:
        mode = st.radio("Voices", MODES, key="diarise_mode")
        refs, database, num_speakers, encoder = _voices(mode)
    ready = meeting is not None and (mode != MODES[0] or refs) and (mode != MODES[1] or database is not None)
    if st.button("Diarise", type="primary", disabled=not ready, key="diarise_go"):
        st.session_state.pop(RESULT_KEY, None)
        with shown_errors():
            st.session_state[RESULT_KEY] = diarise(meeting, refs, database, num_speakers, encoder)
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        show_result(result)


def _voices(mode: str) -> tuple[list[str], Path | None, int | None, str | None]:
    """The reference clips (paths, each named by its file name), the database, the speaker count
    and the encoder (None: the database's) of the chosen mode."""
    from speakembed.pipelines.data.speaker_db import is_database

    refs, database, num_speakers, encoder = [], None, None, None
    if mode == MODES[1]:
        folder = database_path()
        if is_database(folder):
            database = folder
            st.caption(f"Every person enrolled in {folder} is a reference voice (with the database's encoder).")
        else:
            st.warning(f"No speaker database in {folder}: enrol voices on the Identify & enrol page first.")
        return refs, database, num_speakers, encoder
    if mode == MODES[0]:
        uploads = st.file_uploader("One clip per person, named after them (alice.wav, bob.flac)", type=AUDIO_TYPES,
                                   accept_multiple_files=True, key="diarise_refs")
        refs = [str(save_upload(upload)) for upload in uploads or []]
    else:
        known = st.number_input("Number of speakers (0: estimate it)", 0, 20, 0, key="diarise_num_speakers")
        num_speakers = int(known) or None
    names = resources.encoder_choices()
    encoder = st.selectbox("Encoder", names, index=names.index(DEFAULT_ENCODER), key="diarise_encoder")
    return refs, database, num_speakers, encoder


def diarise(meeting: Path, refs: list[str], database: Path | None, num_speakers: int | None,
            encoder: str | None) -> Diarisation:
    """diarise.run of one recording into a fresh session folder, with a progress bar and a cached encoder."""
    from speakembed.pipelines import diarise as pipeline
    from speakembed.pipelines.data.manifests import read_table
    from speakembed.pipelines.data.speaker_db import open_database

    embedder = resources.database_encoder(open_database(database)) if database else resources.encoder(encoder)
    config = pipeline.DiariseConfig(encoder=encoder, num_speakers=num_speakers)
    with progress_bar("diarising") as progress:
        report = pipeline.run([meeting], work_folder("diarisation"), refs=refs or None, database=database,
                              config=config, embedder=embedder, progress=progress)
    segments = read_table(report.out_dir / "diarisation.parquet", "diarisation")
    return Diarisation(report, meeting.stem, segments)


def speaker_table(segments: pd.DataFrame) -> pd.DataFrame:
    """One row per speaker: turns, seconds spoken, share of the speech, mean confidence (most speech first)."""
    grouped = segments.groupby("speaker")
    table = pd.DataFrame({"turns": grouped.size(), "speech s": grouped["duration_s"].sum(),
                          "confidence": grouped["confidence"].mean()})
    table["share %"] = 100 * table["speech s"] / max(table["speech s"].sum(), 1e-9)
    return table.sort_values("speech s", ascending=False).reset_index()


def show_result(result: Diarisation) -> None:
    """The interactive page, the speaker table and the downloads."""
    recording = result.report.recordings[0]
    st.success(f"{recording.recording_id}: {count(recording.num_segments, 'segment')}, "
               f"{count(len(recording.speakers), 'speaker')} ({result.report.mode} mode, {result.report.encoder}), "
               f"{recording.speech_s:.1f}/{recording.duration_s:.1f} s of speech, {recording.elapsed_s:.1f} s.")
    page = result.output(f"{result.recording_id}.html")
    st.iframe(page, height="content", alt="Speaker timeline, similarity curves and player")
    st.subheader("Speakers")
    st.dataframe(speaker_table(result.segments), hide_index=True, column_config={
        "speech s": st.column_config.NumberColumn(format="%.1f"),
        "confidence": st.column_config.NumberColumn(format="%.2f"),
        "share %": st.column_config.NumberColumn(format="%.0f"),
    })
    downloads = st.columns(4)
    for column, name, mime in zip(downloads, (f"{result.recording_id}.rttm", "diarisation.parquet",
                                              "similarities.parquet", page.name),
                                  ("text/plain", "application/octet-stream", "application/octet-stream", "text/html")):
        column.download_button(f"Download {name}", result.output(name).read_bytes(), file_name=name, mime=mime,
                               on_click="ignore", key=f"diarise_download_{name}")
