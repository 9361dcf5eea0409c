"""Waiting for a scoring job that a worker runs (TensorFlow never loads in this process)."""

from __future__ import annotations

import time
from typing import Any, Callable

import streamlit as st

from dlcore.errors import DlcoreError
from dlcore.store import RunRecord, ScoringRecord
from ui import common, urls

__all__ = ["poll", "wait_for", "finished_job"]


def poll(load: Callable[[str], Any], job_id: str, timeout: float, text: str) -> Any:
    """Poll the store with ``load(job_id)`` until the job ends (or ``timeout``), with a spinner."""
    common.ensure_workers()
    deadline = time.monotonic() + timeout
    job = load(job_id)
    with st.spinner(text):
        while job.status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.15)
            job = load(job_id)
    return job


def wait_for(scoring_id: str, timeout: float = 300.0) -> ScoringRecord:
    """Poll the store until the scoring job ends (or ``timeout``), with a spinner."""
    return poll(common.store().scoring, scoring_id, timeout, "Scoring…")


def finished_job(run: RunRecord, what: str = "scoring") -> ScoringRecord | None:
    """The scoring job named in the link, once it is done; None (after saying why on the page)
    when there is none, it belongs to another run, it failed or is still going."""
    scoring_id = urls.get_id(urls.SCORING)
    if not scoring_id:
        return None
    try:
        job = common.store().scoring(scoring_id)
    except DlcoreError as exc:
        st.error(str(exc))
        return None
    if job.run_id != run.id:
        return None
    if job.status in ("queued", "running"):
        job = wait_for(scoring_id)
    if job.status == "failed":
        st.error(job.message or f"The {what} failed.")
        return None
    if job.status != "done":
        st.info(f"Still busy with the {what}: reload this page in a moment.")
        return None
    return job
