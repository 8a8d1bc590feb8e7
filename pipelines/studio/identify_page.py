"""Identify page: who is speaking, against the speaker database the server was started with
(`spk ui --db`): identify clips (`pipelines.identify.identify_clips`, as `spk identify`), enrol new
voices (`pipelines.enrol.run`, as `spk enrol`) and list the people enrolled."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.studio import resources
from speakembed.pipelines.studio.session import AUDIO_TYPES, count, database_path, save_upload, shown_errors

TITLE, ICON, URL_PATH = "Identify & enrol", ":material/group:", "identify"
RESULT_KEY = "identify_result"
ENROLLED_KEY = "identify_enrolled"


def render() -> None:
    """Draw the Identify & enrol page."""
    from speakembed.pipelines.data.speaker_db import is_database

    st.title("Identify a speaker")
    folder = database_path()
    database = _open(folder) if is_database(folder) else None
    if database is None:
        st.info(f"No speaker database in {folder} yet: enrol a first voice below (or start `spk ui --db FOLDER`).")
    else:
        people = f"{len(database.names)} {'person' if len(database.names) == 1 else 'people'}"
        st.caption(f"Speaker database {folder}: {people}, encoder "
                   f"{database.encoder.encoder_id}, back-end {database.backend}.")
    identify_tab, enrol_tab, people_tab = st.tabs(["Identify", "Enrol a voice", "People enrolled"])
    with identify_tab:
        _identify(database)
    with enrol_tab:
        _enrol(folder, database)
    with people_tab:
        _people(database)


def _open(folder):
    from speakembed.pipelines.data.speaker_db import open_database

    with shown_errors():
        return open_database(folder)
    return None


def _identify(database) -> None:
    uploads = st.file_uploader("Clips to identify", type=AUDIO_TYPES, accept_multiple_files=True, key="identify_clips")
    paths = [save_upload(upload) for upload in uploads or []]
    top = st.number_input("Names per clip", 1, 20, 5, key="identify_top")
    if st.button("Identify", type="primary", disabled=not paths or database is None or not database.names,
                 key="identify_go"):
        st.session_state.pop(RESULT_KEY, None)
        with shown_errors():
            st.session_state[RESULT_KEY] = identify(database, paths, int(top))
    report = st.session_state.get(RESULT_KEY)
    if report is not None:
        show_identifications(report)


def identify(database, paths, top: int):
    """identify_clips of the uploaded files against the database, with its cached encoder: an IdentifyReport."""
    from speakembed.pipelines.audio.clips import Clip
    from speakembed.pipelines.identify import IdentifyConfig, identify_clips

    clips = [Clip(path.name, path) for path in paths]
    return identify_clips(database, clips, config=IdentifyConfig(top=top), embedder=resources.database_encoder(database))


def show_identifications(report) -> None:
    """Each clip's answer in large type, its candidates as a table, and the clips that failed."""
    for identification in report.identifications:
        st.subheader(f"{identification.item_id}: {identification.identity}")
        rows = [{"rank": rank, "speaker": candidate.name, "score": candidate.score, "probability": candidate.probability}
                for rank, candidate in enumerate(identification.candidates, start=1)]
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            "score": st.column_config.NumberColumn(format="%.4f"),
            "probability": st.column_config.NumberColumn(format="%.3f", help="Posterior probability that the clip is this person"),
        })
        if identification.unknown_probability is not None:
            st.caption(f"Probability that the speaker is nobody enrolled: {identification.unknown_probability:.3f}")
    rule = report.decision
    if rule.rule == "threshold":
        st.caption(f"A name is given when its score reaches {rule.threshold:.4f}; otherwise 'unknown'.")
    else:
        st.caption(f"The answer is the most probable of the enrolled names and 'unknown' (prior {rule.prior:g} that "
                   "the speaker is enrolled).")
    for failure in report.failures:
        st.warning(f"{failure['item_id']}: {failure['reason']} ({failure['detail']})")


def _enrol(folder, database) -> None:
    name = st.text_input("Name of the person", key="enrol_name")
    uploads = st.file_uploader("Recordings of their voice", type=AUDIO_TYPES, accept_multiple_files=True,
                               key="enrol_clips")
    paths = [save_upload(upload) for upload in uploads or []]
    if database is None:
        names = resources.encoder_choices()
        encoder = st.selectbox("Encoder of the new database", names, index=names.index(DEFAULT_ENCODER),
                               key="enrol_encoder", help="The first enrolment fixes the database's encoder.")
    else:
        encoder = None
    if st.button("Enrol", type="primary", disabled=not (name.strip() and paths), key="enrol_go"):
        with shown_errors():
            report = enrol(folder, database, name.strip(), paths, encoder)
            st.session_state[ENROLLED_KEY] = report
            st.session_state.pop(RESULT_KEY, None)  # identifications made before may have changed
            st.rerun()  # the database changed: draw the page again from it
    report = st.session_state.pop(ENROLLED_KEY, None)
    if report is not None:
        created = " (a new database)" if report.created else ""
        skipped = f"; {count(len(report.already_enrolled), 'clip')} already enrolled, skipped" if report.already_enrolled else ""
        st.success(f"Enrolled {count(len(report.added), 'clip')} as '{report.name}' ({report.clips} in all){created}{skipped}.")


def enrol(folder, database, name: str, paths, encoder: str | None):
    """enrol.run of the uploaded files as `name`, with the database's cached encoder (or `encoder` for a new database)."""
    from speakembed.pipelines.enrol import EnrolConfig, run

    embedder = resources.database_encoder(database) if database is not None else resources.encoder(encoder)
    return run(folder, name, list(paths), config=EnrolConfig(encoder=encoder), embedder=embedder)


def _people(database) -> None:
    from speakembed.pipelines.enrol import listing

    if database is None or not database.names:
        st.caption("Nobody is enrolled yet.")
        return
    _, rows = listing(database.path)  # what `spk enrol --list` shows
    st.dataframe(pd.DataFrame([{"name": row.name, "clips": row.clips, "speech s": row.speech_s} for row in rows]),
                 hide_index=True)
