"""Explanations on the page: started as worker jobs (TensorFlow stays out of this process),
waited for with a spinner or a polling fragment, and drawn from what the worker saved by each
kind's views (``ui.tables``, ``ui.images``, ``ui.series``)."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dlcore import explain, jobs
from dlcore.store import ExplanationRecord, RunRecord
from ui import common, scoring

__all__ = ["global_result", "wait_for"]

STALE_SECONDS = 600  # a global job older than this that never finished is started again (its worker died)


def wait_for(explanation_id: str, timeout: float = 180.0) -> ExplanationRecord:
    """Poll the store until the explanation job ends (or ``timeout``), with a spinner."""
    return scoring.poll(common.store().explanation, explanation_id, timeout,
                        "Working out what moved this prediction…")


def global_result(run: RunRecord, model: str, what: str) -> dict[str, Any] | None:
    """The saved global explanation of ``model``; when there is none yet, start one (once) and
    show its progress until it is ready, then redraw the page."""
    store = common.store()
    saved = explain.load_global(store, run.id, model)
    if saved is not None:
        return saved
    latest = store.latest_explanation(run.id, model, "global")
    if latest is not None and latest.status == "failed":
        st.error(latest.message or "Working out the explanation failed.", icon=":material/error:")
        if st.button("Try again", key=f"retry-{model}"):
            with common.guard():
                jobs.submit_explanation(store, run.id, model)
                st.rerun()
        return None
    if latest is None or latest.status == "done" or time.time() - latest.created_at > STALE_SECONDS:
        with common.guard():
            jobs.submit_explanation(store, run.id, model)
    common.ensure_workers()

    @st.fragment(run_every=1.5)
    def waiting() -> None:
        if explain.load_global(store, run.id, model) is not None:
            st.rerun()
        job = store.latest_explanation(run.id, model, "global")
        if job is not None and job.status == "failed":
            st.rerun()
        state = ("Waiting for a free worker" if job is None or job.status == "queued"
                 else f"Working it out ({job.message})" if job.message else "Working it out")
        st.info(f"{state}: {what}. This takes from seconds to a few minutes and is kept with the run, so it is "
                "done once.", icon=":material/hourglass_top:")

    waiting()
    return None
