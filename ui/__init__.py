"""Streamlit helpers shared by the pages: the URL module, the store and workers, live views."""

import streamlit as st


def route_through_app() -> None:
    """Make sure a page runs under app.py's router, not Streamlit's legacy ``pages/`` mode.

    Until a process has called ``st.navigation`` once, Streamlit treats a ``pages/`` folder
    beside the entry point as the old multipage layout: the first visit to ``/data`` on a fresh
    server would run ``pages/data.py`` alone, without app.py's page config, sidebar and workers.
    Each page calls this first; when it finds the legacy mode it switches it off and reruns,
    so app.py's ``st.navigation`` takes over (once per server process).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
