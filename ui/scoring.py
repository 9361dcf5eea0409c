"""Waiting for a scoring job that a worker runs (TensorFlow never loads in this process)."""

from __future__ import annotations

import time

import streamlit as st

from dlcore.store import ScoringRecord
from ui import common

__all__ = ["wait_for"]


def wait_for(scoring_id: str, timeout: float = 300.0) -> ScoringRecord:
    """Poll the store until the scoring job ends (or ``timeout``), with a spinner."""
    store = common.store()
    common.ensure_workers()
    deadline = time.monotonic() + timeout
    job = store.scoring(scoring_id)
    with st.spinner("Scoring…"):
        while job.status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.15)
            job = store.scoring(scoring_id)
    return job
