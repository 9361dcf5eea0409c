"""Runs: the history of every run on this server, each linking to its page."""

import streamlit as st

import ui
from ui import common, urls, views

ui.route_through_app()

st.title("Runs")
store = common.store()
status = st.segmented_control("Show", ["all", "queued", "running", "done", "stopped", "cancelled", "failed", "interrupted"],
                              default="all", format_func=lambda s: "all" if s == "all" else common.status_label(s))
runs = store.list_run_rows(limit=500, statuses=None if status in (None, "all") else (status,))
if not runs:
    st.info("No runs to show. Train a model to see it here.")
    urls.link("train", "Go to Train")
else:
    st.caption(f"{len(runs)} run(s), newest first. Each link opens the run; send it to a colleague to show the same page.")
    views.runs_table(runs)
