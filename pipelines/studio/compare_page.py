"""Compare encoders page: the same clips through every encoder, each pair scored as `spk verify A B`
scores it (`pipelines.verify.verify_pair`): score, raw cosine, calibrated probability where a
calibration exists, verdict, and the time each encoder took."""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path

import pandas as pd
import streamlit as st

from speakembed.pipelines.studio import resources
from speakembed.pipelines.studio.session import AUDIO_TYPES, save_upload, shown_errors
from speakembed.pipelines.studio.verify_page import compare

TITLE, ICON, URL_PATH = "Compare encoders", ":material/compare_arrows:", "compare"
RESULT_KEY = "compare_table"
ROW_HEIGHT_PX = 35  # st.dataframe's row height: the table is drawn whole, without scrolling
COLUMNS = ["encoder", "first", "second", "verdict", "probability", "score", "cosine", "threshold", "seconds"]


def render() -> None:
    """Draw the Compare encoders page."""
    st.title(TITLE)
    st.caption("Upload two or more clips: every pair goes through every chosen encoder. Models load once, the first time.")
    uploads = st.file_uploader("Clips", type=AUDIO_TYPES, accept_multiple_files=True, key="compare_clips")
    paths = [save_upload(upload) for upload in uploads or []]
    names = list(resources.encoder_choices())
    encoders = st.multiselect("Encoders", names, default=names, key="compare_encoders")
    if st.button("Compare", type="primary", disabled=len(paths) < 2 or not encoders, key="compare_go"):
        st.session_state[RESULT_KEY] = compare_encoders(paths, encoders)
    table = st.session_state.get(RESULT_KEY)
    if table is not None and len(table):
        show_table(table)


def compare_encoders(paths: list[Path], encoders: list[str]) -> pd.DataFrame:
    """One row per encoder and pair of clips (COLUMNS); an encoder that fails shows its error and is left out."""
    rows = []
    bar = st.progress(0.0, text="comparing")
    for index, encoder in enumerate(encoders):
        bar.progress(index / len(encoders), text=f"{encoder}: {index}/{len(encoders)} encoders")
        with shown_errors():
            resources.encoder(encoder)  # loading is not part of the timing
            rows += [_row(encoder, first, second) for first, second in combinations(paths, 2)]
    bar.empty()
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(encoder: str, first: Path, second: Path) -> dict:
    started = time.perf_counter()
    result = compare(first, second, encoder, 0.5)
    return {"encoder": encoder, "first": first.name, "second": second.name,
            "verdict": "same" if result.same_speaker else "different", "probability": result.probability,
            "score": result.score, "cosine": result.cosine, "threshold": result.threshold,
            "seconds": time.perf_counter() - started}


def show_table(table: pd.DataFrame) -> None:
    """The comparison table and the scores per encoder as a chart."""
    st.dataframe(table, hide_index=True, width="stretch", height=ROW_HEIGHT_PX * (len(table) + 1) + 3, column_config={
        "probability": st.column_config.NumberColumn("probability", format="%.3f",
                                                     help="Calibrated probability of same speaker (prior 0.5)"),
        "score": st.column_config.NumberColumn("score", format="%.4f", help="Cosine after the encoder's back-end"),
        "cosine": st.column_config.NumberColumn("cosine", format="%.4f"),
        "threshold": st.column_config.NumberColumn("threshold", format="%.4f", help="Score at which the verdict turns 'same'"),
        "seconds": st.column_config.NumberColumn("seconds", format="%.2f", help="Wall time of the pair (decode, VAD, embed, score)"),
    })
    st.caption("Scores of different encoders are on different scales: compare each with its own threshold, or the probabilities.")
    if table[["first", "second"]].drop_duplicates().shape[0] == 1:
        st.bar_chart(table.set_index("encoder")[["probability"]].fillna(0.0), horizontal=True, height=220)
