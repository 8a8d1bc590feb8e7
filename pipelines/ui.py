"""`spk ui`: the SpeakEmbed studio, a Streamlit app. `spk ui` starts `streamlit run` on this file
(speakembed_cli/commands/ui.py); the pages live in pipelines/studio/, one module per page."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this file's folder first on sys.path: here pipelines/, whose modules
# (clone.py, data/, audio/, ...) would shadow any top-level module of those names. Everything
# is imported through `speakembed.` instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if not entry or Path(entry).resolve() != _HERE]

import streamlit as st  # noqa: E402

from speakembed.pipelines.studio import (clone_page, compare_page, diarise_page, embeddings_page,  # noqa: E402
                                         identify_page, verify_page)
from speakembed.pipelines.studio.session import database_path  # noqa: E402

PAGES = (clone_page, compare_page, verify_page, identify_page, diarise_page, embeddings_page)  # sidebar order


def main() -> None:
    """Set up the page, the sidebar navigation between the pages, and draw the chosen one."""
    st.set_page_config(page_title="SpeakEmbed studio", page_icon=":material/graphic_eq:", layout="wide")
    pages = [st.Page(module.render, title=module.TITLE, icon=module.ICON, url_path=module.URL_PATH, default=index == 0)
             for index, module in enumerate(PAGES)]
    page = st.navigation(pages)
    with st.sidebar:
        st.caption(f"SpeakEmbed studio · speaker database: {database_path()}")
        st.caption("Runs offline: nothing is sent to any outside service.")
    page.run()


main()
